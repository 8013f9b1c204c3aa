// Files of a daemon in its state dir. Kept free of heavy imports: `hivemind health`
// (a container healthcheck run every 10 s under a 3 s timeout) loads only this.
import { readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'

/** Paths of one daemon's files. */
export interface DaemonPaths {
  stateDir: string
  /** Pid of the running daemon; created exclusively, so two daemons cannot share a dir. */
  pidFile: string
  /** The status snapshot with the heartbeat, rewritten atomically every few seconds. */
  stateFile: string
  /** JSON log lines, rotated by size. */
  logFile: string
  /** stdout/stderr of a background daemon (crashes before the logger is up land here). */
  outFile: string
  /** Control socket for `flush` and `status`. */
  socket: string
}

/**
 * A Unix socket path must fit in `sun_path` (108 bytes on Linux, 104 on macOS): deep
 * state dirs (a CI runner's temp folder) get a short path in the temp dir derived from
 * the state dir's hash instead.
 */
const MAX_SOCKET_PATH = 100

export function daemonPaths(stateDir: string): DaemonPaths {
  const inDir = join(stateDir, 'daemon.sock')
  const short =
    process.platform === 'win32'
      ? `\\\\.\\pipe\\hivemind-${hash(stateDir)}`
      : Buffer.byteLength(inDir) <= MAX_SOCKET_PATH
        ? inDir
        : // `/tmp` itself, not $TMPDIR: `hivemind flush` from a hook and the daemon it
          // talks to may not share an environment, but they must derive the same path.
          join('/tmp', `hivemind-${hash(stateDir)}.sock`)
  return {
    stateDir,
    pidFile: join(stateDir, 'daemon.pid'),
    stateFile: join(stateDir, 'daemon.json'),
    logFile: join(stateDir, 'daemon.log'),
    outFile: join(stateDir, 'daemon.out'),
    socket: short,
  }
}

function hash(s: string): string {
  // Loaded only when needed: the healthcheck's cold start should not pay for OpenSSL.
  const { createHash } = process.getBuiltinModule('node:crypto')
  return createHash('sha256').update(s).digest('hex').slice(0, 16)
}

/**
 * The pid file's content: the pid, and on Linux the process's start time (field 22 of
 * /proc/<pid>/stat), so a pid reused by another process after the daemon died is not
 * taken for the daemon (and sent `hivemind stop`'s SIGTERM).
 */
export function pidFileContent(pid: number): string {
  return `${pid}\n${processStartTime(pid) ?? ''}\n`
}

/** The pid of a pid file whose process is still the one that wrote it. */
export function livePid(content: string): number | undefined {
  const [first, start] = content.split('\n')
  const pid = Number.parseInt(first?.trim() ?? '', 10)
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return undefined
  const recorded = start?.trim()
  if (recorded && processStartTime(pid) !== undefined && processStartTime(pid) !== recorded) {
    return undefined
  }
  return pid
}

/** The pid in the pid file when that process is alive; `undefined` otherwise. */
export function runningPid(paths: DaemonPaths): number | undefined {
  try {
    return livePid(readFileSync(paths.pidFile, 'utf8'))
  } catch {
    return undefined
  }
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot); Linux only. */
function processStartTime(pid: number): string | undefined {
  if (process.platform !== 'linux') return undefined
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // `pid (comm) S ppid …`: comm may hold spaces, so count from after the last `)`.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  } catch {
    return undefined
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
  return !isZombie(pid)
}

/**
 * A daemon that died but was not reaped yet (its parent is a container's PID 1 that
 * reaps late, or never) still answers signal 0: on Linux, its state in /proc says `Z`.
 */
function isZombie(pid: number): boolean {
  if (process.platform !== 'linux') return false
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // `pid (comm) S …`: comm may hold spaces and parentheses, so read after the last `)`.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z'
  } catch {
    return false
  }
}

/** `ENV.stateDir` and `DEFAULTS.stateDir` of `@hivemind/sdk/schemas`, repeated here so the healthcheck need not load zod (a test keeps them equal). */
export const STATE_DIR_ENV = 'HIVEMIND_STATE_DIR'
export const DEFAULT_STATE_DIR_NAME = '.hivemind'

/** `--state-dir`, else `HIVEMIND_STATE_DIR`, else `~/.hivemind`, resolved against `cwd`. */
export function resolveStateDir(
  flag: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
  cwd: string,
): string {
  const chosen = flag ?? env[STATE_DIR_ENV]
  return resolve(
    cwd,
    chosen && chosen !== '' ? chosen : join(env.HOME ?? homedir(), DEFAULT_STATE_DIR_NAME),
  )
}
