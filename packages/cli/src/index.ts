// Entry of the `hivemind` bin (bin.js imports the bundle of this file): run one command
// with the process's streams and environment, exit with its code.
import { main } from './cli.js'

process.exitCode = await main(process.argv, {
  env: process.env,
  cwd: process.cwd(),
  stdout: process.stdout,
  stderr: process.stderr,
  now: Date.now,
  exitCode: 0,
})
// Open handles (a keep-alive socket, a refresh timer) must not keep a finished command alive.
process.exit()
