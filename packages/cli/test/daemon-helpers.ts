// Helpers of the daemon's end-to-end tests: session lines in the agents' real formats
// (one event per line, so a test can compare the server's counts with what it wrote),
// the server's view of a session, the daemon's files, a delaying proxy, free ports.
import { randomUUID } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { appendFile, mkdir, writeFile } from 'node:fs/promises'
import { createServer, request, type Server } from 'node:http'
import { createServer as createNetServer, type AddressInfo } from 'node:net'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { callDaemon } from '../src/daemon/control-client.ts'
import type { DrainResult } from '../src/daemon/daemon.ts'
import { daemonPaths, isAlive } from '../src/daemon/state-dir.ts'
import type { DaemonStatus } from '../src/daemon/status.ts'
import type { CliRun } from './processes.ts'

const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url))
const FIXTURE_CLAUDE_SID = '11111111-2222-4333-8444-555555555555'

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** A TCP port nobody listens on right now (for a server restarted on the same address). */
export async function freePort(): Promise<number> {
  const s = createNetServer()
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
  const { port } = s.address() as AddressInfo
  await new Promise((resolve) => s.close(resolve))
  return port
}

/** Polls `fn` until it returns something truthy; throws with `what` after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false | null> | T | undefined | false | null,
  timeoutMs = 30_000,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await fn()
      if (v) return v
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`,
      )
    }
    await sleep(everyMs)
  }
}

/** Fails with the command's output when it did not exit with `code`. */
export function expectExit(r: CliRun, code: number): void {
  if (r.code !== code) {
    throw new Error(
      `exit code ${r.code}, expected ${code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`,
    )
  }
}

// ---------------------------------------------------------------------------------------
// Session files in the agents' formats

const iso = (n: number) => new Date(Date.parse('2026-02-01T09:00:00.000Z') + n * 1000).toISOString()

/**
 * One Claude Code line: a user (even n) or assistant (odd n) text message with its own
 * uuid and timestamp, no usage: exactly one event on the server (key `u:<uuid>`).
 */
export function claudeLine(sid: string, n: number, text = `claude message ${n} of ${sid}`): string {
  const common = {
    parentUuid: null,
    isSidechain: false,
    userType: 'external',
    cwd: '/tmp/proj',
    sessionId: sid,
    version: '2.1.90',
    gitBranch: 'main',
    uuid: randomUUID(),
    timestamp: iso(n),
  }
  return JSON.stringify(
    n % 2 === 0
      ? { ...common, type: 'user', message: { role: 'user', content: text } }
      : {
          ...common,
          type: 'assistant',
          message: {
            model: 'claude-sonnet-4-6',
            id: `msg_${randomUUID()}`,
            type: 'message',
            role: 'assistant',
            content: [{ type: 'text', text }],
          },
        },
  )
}

/** `<claudeDir>/projects/-tmp-proj/<sid>.jsonl` */
export function claudeFile(claudeDir: string, sid: string): string {
  return join(claudeDir, 'projects', '-tmp-proj', `${sid}.jsonl`)
}

/**
 * The complete records of the Claude Code fixture (its cut lines left out) under a new
 * session id: a realistic start of a session file (summary, thinking, tool use and result,
 * compaction) for tests that then append {@link claudeLine}s.
 */
export function claudeFixtureLines(sid: string): string[] {
  const text = readFileSync(
    join(FIXTURES, 'claude-code', 'projects', '-tmp-proj', `${FIXTURE_CLAUDE_SID}.jsonl`),
    'utf8',
  )
  return text
    .split('\n')
    .filter((l) => {
      try {
        JSON.parse(l)
        return true
      } catch {
        return false
      }
    })
    .map((l) => l.replaceAll(FIXTURE_CLAUDE_SID, sid))
}

/** A Codex session id (UUID v7 shape) and its rollout path under `<codexDir>/sessions/`. */
export function codexRollout(codexDir: string, id = codexId()): { id: string; path: string } {
  return {
    id,
    path: join(codexDir, 'sessions', '2026', '02', '01', `rollout-2026-02-01T09-00-00-${id}.jsonl`),
  }
}

export function codexId(): string {
  const hex = randomUUID().replaceAll('-', '')
  return `019c${hex.slice(0, 4)}-${hex.slice(4, 8)}-7${hex.slice(9, 12)}-8${hex.slice(13, 16)}-${hex.slice(16, 28)}`
}

/** The first line of a Codex rollout (one `meta` event). */
export function codexMetaLine(id: string): string {
  return JSON.stringify({
    timestamp: iso(0),
    type: 'session_meta',
    payload: {
      id,
      timestamp: iso(0),
      cwd: '/tmp/proj',
      originator: 'codex_cli_rs',
      cli_version: '0.120.0',
      source: 'cli',
      git: { branch: 'main' },
    },
  })
}

