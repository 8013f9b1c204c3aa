import { cac } from 'cac'
import { isHiveMindError } from '@hivemind/sdk'
import { registerControl } from './commands/control.js'
import { registerImport } from './commands/import.js'
import { registerMcp } from './commands/mcp.js'
import { registerStart } from './commands/start.js'
import { runHealth } from './health.js'
import { EXIT, ExitError, InternalError } from './errors.js'
import type { CliIo } from './io.js'
import { VERSION } from './version.js'

const PREFIX = 'hivemind: '

/**
 * Parses `argv`, runs one command, returns the exit code. The one place errors are
 * turned into output: an expected failure ({@link ExitError}, a cac usage error, an SDK
 * configuration error) is one line plus an optional hint, never a stack trace (set
 * DEBUG=1 for one); anything else is an internal error.
 */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  const cli = cac('hivemind')
  registerImport(cli, io)
  registerStart(cli, io)
  registerControl(cli, io)
  registerMcp(cli, io)
  // Listed for --help only: the bin runs `health` on a lighter path (index.ts), where
  // runHealth parses its own flags and answers `hivemind health --help`.
  cli
    .command('health', 'Container healthcheck: exit 0 when the daemon is alive and not stuck')
    .allowUnknownOptions()
    .action(() => {
      io.exitCode = runHealth(argv.slice(3), { ...io, now: io.now() })
    })
  cli.help()
  cli.version(VERSION)
  try {
    cli.parse([...argv], { run: false })
    if (cli.options.help || cli.options.version) return EXIT.ok
    if (!cli.matchedCommand) {
      const name = cli.args[0]
      throw new ExitError(
        EXIT.usage,
        name === undefined
          ? 'missing command (see --help)'
          : `unknown command "${name}" (see --help)`,
      )
    }
    await cli.runMatchedCommand()
    return io.exitCode
  } catch (err) {
    const { code, message, hint } = describe(err)
    io.stderr.write(`${message.startsWith(PREFIX) ? '' : PREFIX}${message}\n`)
    if (hint) io.stderr.write(`  ${hint}\n`)
    if (io.env.DEBUG && err instanceof Error && err.stack) io.stderr.write(`${err.stack}\n`)
    return code
  }
}

function describe(err: unknown): { code: number; message: string; hint?: string | undefined } {
  if (err instanceof ExitError) return { code: err.exitCode, message: err.message, hint: err.hint }
  // cac: unknown option, missing option value, unused args.
  if (err instanceof Error && err.name === 'CACError') {
    return { code: EXIT.usage, message: `${err.message} (see --help)` }
  }
  if (isHiveMindError(err)) {
    const code = err.code === 'ERR_CONFIGURATION' ? EXIT.usage : EXIT.failed
    return { code, message: err.message, hint: err.hint }
  }
  const message = err instanceof Error ? err.message.split('\n')[0] : String(err)
  const kind = err instanceof InternalError ? 'internal error' : 'internal error (a bug)'
  return {
    code: EXIT.internal,
    message: `${kind}: ${message}`,
    hint: 'Run with DEBUG=1 for the stack trace.',
  }
}
