import { EventEmitter, once } from 'node:events'
import { watch, type FSWatcher } from 'node:fs'
import { mkdir, open, readFile, rename, unlink, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { SubjectTokenExhaustedError, type AccessToken, type Clock } from '@hivemind/sdk'
import {
  createUploadClient,
  describeUploadError,
  isTooLarge,
  type UploadClient,
  type Verified,
} from '../client.js'
import { ExitError, EXIT } from '../errors.js'
import { CheckpointStore } from '../tail/checkpoint-store.js'
import type { SessionFile } from '../adapters/types.js'
import {
  discoverSessionFiles,
  statCandidate,
  type AgentSource,
  type Candidate,
} from '../tail/discovery.js'
import { followMove, planFile, toPending } from '../tail/plan.js'
import { Uploader } from '../tail/uploader.js'
import { VERSION } from '../version.js'
import { startControlServer, type ControlServer } from './control-server.js'
import { sdkLogger, type Logger } from './log.js'
import { daemonPaths, livePid, pidFileContent, type DaemonPaths } from './state-dir.js'
import type { DaemonStatus } from './status.js'
import { resolveWatchSources, type WatchPath } from './watch-sources.js'

/** Timings of the loop; tests and benchmarks shorten them. */
export interface DaemonTimings {
  /** Wait after the first change before reading, so one batch carries a burst. @default 250 */
  batchWindowMs: number
  /** Full rescan, for filesystems whose events are unreliable. @default 5000 */
  rescanMs: number
  /** Heartbeat file rewrite. @default 2000 */
  heartbeatMs: number
  /** First retry delay after a failure; doubles up to `maxBackoffMs`, full jitter. @default 500 */
  backoffMs: number
  /** @default 30000 */
  maxBackoffMs: number
  /** Retry delay cap while paused on an exhausted subject token. @default 5000 */
  pausedRetryMs: number
}

const DEFAULT_TIMINGS: DaemonTimings = {
  batchWindowMs: 250,
  rescanMs: 5000,
  heartbeatMs: 2000,
  backoffMs: 500,
  maxBackoffMs: 30_000,
  pausedRetryMs: 5000,
}

/**
 * `HIVEMIND_TEST_DAEMON_TIMINGS` (JSON of {@link DaemonTimings}), honoured only when
 * `NODE_ENV=test`, like the server's test clock: process tests shorten the backoff.
 */
export function timingsFromEnv(
  env: Readonly<Record<string, string | undefined>>,
): Partial<DaemonTimings> | undefined {
  const raw = env.HIVEMIND_TEST_DAEMON_TIMINGS
  if (env.NODE_ENV !== 'test' || !raw) return undefined
  const parsed: unknown = JSON.parse(raw)
  const out: Partial<DaemonTimings> = {}
  for (const key of Object.keys(DEFAULT_TIMINGS) as (keyof DaemonTimings)[]) {
    const v = (parsed as Record<string, unknown>)[key]
    if (typeof v === 'number' && v >= 0) out[key] = v
  }
  return out
}

export interface DaemonOptions {
  stateDir: string
  endpoint: string
  env: Readonly<Record<string, string | undefined>>
  watchPaths: readonly WatchPath[]
  logger: Logger
  /** Home for the agents' default roots (tests). */
  home?: string | undefined
  clock?: Clock | undefined
  timings?: Partial<DaemonTimings> | undefined
}

/** What a flush or the final catch-up came to. */
export interface DrainResult {
  drained: boolean
  pending: DaemonStatus['pending']
}

/** Another daemon holds the state dir. */
export class DaemonAlreadyRunningError extends ExitError {
  readonly code = 'ERR_DAEMON_RUNNING'
  readonly pid: number
  constructor(pid: number, stateDir: string) {
    super(EXIT.failed, `a daemon is already running for state dir ${stateDir} (pid ${pid})`, {
      hint: 'Stop it with `hivemind stop`, or pass another --state-dir.',
    })
    this.pid = pid
  }
}

interface Known {
  size: number
  mtimeMs: number
  ino: string
  /** Every complete record at this size and mtime is acknowledged (or the file is unreadable as it is). */
  settled: boolean
}

interface PassOutcome {
  ok: boolean
  /** Rediscovered every file (a rescan), rather than re-reading the ones a watch event named. */
  full: boolean
  /** Nothing left to send (only meaningful when ok). */
  drained: boolean
  startedAt: number
}

/**
 * The tailing daemon: finds session files under every agent home and watch path, reads
 * what the checkpoint store says the server has not acknowledged, uploads it in batches,
 * and advances checkpoints only on acknowledgement (at-least-once; the server's
 * idempotency makes it exactly-once in effect). Never gives up on a server or credential
 * error: it backs off with jitter, reports itself failing, and goes on.
 */
export class Daemon {
  readonly paths: DaemonPaths
  readonly #opts: DaemonOptions
  readonly #t: DaemonTimings
  readonly #log: Logger
  readonly #upload: UploadClient
  readonly #store: CheckpointStore
  readonly #events = new EventEmitter<{ pass: [PassOutcome] }>()
  readonly #known = new Map<string, Known>()
  readonly #watchers = new Map<string, FSWatcher>()
  readonly #startedAt = new Date()
  #control: ControlServer | undefined
  #sources: AgentSource[] = []
  #timer: NodeJS.Timeout | undefined
  #timerAt = 0
  #running: Promise<PassOutcome> | undefined
  #dirty = false
  /** The next pass must rediscover everything (first pass, rescan, flush, after a failure). */
  #needFull = true
  /** Known session files a watch event named since the last pass. */
  #dirtyPaths = new Set<string>()
  /** Session files of the last full discovery, by path. */
  #index = new Map<string, SessionFile>()
  #attempt = 0
  #retryAt = 0
  #rescanTimer: NodeJS.Timeout | undefined
  #heartbeatTimer: NodeJS.Timeout | undefined
  #state: DaemonStatus['state'] = 'starting'
  #stopping = false
  #filesWatched = 0
  #pending: DaemonStatus['pending'] = { files: 0, events: 0, bytes: 0 }
  readonly #sessionsSent = new Set<string>()
  #uploaded: DaemonStatus['uploaded'] = {
    sessions: 0,
    batches: 0,
    events: 0,
    accepted: 0,
    duplicates: 0,
    rejected: 0,
  }
  #lastUploadAt: Date | undefined
  #lastError: DaemonStatus['last_error'] = null
  #failingSince: Date | undefined
  #pauseReason: string | undefined
  #drained: boolean | null = null
  #unreadableLogged = new Set<string>()
  #token: AccessToken | undefined
  #writing: Promise<void> = Promise.resolve()

  private constructor(opts: DaemonOptions, store: CheckpointStore) {
    this.#opts = opts
    this.#t = { ...DEFAULT_TIMINGS, ...opts.timings }
    this.#log = opts.logger
    this.paths = daemonPaths(opts.stateDir)
    this.#store = store
    this.#upload = createUploadClient({
      endpoint: opts.endpoint,
      env: opts.env,
      clock: opts.clock,
      logger: sdkLogger(opts.logger),
    })
    this.#upload.tokenManager.on('state', ({ state, error }) => {
      this.#log.info({ token_state: state, reason: error?.message }, 'token state changed')
    })
  }

  /**
   * Takes the state dir (pid file, created exclusively; a stale one from a dead process
   * is replaced), opens the checkpoint store, listens on the control socket and starts
   * the first pass: what is already on disk and not yet acknowledged goes first.
   */
  static async start(opts: DaemonOptions): Promise<Daemon> {
    const paths = daemonPaths(opts.stateDir)
    await mkdir(opts.stateDir, { recursive: true, mode: 0o700 })
    await acquirePidFile(paths)
    let store: CheckpointStore | undefined
    let daemon: Daemon
    try {
      store = CheckpointStore.open(opts.stateDir)
      const d = new Daemon(opts, store)
      d.#control = await startControlServer(paths.socket, {
        status: () => d.status(),
        flush: (timeoutMs) => d.flush(timeoutMs),
      })
      daemon = d
    } catch (err) {
      store?.close()
      await unlink(paths.pidFile).catch(() => {})
      throw err
    }
    daemon.#state = 'running'
    daemon.#heartbeatTimer = setInterval(() => void daemon.#writeState(), daemon.#t.heartbeatMs)
    daemon.#rescanTimer = setInterval(() => daemon.#kick(0, true), daemon.#t.rescanMs)
    daemon.#heartbeatTimer.unref()
    daemon.#rescanTimer.unref()
    await daemon.#writeState()
    opts.logger.info(
      { state_dir: opts.stateDir, endpoint: daemon.#upload.endpoint, socket: paths.socket },
      `hivemind daemon ${VERSION} started`,
    )
    daemon.#kick(0, true)
    return daemon
  }

  /**
   * Gets a credential and asks the server who it belongs to: the check `hivemind start`
   * waits for, so a wrong selector, a missing permission or a policy denial fails there.
   */
  async verifyCredential(): Promise<Verified> {
    const verified = await this.#upload.verify()
    this.#token = verified.token
    return verified
  }

  /** A snapshot of what the daemon is doing. */
  status(): DaemonStatus {
    const token = this.#tokenInfo()
    return {
      pid: process.pid,
      version: VERSION,
      state_dir: this.#opts.stateDir,
      endpoint: this.#upload.endpoint,
      state: this.#state,
      started_at: this.#startedAt.toISOString(),
      heartbeat_at: new Date().toISOString(),
      files_watched: this.#filesWatched,
      watch_roots: this.#sources.flatMap((s) => s.roots.map((root) => ({ agent: s.agent, root }))),
      pending: { ...this.#pending },
      uploaded: { ...this.#uploaded },
      last_upload_at: this.#lastUploadAt?.toISOString() ?? null,
      last_error: this.#lastError,
      failing_since: this.#failingSince?.toISOString() ?? null,
      paused: this.#pauseReason !== undefined,
      pause_reason: this.#pauseReason ?? null,
      token,
      drained: this.#drained,
      log_file: this.paths.logFile,
      socket: this.paths.socket,
    }
  }

  /**
   * Sends everything written so far: waits for a pass that started after this call to
   * finish with nothing left, retrying (with backoff) until `timeoutMs`.
   */
  async flush(timeoutMs: number): Promise<DrainResult> {
    const requestedAt = performance.now()
    const deadline = requestedAt + timeoutMs
    // A flush is worth an immediate attempt even while backing off.
    this.#retryAt = 0
    this.#kick(0, true)
    for (;;) {
      const left = deadline - performance.now()
      if (left <= 0) return { drained: false, pending: { ...this.#pending } }
      const outcome = await this.#nextPass(left)
      if (outcome === undefined) continue
      // Only a full pass that started after the request speaks for every file.
      if (outcome.startedAt < requestedAt || !outcome.full) {
        this.#kick(0, true)
        continue
      }
      if (outcome.ok && outcome.drained) return { drained: true, pending: { ...this.#pending } }
    }
  }

  /**
   * Stops watching, then runs the final catch-up pass (retrying until `drainTimeoutMs`),
   * writes the final status, and releases the state dir.
   */
  async shutdown(drainTimeoutMs: number): Promise<DrainResult> {
    if (this.#stopping) throw new Error('shutdown already called')
    this.#stopping = true
    this.#state = 'stopping'
    clearInterval(this.#rescanTimer)
    for (const w of this.#watchers.values()) w.close()
    this.#watchers.clear()
    this.#log.info({ drain_timeout_ms: drainTimeoutMs }, 'stopping: final catch-up')
    const result = await this.flush(drainTimeoutMs)
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#drained = result.drained
    this.#state = 'stopped'
    clearInterval(this.#heartbeatTimer)
    await this.#writeState()
    if (result.drained) this.#log.info('stopped: everything delivered')
    else {
      this.#log.warn(
        { pending: result.pending },
        `stopped with ${result.pending.events} events in ${result.pending.files} files not delivered`,
      )
    }
    await this.#control?.close()
    this.#upload.tokenManager.close()
    // A pass still waiting on the server must not write to a closed store.
    if (!this.#running) this.#store.close()
    await releasePidFile(this.paths)
    return result
  }

  #tokenInfo(): DaemonStatus['token'] {
    const tm = this.#upload.tokenManager
    const cached = this.#token
    if (!cached) return null
    return {
      source: cached.source,
      kind: cached.kind,
      expires_at: cached.expiresAt?.toISOString() ?? null,
      state: tm.state,
    }
  }

  #nextPass(timeoutMs: number): Promise<PassOutcome | undefined> {
    const ac = new AbortController()
    const timer = setTimeout(() => ac.abort(), timeoutMs)
    return once(this.#events, 'pass', { signal: ac.signal })
      .then(
        ([o]) => o as PassOutcome,
        () => undefined,
      )
      .finally(() => clearTimeout(timer))
  }

  /**
   * Schedules a pass `delayMs` from now (no earlier than the backoff allows); `full` asks
   * for a rediscovery of every file rather than the ones watch events named.
   */
  #kick(delayMs: number, full: boolean): void {
    if (this.#state === 'stopped') return
    if (full) this.#needFull = true
    if (this.#running) {
      this.#dirty = true
      return
    }
    const now = performance.now()
    const at = Math.max(now + delayMs, this.#retryAt)
    if (this.#timer && this.#timerAt <= at) return
    clearTimeout(this.#timer)
    this.#timerAt = at
    this.#timer = setTimeout(() => void this.#runPass(), at - now)
  }

  async #runPass(): Promise<void> {
    this.#timer = undefined
    this.#dirty = false
    const full = this.#needFull
    const dirtyPaths = this.#dirtyPaths
    this.#needFull = false
    this.#dirtyPaths = new Set()
    const running = this.#pass(full, dirtyPaths)
    this.#running = running
    const outcome = await running
    this.#running = undefined
    if (this.#state === 'stopped') {
      this.#store.close()
      return
    }
    if (outcome.ok) {
      this.#attempt = 0
      this.#retryAt = 0
      if (this.#dirty) this.#kick(this.#t.batchWindowMs, false)
    } else {
      this.#attempt++
      const cap = this.#pauseReason ? this.#t.pausedRetryMs : this.#t.maxBackoffMs
      const delay = Math.min(cap, this.#t.backoffMs * 2 ** Math.min(this.#attempt - 1, 16))
      // Full jitter, but never below a tenth of the step: a fleet of sidecars must not retry
      // in lockstep, and a single one should not spin.
      const wait = delay * (0.1 + 0.9 * Math.random())
      this.#retryAt = performance.now() + wait
      // What failed is retried from its checkpoint, with everything else: a full pass.
      this.#kick(wait, true)
    }
    this.#events.emit('pass', outcome)
  }

  async #pass(full: boolean, dirtyPaths: ReadonlySet<string>): Promise<PassOutcome> {
    const startedAt = performance.now()
    try {
      return await this.#passUnsafe(startedAt, full, dirtyPaths)
    } catch (err) {
      // A bug, not an outage: log it and keep the loop alive.
      this.#log.error(
        { err: { message: (err as Error).message, stack: (err as Error).stack } },
        'pass failed',
      )
      this.#fail(err)
      return { ok: false, full, drained: false, startedAt }
    }
  }

  /**
   * A full pass rediscovers every file and stats each (synchronously: for a thousand
   * files that is a few milliseconds, awaiting each stat ten times that); a pass started
   * by watch events stats only the known files they named.
   */
  async #passUnsafe(
    startedAt: number,
    full: boolean,
    dirtyPaths: ReadonlySet<string>,
  ): Promise<PassOutcome> {
    let files: SessionFile[]
    if (full) {
      this.#sources = await resolveWatchSources(
        this.#opts.env,
        this.#opts.watchPaths,
        this.#opts.home,
      )
      files = await discoverSessionFiles(this.#sources, {
        // Every full pass meets it again: logged once, like an unreadable file.
        onUnreadable: (path, error) => {
          const key = `${path}:${error.code ?? error.message}`
          if (this.#unreadableLogged.has(key)) return
          this.#unreadableLogged.add(key)
          this.#log.warn({ path, error: error.message }, 'directory could not be read')
        },
      })
      this.#index = new Map(files.map((f) => [f.path, f]))
      this.#filesWatched = files.length
      this.#syncWatchers(files.map((f) => dirname(f.path)))
    } else {
      files = [...dirtyPaths].flatMap((p) => this.#index.get(p) ?? [])
    }

    const changed: Candidate[] = []
    const present = new Set<string>()
    for (const f of files) {
      const c = statCandidate(f)
      if (!c) continue
      present.add(c.file.path)
      const k = this.#known.get(c.file.path)
      if (k?.settled && k.size === c.size && k.mtimeMs === c.mtimeMs && k.ino === c.ino) continue
      changed.push(c)
    }
    if (full)
      for (const path of this.#known.keys()) if (!present.has(path)) this.#known.delete(path)
    if (changed.length === 0) {
      this.#pending = { files: 0, events: 0, bytes: 0 }
      return { ok: true, full, drained: true, startedAt }
    }

    try {
      this.#token = await this.#upload.tokenManager.getToken()
    } catch (err) {
      this.#pending = {
        files: changed.length,
        events: this.#pending.events,
        bytes: changed.reduce((n, c) => n + c.size, 0),
      }
      this.#fail(err)
      return { ok: false, full, drained: false, startedAt }
    }

    const uploader = new Uploader({
      send: this.#upload.send,
      store: this.#store,
      isTooLarge,
      onRejected: (r) =>
        this.#log.warn(
          { path: r.path, event_key: r.eventKey, error: r.error },
          'rejected by the server',
        ),
    })
    const read = new Map<string, { c: Candidate; events: number; bytes: number }>()
    /** Files not reached because a batch failed first: still pending. */
    const notReached: Candidate[] = []
    for (const c of changed) {
      if (uploader.failure !== undefined) {
        notReached.push(c)
        continue
      }
      const plan = await planFile(c, this.#store)
      const settle = () =>
        this.#known.set(c.file.path, {
          size: c.size,
          mtimeMs: c.mtimeMs,
          ino: c.ino,
          settled: true,
        })
      // First line still being written: not a session file yet, and not pending.
      if (plan.kind === 'incomplete') continue
      if (plan.kind === 'unchanged') {
        followMove(this.#store, c, plan)
        settle()
        continue
      }
      if (plan.kind === 'unreadable') {
        const key = `${c.file.path}:${c.mtimeMs}`
        if (!this.#unreadableLogged.has(key)) {
          this.#unreadableLogged.add(key)
          this.#log.warn(
            { path: c.file.path, error: plan.error.message },
            'session file could not be read',
          )
        }
        settle()
        continue
      }
      for (const e of plan.result.errors.slice(0, 3)) {
        this.#log.warn({ path: e.path, line: e.line, error: e.message }, 'malformed record')
      }
      for (const k of plan.sessionKeys) if (plan.result.events.length > 0) this.#sessionsSent.add(k)
      read.set(c.file.path, {
        c,
        events: plan.result.events.length,
        bytes: Math.max(0, c.size - plan.fromOffset),
      })
      await uploader.add(toPending(c, plan))
    }
    const notDone = await uploader.finish()
    const s = uploader.stats
    this.#uploaded.batches += s.batches
    this.#uploaded.events += s.eventsSent
    this.#uploaded.accepted += s.accepted
    this.#uploaded.duplicates += s.duplicates
    this.#uploaded.rejected += s.rejected
    this.#uploaded.sessions = this.#sessionsSent.size
    if (s.batches > 0) this.#lastUploadAt = new Date()

    const failedPaths = new Set(notDone.map((p) => p.identity.path))
    const pending = { files: 0, events: 0, bytes: 0 }
    for (const [path, r] of read) {
      if (failedPaths.has(path)) {
        pending.files++
        pending.events += r.events
        pending.bytes += r.bytes
      } else {
        this.#known.set(path, { size: r.c.size, mtimeMs: r.c.mtimeMs, ino: r.c.ino, settled: true })
      }
    }
    for (const c of notReached) {
      pending.files++
      pending.bytes += c.size
    }
    this.#pending = pending
    if (uploader.failure !== undefined) {
      this.#fail(uploader.failure)
      return { ok: false, full, drained: false, startedAt }
    }
    this.#succeeded()
    if (s.eventsSent > 0) {
      this.#log.info(
        {
          files: read.size,
          events: s.eventsSent,
          batches: s.batches,
          accepted: s.accepted,
          duplicates: s.duplicates,
          rejected: s.rejected,
          ms: Math.round(performance.now() - startedAt),
        },
        'uploaded',
      )
    }
    return { ok: true, full, drained: true, startedAt }
  }

  #succeeded(): void {
    if (this.#failingSince || this.#pauseReason) {
      this.#log.info(
        { failing_since: this.#failingSince?.toISOString() },
        this.#pauseReason ? 'resumed: a fresh ID token was exchanged' : 'uploads recovered',
      )
    }
    const changed = this.#failingSince !== undefined || this.#pauseReason !== undefined
    this.#failingSince = undefined
    this.#pauseReason = undefined
    if (this.#state === 'paused') this.#state = 'running'
    // `health` reads the file: let it see a recovery now, not at the next heartbeat.
    if (changed) void this.#writeState()
  }

  #fail(err: unknown): void {
    const { message, hint } = describeUploadError(err, this.#upload.endpoint)
    const first = this.#failingSince === undefined
    this.#failingSince ??= new Date()
    const exhausted =
      err instanceof SubjectTokenExhaustedError || this.#upload.tokenManager.state === 'exhausted'
    if (exhausted) {
      if (this.#pauseReason === undefined) {
        this.#log.warn({ error: message, hint }, 'paused: the subject token is exhausted')
      }
      this.#pauseReason = message
      if (this.#state === 'running') this.#state = 'paused'
    } else if (first || this.#lastError?.message !== message) {
      this.#log.warn({ error: message, hint }, 'upload failed; retrying with backoff')
    }
    this.#lastError = { message, hint: hint ?? null, at: new Date().toISOString() }
    if (first) void this.#writeState()
  }

  /** Watches each directory holding session files, plus the roots (new sessions, new dirs). */
  #syncWatchers(fileDirs: readonly string[]): void {
    if (this.#stopping) return
    const wanted = new Set([...fileDirs, ...this.#sources.flatMap((s) => s.roots)])
    for (const [dir, w] of this.#watchers) {
      if (!wanted.has(dir)) {
        w.close()
        this.#watchers.delete(dir)
      }
    }
    for (const dir of wanted) {
      if (this.#watchers.has(dir)) continue
      try {
        const w = watch(dir, { persistent: false }, (_event, name) => {
          // A known session file changed: re-read it alone. Anything else (a new file, a
          // new dir, no name) may be a new session: rediscover.
          const path = name ? join(dir, name) : undefined
          if (path !== undefined && this.#index.has(path)) this.#dirtyPaths.add(path)
          else this.#needFull = true
          this.#kick(this.#t.batchWindowMs, false)
        })
        w.on('error', () => {
          w.close()
          this.#watchers.delete(dir)
        })
        this.#watchers.set(dir, w)
      } catch {
        // Missing dir (agent not used yet) or out of inotify watches: the rescan covers it.
      }
    }
  }

  /** Rewrites the status file; writes are queued, so two never share the temp file. */
  #writeState(): Promise<void> {
    this.#writing = this.#writing.then(() => this.#writeStateNow())
    return this.#writing
  }

  async #writeStateNow(): Promise<void> {
    const tmp = `${this.paths.stateFile}.${process.pid}.tmp`
    try {
      await writeFile(tmp, `${JSON.stringify(this.status())}\n`, { mode: 0o600 })
      await rename(tmp, this.paths.stateFile)
    } catch (err) {
      this.#log.warn({ error: (err as Error).message }, 'could not write the status file')
    }
  }
}

/** Creates the pid file exclusively; replaces one left by a dead process. */
async function acquirePidFile(paths: DaemonPaths): Promise<void> {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await open(paths.pidFile, 'wx', 0o600)
      await fh.writeFile(pidFileContent(process.pid))
      await fh.close()
      return
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    const pid = livePid(await readFile(paths.pidFile, 'utf8').catch(() => ''))
    if (pid !== undefined && pid !== process.pid) {
      throw new DaemonAlreadyRunningError(pid, paths.stateDir)
    }
    await unlink(paths.pidFile).catch(() => {})
  }
  throw new Error(`could not create ${paths.pidFile}`)
}

async function releasePidFile(paths: DaemonPaths): Promise<void> {
  const content = await readFile(paths.pidFile, 'utf8').catch(() => '')
  if (content.split('\n')[0]?.trim() === String(process.pid)) {
    await unlink(paths.pidFile).catch(() => {})
  }
}