/** A Codex `response_item` message (user for even n, assistant for odd): one event. */
export function codexLine(n: number, text = `codex message ${n}`): string {
  const user = n % 2 === 0
  return JSON.stringify({
    timestamp: iso(n),
    type: 'response_item',
    payload: {
      type: 'message',
      role: user ? 'user' : 'assistant',
      content: [{ type: user ? 'input_text' : 'output_text', text }],
    },
  })
}

/** Appends complete lines (each with its `\n`), creating the file and its directory. */
export async function appendLines(path: string, lines: readonly string[]): Promise<void> {
  if (lines.length === 0) return
  await mkdir(dirname(path), { recursive: true })
  await appendFile(path, `${lines.join('\n')}\n`)
}

/** A Gemini CLI legacy `session-*.json` document (whole file, rewritten in place). */
export function geminiLegacyDoc(
  sessionId: string,
  messages: readonly { id: string; type: 'user' | 'gemini'; content: string }[],
  lastUpdated: string,
): string {
  return JSON.stringify(
    {
      sessionId,
      projectHash: 'f'.repeat(64),
      startTime: '2026-02-01T09:00:00.000Z',
      lastUpdated,
      messages: messages.map((m, i) => ({ ...m, timestamp: iso(i + 1) })),
    },
    null,
    2,
  )
}

/** Writes `text` to `path`, creating the directory. */
export async function writeNew(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true })
  await writeFile(path, text)
}

// ---------------------------------------------------------------------------------------
// The server's view

/** A stored session as the list API returns it (the fields these tests read). */
export interface ServerSession {
  id: string
  session_key: string
  agent: string | null
  source_session_id: string | null
  event_count: number
}

/** Every session of `owner`, by source session id. */
export async function sessionsBySource(
  url: string,
  readToken: string,
  owner: string,
): Promise<Map<string, ServerSession>> {
  const out = new Map<string, ServerSession>()
  let cursor: string | null = null
  do {
    const q: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''
    const res = await fetch(`${url}/api/v1/sessions?limit=500&owner=${owner}${q}`, {
      headers: { authorization: `Bearer ${readToken}` },
    })
    if (!res.ok) throw new Error(`list sessions: ${res.status} ${await res.text()}`)
    const page = (await res.json()) as { items: ServerSession[]; next_cursor: string | null }
    for (const s of page.items) out.set(s.source_session_id ?? s.session_key, s)
    cursor = page.next_cursor
  } while (cursor)
  return out
}

/** Event count of one session on the server (0 when it is not there yet). */
export async function eventCount(
  url: string,
  readToken: string,
  owner: string,
  sourceSessionId: string,
): Promise<number> {
  return (await sessionsBySource(url, readToken, owner)).get(sourceSessionId)?.event_count ?? 0
}

/** A stored event (the fields these tests read). */
export interface ServerEvent {
  event_key: string
  kind: string
  text: string | null
  seq: number
}

/** Every event of a session (by its numeric id), in order, all pages; only `kind` if given. */
export async function sessionEvents(
  url: string,
  readToken: string,
  id: string,
  kind?: string,
): Promise<ServerEvent[]> {
  const out: ServerEvent[] = []
  let cursor: string | null = null
  do {
    const q: string = `${kind ? `&kind=${kind}` : ''}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`
    const res = await fetch(`${url}/api/v1/sessions/${id}/events?limit=500${q}`, {
      headers: { authorization: `Bearer ${readToken}` },
    })
    if (!res.ok) throw new Error(`list events: ${res.status} ${await res.text()}`)
    const page = (await res.json()) as { items: ServerEvent[]; next_cursor: string | null }
    out.push(...page.items)
    cursor = page.next_cursor
  } while (cursor)
  return out
}

/**
 * The texts of a session's user and assistant messages on the server (the records these
 * tests write), [] when the session is not there.
 */
export async function eventTexts(
  url: string,
  readToken: string,
  owner: string,
  sourceSessionId: string,
): Promise<string[]> {
  const s = (await sessionsBySource(url, readToken, owner)).get(sourceSessionId)
  if (!s) return []
  const out: string[] = []
  for (const kind of ['user_message', 'assistant_message']) {
    for (const e of await sessionEvents(url, readToken, s.id, kind)) out.push(e.text ?? '')
  }
  return out
}

// ---------------------------------------------------------------------------------------
// The daemon's files and socket

/** The pid in `daemon.pid`, or undefined. */
export function daemonPid(stateDir: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(daemonPaths(stateDir).pidFile, 'utf8').trim(), 10)
    return Number.isInteger(pid) && pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

/** `daemon.json` (the heartbeat snapshot), or undefined. */
export function daemonSnapshot(stateDir: string): DaemonStatus | undefined {
  try {
    return JSON.parse(readFileSync(daemonPaths(stateDir).stateFile, 'utf8')) as DaemonStatus
  } catch {
    return undefined
  }
}

