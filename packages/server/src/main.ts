// Entry of the `hivemind-server` bin: parse argv, run one command, exit with its code.
import { runCli } from './cli/run.js'

const io = {
  env: process.env,
  print: (line: string) => process.stderr.write(`${line}\n`),
  stopSignal: () =>
    new Promise<string>((resolve) => {
      for (const signal of ['SIGINT', 'SIGTERM'] as const)
        process.once(signal, () => resolve(signal))
    }),
}

process.exitCode = await runCli(process.argv, io)
// Open handles (a pool, a pending timer) must not keep a finished command alive.
process.exit()
