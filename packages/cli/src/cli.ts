import { cac, type Command } from 'cac'
import { isHiveMindError } from '@hivemind/sdk'
import { registerControl } from './commands/control.js'
import { registerImport } from './commands/import.js'
import { registerMcp } from './commands/mcp.js'
import { registerStart } from './commands/start.js'
import { runHealth } from './health.js'
import { EXIT, ExitError, InternalError, UsageError } from './errors.js'
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
    cli.parse(argv.map(keepString), { run: false })
    cli.args = cli.args.map(untag)
    const options: Record<string, unknown> = cli.options
    for (const [key, value] of Object.entries(options)) options[key] = untag(value)
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
    normalizeOptions(cli.matchedCommand, cli.options, argv)
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
    return { code: EXIT.usage, message: `${untag(err.message)} (see --help)` }
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

/**
 * mri (under cac) turns every value that looks like a number into one: `--path 2026`
 * becomes 2026, `--since ''` 0, `--path 0x10` 16. A value it would convert is handed over
 * behind a NUL (which no real argument can hold), so it stays the string it was, and
 * {@link untag} takes the NUL off again. `true` / `false` never look like numbers, so
 * `--all=false` still reaches mri as written.
 */
const TAG = '\u0000'

function keepString(arg: string): string {
  if (!arg.startsWith('-')) return looksNumeric(arg) ? TAG + arg : arg
  const eq = arg.indexOf('=')
  if (!arg.startsWith('--') || eq < 0) return arg
  const value = arg.slice(eq + 1)
  return looksNumeric(value) ? `${arg.slice(0, eq + 1)}${TAG}${value}` : arg
}

function looksNumeric(value: string): boolean {
  const n = +value
  return n * 0 === 0
}

function untag<T>(value: T): T {
  if (typeof value === 'string') return value.replaceAll(TAG, '') as T
  if (Array.isArray(value)) return value.map(untag) as T
  return value
}

/**
 * Checks the matched command's flags once mri is done with them, so every command gets
 * plain values: a switch given twice (mri makes that an array) or as `--flag=true` is on,
 * `--flag=false` off, any other value a usage error; a value flag given twice is a usage
 * error unless it is declared repeatable (`type: []`, which cac turns into an array).
 */
function normalizeOptions(
  command: Command,
  options: Record<string, unknown>,
  argv: readonly string[],
): void {
  const end = argv.indexOf('--')
  const given = end < 0 ? argv : argv.slice(0, end)
  for (const option of command.options) {
    const value = options[option.name]
    if (value === undefined) continue
    const flag = option.rawName.split(/[\s,]+/).find((s) => s.startsWith('--')) ?? option.rawName
    if (option.isBoolean && !option.negated) {
      // mri makes `--json=yes` true plus a stray argument `yes`: name the flag instead.
      for (const arg of given) {
        if (arg.startsWith(`${flag}=`)) switchValue(flag, arg.slice(flag.length + 1))
      }
      options[option.name] = switchValue(flag, value)
    } else if (Array.isArray(value) && !Array.isArray(option.config.type)) {
      throw new UsageError(`${flag} given more than once: pass it once`)
    }
  }
}

function switchValue(flag: string, value: unknown): boolean {
  const values = (Array.isArray(value) ? value : [value]).map((v: unknown) => {
    if (v === true || v === 'true') return true
    if (v === false || v === 'false') return false
    throw new UsageError(
      `${flag} takes no value (got ${JSON.stringify(v)}): write ${flag}, or ${flag}=false to turn it off`,
    )
  })
  if (values.includes(true) && values.includes(false)) {
    throw new UsageError(`${flag} is both on and off (${flag}=false and ${flag}): pass it once`)
  }
  return values[0] ?? false
}
