import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, openSync, closeSync, readFileSync } from 'node:fs'
import type { CAC } from 'cac'
import { ENV } from '@hivemind/sdk/schemas'
import { describePrincipal, describeUploadError, maskLines, requireEndpoint } from '../client.js'
import { DaemonAlreadyRunningError, type Daemon } from '../daemon/daemon.js'
import {
  checkCredentialInBackground,
  DEFAULT_DRAIN_TIMEOUT_S,
  drainTimeoutMs,
  prepareDaemon,
} from '../daemon/launch.js'
import { daemonPaths, resolveStateDir, runningPid } from '../daemon/state-dir.js'
import { parseWatchPaths } from '../daemon/watch-sources.js'
import { EXIT, ExitError } from '../errors.js'
import type { CliIo } from '../io.js'

/** How long `hivemind start` waits for the daemon's first token exchange. */
const READY_TIMEOUT_MS = 90_000

interface StartFlags {
  foreground?: boolean
  endpoint?: string
  stateDir?: string
  drainTimeout?: string | number
  notifyParent?: boolean
  json?: boolean
}

/** Messages a background daemon sends `hivemind start` over the IPC channel. */
type ReadyMessage =
  | {
      type: 'ready'
      pid: number
      principal: { kind: 'user' | 'service_account'; id: string; name: string }
      filesWatched: number
      /** Token values for `::add-mask::`, sent only under GitHub Actions. */
      secrets: string[]
    }
  | { type: 'error'; message: string; hint: string | undefined; exitCode: number }

export function registerStart(cli: CAC, io: CliIo): void {
  cli
    .command('start', 'Start the daemon in the background: tail agent sessions and upload them')
    .option('--foreground', 'Run in the foreground (containers, sidecars); never exits on errors')
    .option('--endpoint <url>', `Server URL (default $${ENV.endpoint})`)
    .option('--state-dir <dir>', `State dir (default $${ENV.stateDir} or ~/.hivemind)`)
    .option('--drain-timeout <seconds>', 'Final catch-up budget on SIGTERM', {
      default: DEFAULT_DRAIN_TIMEOUT_S,
    })
    .option('--json', 'Print {pid, principal, files_watched, state_dir, log_file} once started')
    .option('--notify-parent', '(internal) report readiness to `hivemind start` over IPC')
    .example('HIVEMIND_ENDPOINT=https://hivemind.example.com hivemind start')
    .action(async (flags: StartFlags) => {
      io.exitCode = flags.foreground
        ? await runForeground(flags, io)
        : await runBackground(flags, io)
    })
}

/**
 * The daemon itself. Under `--notify-parent` (spawned by `hivemind start`) a credential
 * the server refuses ends it with the SDK's message and hint, so the CI step fails there;
 * otherwise (a container) it never exits on errors and reports them through `health`.
 */
async function runForeground(flags: StartFlags, io: CliIo): Promise<number> {
  const drainMs = drainTimeoutMs(flags.drainTimeout)
  const setup = prepareDaemon(flags, io)
  const { endpoint, stateDir, paths, logger } = setup
  const notify = flags.notifyParent === true && typeof process.send === 'function'

  let daemon: Daemon
  try {
    daemon = await setup.start()
  } catch (err) {
    if (notify) sendParent(errorMessage(err, endpoint))
    throw err
  }
  const stop = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'))
    process.once('SIGINT', () => resolve('SIGINT'))
  })

  if (notify) {
    try {
      const { me, secrets } = await daemon.verifyCredential()
      sendParent({
        type: 'ready',
        pid: process.pid,
        principal: { kind: me.kind, id: me.id, name: me.name },
        filesWatched: daemon.status().files_watched,
        secrets: io.env.GITHUB_ACTIONS === 'true' ? secrets : [],
      })
      process.disconnect?.()
    } catch (err) {
      const msg = errorMessage(err, endpoint)
      logger.error({ error: msg.message, hint: msg.hint }, 'first token exchange failed; exiting')
      sendParent(msg)
      await daemon.shutdown(0)
      return EXIT.failed
    }
  } else {
    io.stderr.write(
      `hivemind: daemon running in the foreground (pid ${process.pid}); state dir ${stateDir}; log ${paths.logFile}\n`,
    )
    // Reported, never fatal: the loop retries, and `health` says it is failing.
    checkCredentialInBackground(daemon, setup, (message, hint) => {
      io.stderr.write(`hivemind: credential check failed (will keep retrying): ${message}\n`)
      if (hint) io.stderr.write(`  ${hint}\n`)
    })
  }

  const signal = await stop
  logger.info({ signal }, 'signal received')
  const result = await daemon.shutdown(drainMs)
  if (!notify) {
    io.stderr.write(
      result.drained
        ? 'hivemind: daemon stopped; everything delivered\n'
        : `hivemind: daemon stopped with ${result.pending.events} events in ${result.pending.files} files not delivered (they stay on disk and are sent on the next start)\n`,
    )
  }
  return result.drained ? EXIT.ok : EXIT.failed
}

