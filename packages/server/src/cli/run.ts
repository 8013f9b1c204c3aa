import { cac } from 'cac'
import { BackupError } from '../backup/backup.js'
import { ConfigError } from '../config.js'
import { StartupError } from '../errors.js'
import { KeyDecryptionError } from '../keys/encryption.js'
import { VERSION } from '../version.js'
import { commands } from './commands.js'
import { ExitError, type CliIo } from './types.js'

const PREFIX = 'hivemind-server: '

/**
 * Parses `argv` and runs one command; returns the exit code. Every expected
 * failure is one line on stderr, no stack trace (set DEBUG=1 for one).
 */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const cli = cac('hivemind-server')
  for (const c of commands) c.register(cli, io)
  cli.help()
  cli.version(VERSION)
  const args = argv.slice(2)
  // `serve` is the default command: `hivemind-server` and `hivemind-server --flag` serve.
  const first = args[0]
  if (
    first === undefined ||
    (first.startsWith('-') && !['-h', '--help', '-v', '--version'].includes(first))
  ) {
    args.unshift('serve')
  }
  try {
    cli.parse([...argv.slice(0, 2), ...args], { run: false })
    if (cli.options.help || cli.options.version) return 0
    if (!cli.matchedCommand) throw new ExitError(2, `unknown command "${args[0]}" (see --help)`)
    await cli.runMatchedCommand()
    return 0
  } catch (err) {
    const { code, message } = describe(err)
    io.print(PREFIX + message.replace(/^hivemind-server: /, ''))
    if (io.env.DEBUG && err instanceof Error && err.stack) io.print(err.stack)
    return code
  }
}

function describe(err: unknown): { code: number; message: string } {
  if (err instanceof ExitError) return { code: err.exitCode, message: err.message }
  if (err instanceof ConfigError) return { code: 2, message: err.message }
  if (
    err instanceof StartupError ||
    err instanceof BackupError ||
    err instanceof KeyDecryptionError
  ) {
    return { code: 1, message: err.message }
  }
  if (err instanceof Error && err.name === 'CACError') return { code: 2, message: err.message }
  const message = err instanceof Error ? err.message.split('\n')[0] : String(err)
  return { code: 1, message: `internal error: ${message}` }
}
