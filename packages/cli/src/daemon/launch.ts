import { ENV } from '@hivemind/sdk/schemas'
import { describeUploadError, requireEndpoint } from '../client.js'
import { UsageError } from '../errors.js'
import { ensureStateDir } from '../tail/checkpoint-store.js'
import type { CliIo } from '../io.js'
import { Daemon, timingsFromEnv } from './daemon.js'
import { createDaemonLogger, type Logger } from './log.js'
import { daemonPaths, resolveStateDir, type DaemonPaths } from './state-dir.js'
import { parseWatchPaths } from './watch-sources.js'

/** Final catch-up budget on SIGTERM: inside `hivemind stop`'s 10 s and Docker's default 10 s. */
export const DEFAULT_DRAIN_TIMEOUT_S = 8

/** `--drain-timeout` in milliseconds; a usage error outside 0–600 s. */
export function drainTimeoutMs(value: string | number | undefined): number {
  const n = Number(value ?? DEFAULT_DRAIN_TIMEOUT_S)
  if (!Number.isFinite(n) || n < 0 || n > 600) {
    throw new UsageError('--drain-timeout takes seconds between 0 and 600')
  }
  return n * 1000
}

/** What `start --foreground` and `mcp` resolve before running a daemon in their process. */
export interface DaemonSetup {
  endpoint: string
  stateDir: string
  paths: DaemonPaths
  logger: Logger
  /** Starts the daemon (throws `DaemonAlreadyRunningError` when the state dir is taken). */
  start(): Promise<Daemon>
}

/**
 * Validates the endpoint, state dir and `HIVEMIND_WATCH_PATHS` (usage errors name the
 * flag or variable), creates the state dir (0700) and opens the rotated JSON log.
 */
export function prepareDaemon(
  flags: { endpoint?: string | undefined; stateDir?: string | undefined },
  io: CliIo,
): DaemonSetup {
  const endpoint = requireEndpoint(flags.endpoint ?? io.env[ENV.endpoint])
  const stateDir = resolveStateDir(flags.stateDir, io.env, io.cwd)
  const watchPaths = parseWatchPaths(io.env[ENV.watchPaths], io.cwd)
  const paths = daemonPaths(stateDir)
  ensureStateDir(stateDir)
  const logger = createDaemonLogger(paths.logFile, io.env.HIVEMIND_LOG_LEVEL ?? 'info')
  return {
    endpoint,
    stateDir,
    paths,
    logger,
    start: () =>
      Daemon.start({
        stateDir,
        endpoint,
        env: io.env,
        watchPaths,
        logger,
        timings: timingsFromEnv(io.env),
      }),
  }
}

/**
 * Checks the credential in the background and logs the outcome: for daemons that must
 * never exit on a credential error (containers, MCP), whose loop retries anyway.
 */
export function checkCredentialInBackground(
  daemon: Daemon,
  setup: DaemonSetup,
  onFailure?: (message: string, hint: string | undefined) => void,
): void {
  daemon.verifyCredential().then(
    ({ me }) => setup.logger.info({ principal: me.id, kind: me.kind }, 'credential accepted'),
    (err: unknown) => {
      const { message, hint } = describeUploadError(err, setup.endpoint)
      setup.logger.warn({ error: message, hint }, 'credential check failed; will keep retrying')
      onFailure?.(message, hint)
    },
  )
}
