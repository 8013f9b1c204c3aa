// The built `hivemind` CLI and its daemon as real processes, for bench/daemon.bench.ts:
// build check, `hivemind start`/`stop`, the control socket, /proc readings and Claude
// Code session lines.
import { spawn, spawnSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { request } from 'node:http'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { daemonPaths } from '../../packages/cli/src/daemon/state-dir.ts'

export const ROOT = fileURLToPath(new URL('../../', import.meta.url))
export const CLI_BIN = join(ROOT, 'packages/cli/bin.js')

/** Newest mtime of the files under `dir` (tests excluded), 0 when there is none. */
function newest(dir: string): number {
  let max = 0
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile() || /\.test\.ts$/.test(e.name)) continue
    max = Math.max(max, statSync(join(e.parentPath, e.name)).mtimeMs)
  }
  return max
}

/** Why `packages/cli/dist` (and the SDK bundle it loads) cannot be used as is, if so. */
export function builtCliProblem(): string | undefined {
  const outputs = ['packages/cli/dist/index.js', 'packages/sdk/dist/index.js'].map((p) =>
    join(ROOT, p),
  )
  const missing = outputs.find((p) => !existsSync(p))
  if (missing) return `${missing} is missing`
  const built = Math.min(...outputs.map((p) => statSync(p).mtimeMs))
  const inputs = Math.max(
    newest(join(ROOT, 'packages/cli/src')),
    newest(join(ROOT, 'packages/sdk/src')),
    ...['packages/cli/package.json', 'packages/cli/tsup.config.ts', 'tsup.config.base.ts'].map(
      (p) => statSync(join(ROOT, p)).mtimeMs,
    ),
  )
  if (inputs > built) return 'packages/cli/dist is older than its sources'
  return undefined
}

/**
 * Builds the SDK and the CLI when their bundles are missing or older than their sources
 * (`BENCH_NO_BUILD=1`: fail instead). Uses the pnpm running `pnpm bench`, else `npx pnpm@10`.
 */
export function ensureBuiltCli(): void {
  const problem = builtCliProblem()
  if (!problem) return
  const cmd = 'pnpm --filter @hivemind/sdk --filter @hivemind/cli build'
  if (process.env.BENCH_NO_BUILD === '1') {
    throw new Error(`${problem}: run \`npx -y pnpm@10 ${cmd.slice(5)}\` first`)
  }
  console.log(`(${problem}: building it with \`${cmd}\`)`)
  const pnpm = process.env.npm_execpath
  const args = ['--filter', '@hivemind/sdk', '--filter', '@hivemind/cli', 'build']
  const t = performance.now()
  const r =
    pnpm && /pnpm/.test(pnpm) && /\.[cm]?js$/.test(pnpm)
      ? spawnSync(process.execPath, [pnpm, ...args], { cwd: ROOT, encoding: 'utf8' })
      : spawnSync('npx', ['-y', 'pnpm@10', ...args], { cwd: ROOT, encoding: 'utf8' })
  if (r.status !== 0) {
    throw new Error(`build failed (${cmd}):\n${(r.stdout + r.stderr).slice(-3000)}`)
  }
  console.log(`(built in ${((performance.now() - t) / 1000).toFixed(1)} s)`)
  // Sources edited while it built (others at work in the tree) are not this run's concern.
  const still = builtCliProblem()
  if (still && !/older/.test(still)) throw new Error(`after the build, ${still}`)
  if (still) console.log('(sources changed during the build: measuring the bundle as built)')
}

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
  ms: number
}

/** Runs the built CLI (`node packages/cli/bin.js …`) with only `env` (plus PATH). */
export function runBuiltCli(
  args: readonly string[],
  env: Record<string, string>,
  cwd: string,
): Promise<CliResult> {
  const t = performance.now()
  const child = spawn(process.execPath, [CLI_BIN, ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  return new Promise((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr, ms: performance.now() - t }))
  })
}

/** Daemons started here: killed on exit whatever happens. */
const started = new Set<number>()
process.on('exit', () => {
  for (const pid of started) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
})

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

export interface DaemonHandle {
  pid: number
  stateDir: string
  socket: string
  logFile: string
  /** `hivemind stop`; SIGKILL when it is still alive afterwards. Returns stop's output. */
  stop(): Promise<string>
}

/**
 * `hivemind start --state-dir DIR` (the detached daemon; returns once the server accepted
 * its credential). `nodeOptions` goes to NODE_OPTIONS of the daemon (e.g. `--cpu-prof`).
 */
