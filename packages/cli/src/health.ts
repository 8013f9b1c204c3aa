// `hivemind health`: the container healthcheck. Docker runs it every 10 s under a 3 s
// timeout, so it loads no CLI framework, no SDK and no zod: node:fs and the state dir.
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { daemonPaths, resolveStateDir, runningPid } from './daemon/state-dir.js'

/** Verdict of one check. */
export interface HealthVerdict {
  healthy: boolean
  message: string
}

/** Defaults of the thresholds, in seconds. */
export const HEALTH_DEFAULTS = { staleAfter: 30, failingAfter: 300 } as const

interface Snapshot {
  pid?: number
  state?: string
  heartbeat_at?: string
  failing_since?: string | null
  last_error?: { message?: string } | null
  paused?: boolean
  pause_reason?: string | null
}

/**
 * Healthy when the daemon of `stateDir` is alive, its heartbeat is fresher than
 * `staleAfter` seconds (its loop is not stuck), and uploads have not been failing for
 * longer than `failingAfter` seconds.
 */
export function checkHealth(
  stateDir: string,
  options: { staleAfter: number; failingAfter: number; now: number },
): HealthVerdict {
  const paths = daemonPaths(stateDir)
  const pid = runningPid(paths)
  if (pid === undefined)
    return { healthy: false, message: `no daemon running for state dir ${stateDir}` }
  let snap: Snapshot
  try {
    snap = JSON.parse(readFileSync(paths.stateFile, 'utf8')) as Snapshot
  } catch {
    return {
      healthy: false,
      message: `daemon pid ${pid} has written no status yet (${paths.stateFile})`,
    }
  }
  if (snap.pid !== pid) {
    return {
      healthy: false,
      message: `daemon pid ${pid} has written no status yet (${paths.stateFile} is from pid ${snap.pid ?? '?'})`,
    }
  }
  if (snap.state === 'stopped') return { healthy: false, message: `daemon pid ${pid} has stopped` }
  const age = (options.now - Date.parse(snap.heartbeat_at ?? '')) / 1000
  if (!(age <= options.staleAfter)) {
    return {
      healthy: false,
      message: `daemon pid ${pid} is stuck: last heartbeat ${Number.isFinite(age) ? `${Math.round(age)} s ago` : 'unknown'} (limit ${options.staleAfter} s)`,
    }
  }
  if (snap.failing_since) {
    const failing = (options.now - Date.parse(snap.failing_since)) / 1000
    if (failing > options.failingAfter) {
      const why = snap.paused
        ? `paused: ${snap.pause_reason ?? ''}`
        : (snap.last_error?.message ?? 'unknown error')
      return {
        healthy: false,
        message: `daemon pid ${pid} has not uploaded for ${Math.round(failing)} s (limit ${options.failingAfter} s): ${why}`,
      }
    }
  }
  return {
    healthy: true,
    message: `daemon pid ${pid} is healthy (${snap.state ?? 'running'}${snap.failing_since ? `, failing since ${snap.failing_since}` : ''})`,
  }
}

/** Runs `hivemind health [args]`; returns the exit code (0 healthy, 1 not, 2 usage). */
export function runHealth(
  args: readonly string[],
  io: {
    env: Readonly<Record<string, string | undefined>>
    cwd: string
    stdout: { write(s: string): unknown }
    stderr: { write(s: string): unknown }
    now: number
  },
): number {
  let values
  try {
    ;({ values } = parseArgs({
      args: [...args],
      options: {
        quiet: { type: 'boolean', short: 'q' },
        'state-dir': { type: 'string' },
        'stale-after': { type: 'string' },
        'failing-after': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }))
  } catch (err) {
    io.stderr.write(`hivemind: ${(err as Error).message} (see hivemind health --help)\n`)
    return 2
  }
  if (values.help) {
    io.stdout.write(
      [
        'Usage: hivemind health [-q] [--state-dir DIR] [--stale-after SECONDS] [--failing-after SECONDS]',
        '',
        'Exit 0 when the daemon of the state dir is alive and not stuck, 1 otherwise.',
        `  -q, --quiet          Print nothing`,
        `  --state-dir DIR      Default $HIVEMIND_STATE_DIR or ~/.hivemind`,
        `  --stale-after S      Heartbeat older than this is stuck (default ${HEALTH_DEFAULTS.staleAfter})`,
        `  --failing-after S    Uploads failing longer than this is unhealthy (default ${HEALTH_DEFAULTS.failingAfter})`,
        '',
      ].join('\n'),
    )
    return 0
  }
  const seconds = (name: 'stale-after' | 'failing-after', fallback: number): number | undefined => {
    const raw = values[name]
    if (raw === undefined) return fallback
    const n = Number(raw)
    return Number.isFinite(n) && n > 0 ? n : undefined
  }
  const staleAfter = seconds('stale-after', HEALTH_DEFAULTS.staleAfter)
  const failingAfter = seconds('failing-after', HEALTH_DEFAULTS.failingAfter)
  if (staleAfter === undefined || failingAfter === undefined) {
    io.stderr.write(
      'hivemind: --stale-after and --failing-after take a positive number of seconds\n',
    )
    return 2
  }
  const stateDir = resolveStateDir(values['state-dir'], io.env, io.cwd)
  const verdict = checkHealth(stateDir, { staleAfter, failingAfter, now: io.now })
  if (!values.quiet) {
    ;(verdict.healthy ? io.stdout : io.stderr).write(`hivemind health: ${verdict.message}\n`)
  }
  return verdict.healthy ? 0 : 1
}