/** `GET /status` on the control socket. */
export async function socketStatus(stateDir: string): Promise<DaemonStatus | undefined> {
  const r = await callDaemon<DaemonStatus>(daemonPaths(stateDir).socket, 'GET', '/status', 5000)
  return r.ok && r.status === 200 ? r.body : undefined
}

/**
 * `POST /flush` on the control socket (what `hivemind flush` sends), without the cost of
 * a CLI process: everything written before the call is on the server when it drains.
 */
export async function socketFlush(stateDir: string, timeoutMs = 30_000): Promise<DrainResult> {
  const r = await callDaemon<DrainResult>(
    daemonPaths(stateDir).socket,
    'POST',
    `/flush?timeout_ms=${timeoutMs}`,
    timeoutMs + 5000,
  )
  if (!r.ok) throw new Error(`flush: ${r.message}`)
  if (r.status !== 200) throw new Error(`flush: ${r.status} ${JSON.stringify(r.body)}`)
  return r.body
}

/** The daemon's log records (JSON lines of `daemon.log`). */
export function daemonLog(stateDir: string): { msg: string; [k: string]: unknown }[] {
  const file = daemonPaths(stateDir).logFile
  if (!existsSync(file)) return []
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { msg: string })
}

/** Kills whatever daemon the state dir's pid file names (cleanup after a failed test). */
export function killDaemon(stateDir: string): void {
  const pid = daemonPid(stateDir)
  if (pid === undefined || pid === process.pid || !isAlive(pid)) return
  try {
    process.kill(pid, 'SIGCONT')
    process.kill(pid, 'SIGKILL')
  } catch {
    // already gone
  }
}

/**
 * Is `pid` a live process? Unlike `kill(pid, 0)`, a zombie (exited, not reaped: a
 * detached daemon whose parent is an init that does not reap) counts as gone.
 */
export function processRunning(pid: number): boolean {
  if (!isAlive(pid)) return false
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch {
    return process.platform !== 'linux'
  }
}

// ---------------------------------------------------------------------------------------
// A proxy in front of the server

export interface DelayProxy {
  url: string
  /** Delay before answering `POST /api/v1/sessions/batch` (after the server answered). */
  delayMs: number
  /** Batch requests the server has answered (stored) so far. */
  readonly batchesStored: number
  /** Batch requests received and not answered to the client yet. */
  readonly batchesInFlight: number
  /** Batches the server stored whose answer the proxy still holds back. */
  readonly batchesHeld: number
  close(): Promise<void>
}

/**
 * A tiny HTTP proxy on loopback: everything goes to `target`; batch uploads are
 * forwarded at once (the server stores them) and their answers held back `delayMs`, so
 * the client sees a slow server and may die between the store and the acknowledgement.
 */
export async function startDelayProxy(target: string, delayMs = 0): Promise<DelayProxy> {
  const t = new URL(target)
  let stored = 0
  let inFlight = 0
  let held = 0
  const server: Server = createServer((req, res) => {
    const isBatch = req.method === 'POST' && req.url === '/api/v1/sessions/batch'
    if (isBatch) inFlight++
    const done = () => {
      if (isBatch) inFlight--
    }
    const upstream = request(
      {
        host: t.hostname,
        port: t.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: t.host },
      },
      (up) => {
        const chunks: Buffer[] = []
        up.on('data', (c: Buffer) => chunks.push(c))
        up.on('end', () => {
          const ok = isBatch && (up.statusCode ?? 0) < 300
          if (ok) {
            stored++
            held++
          }
          const answer = () => {
            if (ok) held--
            done()
            if (res.destroyed) return
            res.writeHead(up.statusCode ?? 502, up.headers)
            res.end(Buffer.concat(chunks))
          }
          const wait = isBatch ? proxy.delayMs : 0
          if (wait > 0) setTimeout(answer, wait)
          else answer()
        })
      },
    )
    upstream.on('error', (err) => {
      done()
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ error: `proxy: ${err.message}`, code: 'bad_gateway' }))
    })
    req.pipe(upstream)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  const proxy: DelayProxy = {
    url: `http://127.0.0.1:${port}`,
    delayMs,
    get batchesStored() {
      return stored
    },
    get batchesInFlight() {
      return inFlight
    },
    get batchesHeld() {
      return held
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
  return proxy
}

/**
 * Short loop timings for daemons under test (`HIVEMIND_TEST_DAEMON_TIMINGS`, honoured only
 * with NODE_ENV=test): a 100 ms batch window, a rescan every 0.5 s, and retries
 * within seconds, so suites do not wait on the defaults.
 */
export const FAST_TIMINGS = JSON.stringify({
  batchWindowMs: 100,
  rescanMs: 500,
  heartbeatMs: 250,
  backoffMs: 200,
  maxBackoffMs: 2000,
})
