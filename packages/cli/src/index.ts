// Entry of the `hivemind` bin (bin.js imports the bundle of this file): run one command
// with the process's streams and environment, exit with its code. `health` takes a
// path of its own that loads almost nothing: it is a container healthcheck with a 3 s
// timeout, run every 10 s.
// (bin.js sends `health` straight to its own bundle; this covers runs from source.)
if (process.argv[2] === 'health') {
  await import('./health-main.js')
} else {
  const { main } = await import('./cli.js')
  process.exitCode = await main(process.argv, {
    env: process.env,
    cwd: process.cwd(),
    stdout: process.stdout,
    stderr: process.stderr,
    now: Date.now,
    exitCode: 0,
  })
}
// Open handles (a keep-alive socket, a refresh timer) must not keep a finished command alive.
process.exit()