function sendParent(msg: ReadyMessage): void {
  try {
    process.send?.(msg)
  } catch {
    // The parent gave up waiting; nothing to tell.
  }
}

function errorMessage(err: unknown, endpoint: string): Extract<ReadyMessage, { type: 'error' }> {
  if (err instanceof ExitError) {
    return { type: 'error', message: err.message, hint: err.hint, exitCode: err.exitCode }
  }
  const { message, hint } = describeUploadError(err, endpoint)
  return { type: 'error', message: `no credential: ${message}`, hint, exitCode: EXIT.failed }
}

/**
 * Spawns the daemon detached (its output to `daemon.out`, its log to `daemon.log`) and
 * returns once it is up and the server accepted its credential, or fails with the
 * daemon's reason.
 */
async function runBackground(flags: StartFlags, io: CliIo): Promise<number> {
  const drain = drainTimeoutMs(flags.drainTimeout) / 1000
  const endpoint = requireEndpoint(flags.endpoint ?? io.env[ENV.endpoint])
  const stateDir = resolveStateDir(flags.stateDir, io.env, io.cwd)
  parseWatchPaths(io.env[ENV.watchPaths], io.cwd) // a bad entry fails here, not in the log
  const paths = daemonPaths(stateDir)
  const running = runningPid(paths)
  if (running !== undefined) throw new DaemonAlreadyRunningError(running, stateDir)

  mkdirSync(stateDir, { recursive: true, mode: 0o700 })
  const out = openSync(paths.outFile, 'a', 0o600)
  const script = process.argv[1]
  if (script === undefined) throw new ExitError(EXIT.internal, 'cannot tell which script to run')
  const child = spawn(
    process.execPath,
    [
      ...process.execArgv,
      script,
      'start',
      '--foreground',
      '--notify-parent',
      '--state-dir',
      stateDir,
      '--endpoint',
      endpoint,
      '--drain-timeout',
      String(drain),
    ],
    { cwd: io.cwd, env: io.env, detached: true, stdio: ['ignore', out, out, 'ipc'] },
  )
  closeSync(out)

  const outcome = await new Promise<
    ReadyMessage | { type: 'exit'; code: number | null } | { type: 'timeout' }
  >((resolve) => {
    const timer = setTimeout(() => resolve({ type: 'timeout' }), READY_TIMEOUT_MS)
    child.once('message', (m) => {
      clearTimeout(timer)
      resolve(m as ReadyMessage)
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      resolve({ type: 'exit', code })
    })
  })
  if (outcome.type === 'ready') {
    if (child.connected) child.disconnect()
    child.unref()
    const masks = maskLines(io.env, outcome.secrets)
    if (flags.json) {
      io.stderr.write(masks)
      io.stdout.write(
        `${JSON.stringify({ pid: outcome.pid, principal: outcome.principal, files_watched: outcome.filesWatched, state_dir: stateDir, log_file: paths.logFile })}\n`,
      )
    } else {
      io.stdout.write(masks)
      io.stdout.write(
        `hivemind: daemon started (pid ${outcome.pid}) as ${describePrincipal(outcome.principal)}; watching ${outcome.filesWatched} session files; state dir ${stateDir}; log ${paths.logFile}\n`,
      )
    }
    return EXIT.ok
  }
  if (outcome.type === 'error') {
    if (child.exitCode == null && child.signalCode == null) await once(child, 'exit')
    throw new ExitError(
      outcome.exitCode,
      outcome.message,
      outcome.hint ? { hint: outcome.hint } : undefined,
    )
  }
  if (outcome.type === 'timeout') {
    child.kill('SIGTERM')
    throw new ExitError(
      EXIT.failed,
      `the daemon did not get a credential within ${READY_TIMEOUT_MS / 1000} s; stopped it`,
      { hint: `See ${paths.logFile}.` },
    )
  }
  const tail = readTail(paths.outFile)
  throw new ExitError(
    EXIT.failed,
    `the daemon exited with code ${outcome.code ?? 'null'} while starting${tail ? `: ${tail}` : ''}`,
    {
      hint: `See ${paths.outFile} and ${paths.logFile}.`,
    },
  )
}

function readTail(file: string): string {
  try {
    const lines = readFileSync(file, 'utf8').trim().split('\n')
    return lines.slice(-3).join(' | ').slice(0, 500)
  } catch {
    return ''
  }
}
