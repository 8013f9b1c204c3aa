// Entry of `hivemind health` in the built package: bin.js imports this bundle directly,
// so a healthcheck loads node:fs and the state dir helpers, not the whole CLI.
import { runHealth } from './health.js'

process.exitCode = runHealth(process.argv.slice(3), {
  env: process.env,
  cwd: process.cwd(),
  stdout: process.stdout,
  stderr: process.stderr,
  now: Date.now(),
})