export async function startDaemon(
  env: Record<string, string>,
  cwd: string,
  stateDir: string,
  nodeOptions?: string,
): Promise<DaemonHandle> {
  const runEnv = { ...env, ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}) }
  const r = await runBuiltCli(['start', '--state-dir', stateDir], runEnv, cwd)
  const paths = daemonPaths(stateDir)
  const pid = Number.parseInt(
    existsSync(paths.pidFile) ? readFileSync(paths.pidFile, 'utf8').trim() : '',
    10,
  )
  if (r.code !== 0 || !Number.isInteger(pid)) {
    const log = existsSync(paths.logFile) ? readFileSync(paths.logFile, 'utf8').slice(-2000) : ''
    throw new Error(`hivemind start failed (${r.code}): ${r.stdout}${r.stderr}\n${log}`)
  }
  started.add(pid)
  let stopped: Promise<string> | undefined
  return {
    pid,
    stateDir,
    socket: paths.socket,
    logFile: paths.logFile,
    stop() {
      stopped ??= runBuiltCli(['stop', '--state-dir', stateDir], runEnv, cwd).then((s) => {
        if (alive(pid)) process.kill(pid, 'SIGKILL')
        started.delete(pid)
        return (s.stdout + s.stderr).trim()
      })
      return stopped
    },
  }
}

/** One request to the daemon's control socket (what `hivemind flush`/`status` send). */
export function callControl<T>(
  socket: string,
  method: 'GET' | 'POST',
  path: string,
  timeoutMs = 120_000,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, method, path, timeout: timeoutMs }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (text += d))
      res.on('end', () => {
        try {
          resolve(JSON.parse(text) as T)
        } catch {
          reject(new Error(`control ${path}: unexpected answer ${text.slice(0, 200)}`))
        }
      })
    })
    req.on('timeout', () => req.destroy(new Error(`control ${path}: no answer`)))
    req.on('error', reject)
    req.end()
  })
}

export interface ControlStatus {
  files_watched: number
  pending: { files: number; events: number; bytes: number }
  uploaded: { batches: number; events: number; accepted: number; duplicates: number }
  last_error: { message: string } | null
}

export const daemonStatus = (d: DaemonHandle) =>
  callControl<ControlStatus>(d.socket, 'GET', '/status')

/** `POST /flush`: resolves when everything written before the call is acknowledged. */
export async function flushDaemon(d: DaemonHandle, timeoutMs = 120_000): Promise<void> {
  const r = await callControl<{ drained: boolean; pending: unknown }>(
    d.socket,
    'POST',
    `/flush?timeout_ms=${timeoutMs}`,
    timeoutMs + 5000,
  )
  if (!r.drained) throw new Error(`flush did not drain: ${JSON.stringify(r.pending)}`)
}

/** Resident set (now and peak, KiB) and CPU time (utime + stime, ms) of a process. */
export function procStats(pid: number): { rssKb: number; hwmKb: number; cpuMs: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0)
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // Fields 14 and 15 of proc(5), counted from `state` (field 3).
  const ticks = Number(fields[11]) + Number(fields[12])
  return { rssKb: kb('VmRSS'), hwmKb: kb('VmHWM'), cpuMs: (ticks * 1000) / CLK_TCK }
}

/** Pids of the PostgreSQL processes (postmaster and backends) on this machine. */
export function postgresPids(): number[] {
  const out: number[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      if (readFileSync(`/proc/${name}/comm`, 'utf8').trim() === 'postgres') out.push(Number(name))
    } catch {
      // gone
    }
  }
  return out
}

/** CPU ms of each pid still alive (a pid that ended counts what it had at `before`). */
export function cpuSnapshot(pids: readonly number[]): Map<number, number> {
  const m = new Map<number, number>()
  for (const pid of pids) {
    try {
      m.set(pid, procStats(pid).cpuMs)
    } catch {
      // gone
    }
  }
  return m
}

/** CPU ms used between two snapshots; pids new in `after` count from 0. */
export function cpuBetween(before: Map<number, number>, after: Map<number, number>): number {
  let ms = 0
  for (const [pid, v] of after) ms += v - (before.get(pid) ?? 0)
  return ms
}

/** Busy CPU ms of the whole machine (all cores) from /proc/stat. */
export function machineBusyMs(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]
  const v = line.trim().split(/\s+/).slice(1).map(Number)
  // user nice system idle iowait irq softirq steal …
  const busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
  return (busy * 1000) / CLK_TCK
}

const CLK_TCK = (() => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })
  const n = Number(r.stdout?.trim())
  return Number.isFinite(n) && n > 0 ? n : 100
})()

const WORDS = (
  'the build fails because the migration runs before the schema exists so we move the ' +
  'step after the database is ready then rerun the tests and check the logs for any ' +
  'timeout or retry that the client reports when the server answers with an error'
).split(' ')

/** Some words, deterministic in `seed`. */
export function text(seed: number, words: number): string {
  const out: string[] = []
  for (let i = 0; i < words; i++) out.push(WORDS[(seed * 7 + i * 13) % WORDS.length])
  return out.join(' ')
}

/**
 * One Claude Code record (SESSION-FORMATS.md §1), as the fixtures in
 * packages/cli/test/fixtures/claude-code have them: a user prompt (one event) or an
 * assistant message with usage (two events: the message and its usage).
 */
export function claudeLine(
  sessionId: string,
  kind: 'user' | 'assistant',
  parentUuid: string | null,
  uuid: string = randomUUID(),
  words = 40,
): string {
  const base = {
    parentUuid,
    isSidechain: false,
    userType: 'external',
    cwd: '/srv/bench',
    sessionId,
    version: '2.1.90',
    gitBranch: 'main',
  }
  const timestamp = new Date().toISOString()
  const seed = uuid.charCodeAt(0) + uuid.charCodeAt(5)
  const record =
    kind === 'user'
      ? {
          ...base,
          type: 'user',
          message: { role: 'user', content: text(seed, words) },
          uuid,
          timestamp,
        }
      : {
          ...base,
          message: {
            model: 'claude-sonnet-4-6',
            id: `msg_${uuid}`,
            type: 'message',
            role: 'assistant',
            content: [{ type: 'text', text: text(seed, words) }],
            usage: {
              input_tokens: 10,
              cache_creation_input_tokens: 100,
              cache_read_input_tokens: 1000,
              output_tokens: 50,
            },
          },
          requestId: `req_${uuid}`,
          type: 'assistant',
          uuid,
          timestamp,
        }
  return `${JSON.stringify(record)}\n`
}

/** Events the server stores for a {@link claudeLine} of this kind. */
export const EVENTS_PER_LINE = { user: 1, assistant: 2 } as const

/**
 * A writer process: appends `lines` records to every file, round-robin, one write per
 * line on an open descriptor, as fast as it can; prints `{ms, lines, bytes}` when done.
 * Records alternate user / assistant starting with an assistant (after the user line the
 * file was created with).
 */
export const WRITER_SCRIPT = String.raw`
const { openSync, writeSync, closeSync } = require('node:fs')
const { randomUUID } = require('node:crypto')
const cfg = JSON.parse(process.env.BENCH_WRITER)
const words = ${JSON.stringify(WORDS)}
const say = (seed, n) => { const o = []; for (let i = 0; i < n; i++) o.push(words[(seed * 7 + i * 13) % words.length]); return o.join(' ') }
const fds = cfg.files.map((f) => openSync(f.path, 'a'))
const parents = cfg.files.map((f) => f.parent)
let bytes = 0
const t = performance.now()
for (let r = 0; r < cfg.lines; r++) {
  for (let i = 0; i < fds.length; i++) {
    const uuid = randomUUID()
    const base = { parentUuid: parents[i], isSidechain: false, userType: 'external', cwd: '/srv/bench', sessionId: cfg.files[i].sid, version: '2.1.90', gitBranch: 'main' }
    const timestamp = new Date().toISOString()
    const rec = r % 2 === 1
      ? { ...base, type: 'user', message: { role: 'user', content: say(r + i, cfg.words) }, uuid, timestamp }
      : { ...base, message: { model: 'claude-sonnet-4-6', id: 'msg_' + uuid, type: 'message', role: 'assistant', content: [{ type: 'text', text: say(r + i, cfg.words) }], usage: { input_tokens: 10, cache_creation_input_tokens: 100, cache_read_input_tokens: 1000, output_tokens: 50 } }, requestId: 'req_' + uuid, type: 'assistant', uuid, timestamp }
    const line = JSON.stringify(rec) + '\n'
    bytes += Buffer.byteLength(line)
    writeSync(fds[i], line)
    parents[i] = uuid
  }
}
for (const fd of fds) closeSync(fd)
process.stdout.write(JSON.stringify({ ms: performance.now() - t, lines: cfg.lines * fds.length, bytes }))
`

/**
 * A server that acknowledges every batch without reading it (`{accepted: 0, …}`) and
 * answers `GET /api/v1/me`: what the CLI alone can do, with storage out of the way.
 */
export function startNullServer(): Promise<{ url: string; pid: number; stop(): void }> {
  const script = String.raw`
const http = require('node:http')
const send = (res, status, body) => { const t = JSON.stringify(body); res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(t) }); res.end(t) }
const s = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url.startsWith('/api/v1/me')) return send(res, 200, { kind: 'service_account', id: 'sa_null', name: 'null server', scopes: ['write'] })
  if (req.method === 'POST' && req.url.startsWith('/api/v1/sessions/batch')) { req.resume(); req.on('end', () => send(res, 200, { accepted: 0, duplicates: 0, rejected: [] })); return }
  req.resume(); send(res, 404, { error: 'not_found', message: req.method + ' ' + req.url })
})
s.keepAliveTimeout = 60000
s.listen(0, '127.0.0.1', () => process.stdout.write(s.address().port + '\n'))
`
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
  return new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', (code) => reject(new Error(`null server exited with ${code}`)))
    child.stdout.once('data', (d: Buffer) =>
      resolve({
        url: `http://127.0.0.1:${d.toString().trim()}`,
        pid: child.pid!,
        stop: () => {
          child.removeAllListeners('exit')
          child.kill('SIGKILL')
        },
      }),
    )
  })
}
