// The tailing daemon (`hivemind start`), end to end with the BUILT CLI
// (packages/cli/bin.js, rebuilt first when older than its sources) against a real
// server process (PostgreSQL under `pnpm bench`, else PGlite), each number next to a
// baseline measured in the same run. Run in the order 1, 4, 3, 2 (health and the idle
// window use the first daemon while it runs); every daemon, writer and server is
// stopped at the end, or killed when the run fails.
//
// 1. Append → visible on the server, p50/p99 (goal p50 < 1 s), with default timings:
//    one Claude Code line appended at a time, the session's event_count polled every
//    20 ms. Baseline: the same kind of line parsed here and sent with one
//    POST /api/v1/sessions/batch (the server's own floor), polled the same way.
// 2. Sustained tail rate (goal ≥ 20 000 records/s): a writer process appends to 50
//    files at once as fast as it can; records / time from the first write until
//    `flush` (the control socket's POST /flush, what `hivemind flush` calls) returns.
//    Baseline: `hivemind import --all` of the same files (another owner, so the rows
//    are new), records/s including its process start. Where the time goes: CPU of the
//    daemon, the server and PostgreSQL, and the same run against a null server that
//    acknowledges batches without storing them (the CLI's own ceiling).
// 3. RSS and CPU of a daemon idle with a few files and with 1 000 watched files
//    (goal RSS < 80 MB, idle CPU ≈ 0), over a 10 s window after the catch-up.
//    Baseline: `node -e "setInterval(()=>{},1000)"` in the same window.
// 4. `hivemind health -q` cold start against a running daemon's state dir vs
//    `node -e 0`, alternating, medians (goal ≤ 1.5×).
//
// Knobs: BENCH_DAEMON_SAMPLES (latency samples, default 50), BENCH_DAEMON_TAIL_FILES
// (default 50), BENCH_DAEMON_TAIL_LINES (lines appended per file, default 1000),
// BENCH_DAEMON_IDLE_FILES (default 1000), BENCH_DAEMON_PROF_DIR=<dir> (--cpu-prof of the
// daemons into <dir>/<name>), BENCH_DAEMON_NODE_OPTIONS (NODE_OPTIONS of the daemons),
// BENCH_SERVER_NODE_ARGS (node flags of the server), BENCH_NO_BUILD=1 (fail instead of
// building a stale CLI).
import { spawn, spawnSync } from 'node:child_process'
import { createHash, randomUUID } from 'node:crypto'
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { claudeCodeAdapter } from '../packages/cli/src/adapters/claude-code.ts'
import { ADMIN_KEY, createToken, tempHome, type TempHome } from '../packages/cli/test/processes.ts'
import {
  CLI_BIN,
  EVENTS_PER_LINE,
  cpuBetween,
  cpuSnapshot,
  machineBusyMs,
  postgresPids,
  WRITER_SCRIPT,
  claudeLine,
  daemonStatus,
  ensureBuiltCli,
  flushDaemon,
  procStats,
  runBuiltCli,
  startDaemon,
  startNullServer,
  type DaemonHandle,
} from './lib/daemon-process.ts'
import { percentile, startBenchServer, stopBenchServer } from './lib/server-process.ts'

const SAMPLES = Number(process.env.BENCH_DAEMON_SAMPLES ?? 50)
const WARMUP = 3
const LATENCY_FILES = 5
const GAP_MS = 300
const POLL_MS = 20
const TAIL_FILES = Number(process.env.BENCH_DAEMON_TAIL_FILES ?? 50)
const TAIL_LINES = Number(process.env.BENCH_DAEMON_TAIL_LINES ?? 1000)
const IDLE_FILES = Number(process.env.BENCH_DAEMON_IDLE_FILES ?? 1000)
const IDLE_DIRS = 40
const IDLE_WINDOW_MS = 10_000
const HEALTH_RUNS = 30
const BUSY_SAMPLES = 20
const WORDS_PER_LINE = 40

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))
const median = (v: number[]) =>
  percentile(
    v.toSorted((a, b) => a - b),
    50,
  )
const sessionKey = (sid: string) =>
  createHash('sha256')
    .update(JSON.stringify(['claude-code', sid]))
    .digest('hex')
const verdict = (ok: boolean) => (ok ? 'OK' : 'UNDER GOAL')
const mb = (kb: number) => `${(kb / 1024).toFixed(1)} MB`

interface Server {
  url: string
  /** GET with a read+write token; throws on a non-2xx. */
  get<T>(path: string): Promise<T>
}

/** A Claude Code session file under `<home>/.claude/projects/<dir>/` with one user line. */
function newSession(home: TempHome, dir: string): { path: string; sid: string; parent: string } {
  const sid = randomUUID()
  const parent = randomUUID()
  const d = join(home.claudeDir, 'projects', dir)
  mkdirSync(d, { recursive: true })
  const path = join(d, `${sid}.jsonl`)
  writeFileSync(path, claudeLine(sid, 'user', null, parent, WORDS_PER_LINE))
  return { path, sid, parent }
}

export default async function daemonBench(): Promise<void> {
  ensureBuiltCli()
  const profDir = process.env.BENCH_DAEMON_PROF_DIR
  const prof = (name: string) =>
    [
      process.env.BENCH_DAEMON_NODE_OPTIONS ?? '',
      profDir ? `--cpu-prof --cpu-prof-dir=${join(profDir, name)}` : '',
    ]
      .join(' ')
      .trim() || undefined

  let db: { url: string; drop(): Promise<void> } | undefined
  if (process.env.HIVEMIND_TEST_DATABASE_URL) {
    const { freshPostgresDatabase } = await import('../packages/server/test/helpers.ts')
    db = await freshPostgresDatabase()
  }
  const storage = db ? 'PostgreSQL' : 'PGlite in memory'
  const server = await startBenchServer({
    databaseUrl: db?.url,
    env: { ADMIN_API_KEY: ADMIN_KEY, LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn' },
  })
  const homes: TempHome[] = []
  const daemons: DaemonHandle[] = []
  const others: (() => void)[] = []
  try {
    const { token, serviceAccountId: owner } = await createToken(server.url, ['read', 'write'])
    const api: Server = {
      url: server.url,
      async get<T>(path: string) {
        const res = await fetch(`${server.url}${path}`, {
          headers: { authorization: `Bearer ${token}` },
        })
        if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`)
        return (await res.json()) as T
      },
    }
    const envOf = (home: TempHome, tok = token) => ({
      ...home.env,
      HIVEMIND_ENDPOINT: server.url,
      HIVEMIND_TOKEN: tok,
    })
    const newHome = async () => {
      const h = await tempHome({ fixtures: false })
      homes.push(h)
      return h
    }
    console.log(`server                      ${storage}; CLI ${CLI_BIN} on Node ${process.version}`)

    // --- 1. append → visible ----------------------------------------------------------
    const homeA = await newHome()
    const files = Array.from({ length: LATENCY_FILES }, (_, i) =>
      newSession(homeA, `-srv-lat-${i}`),
    )
    const daemonA = await startDaemon(envOf(homeA), homeA.cwd, homeA.stateDir, prof('latency'))
    daemons.push(daemonA)
    await flushDaemon(daemonA)
    const counts = new Map<string, number>()
    for (const f of files) counts.set(f.sid, 1)

    /** Polls event_count of `sid` until it reaches `want`; ms since `t0`. */
    const waitVisible = async (sid: string, want: number, t0: number): Promise<number> => {
      const path = `/api/v1/sessions/${sessionKey(sid)}?owner=${owner}`
      for (;;) {
        const t = performance.now()
        const s = await api
          .get<{ event_count: number }>(path)
          .catch((err: Error) =>
            / 404 /.test(err.message) ? { event_count: 0 } : Promise.reject(err),
          )
        if (s.event_count >= want) return performance.now() - t0
        if (t - t0 > 20_000) throw new Error(`session ${sid}: ${s.event_count}/${want} after 20 s`)
        await sleep(Math.max(0, POLL_MS - (performance.now() - t)))
      }
    }

    // Baseline: a session outside every watched root, parsed here, POSTed directly.
    const direct = { sid: randomUUID(), parent: randomUUID(), dir: join(homeA.root, 'direct') }
    mkdirSync(direct.dir, { recursive: true })
    const directFile = {
      agent: 'claude-code' as const,
      path: join(direct.dir, `${direct.sid}.jsonl`),
      root: direct.dir,
    }
    writeFileSync(directFile.path, '')
    let directOffset = 0
    let directCount = 0
    const directSample = async (i: number): Promise<number> => {
      const kind = i % 2 === 0 ? 'assistant' : 'user'
      const uuid = randomUUID()
      const t0 = performance.now()
      appendFileSync(
        directFile.path,
        claudeLine(direct.sid, kind, direct.parent, uuid, WORDS_PER_LINE),
      )
      const parsed = await claudeCodeAdapter.parse(directFile, { fromOffset: directOffset })
      const res = await fetch(`${server.url}/api/v1/sessions/batch`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          sessions: directOffset === 0 ? parsed.sessions : [],
          events: parsed.events,
        }),
      })
      if (!res.ok) throw new Error(`POST batch: ${res.status} ${await res.text()}`)
      await res.arrayBuffer()
      directOffset = parsed.nextOffset
      directCount += parsed.events.length
      direct.parent = uuid
      return waitVisible(direct.sid, directCount, t0)
    }
    type Session = ReturnType<typeof newSession>
    const daemonSample = async (
      i: number,
      on: Session[] = files,
      events: Map<string, number> = counts,
    ): Promise<number> => {
      const f = on[i % on.length]
      const kind = Math.floor(i / on.length) % 2 === 0 ? 'assistant' : 'user'
      const uuid = randomUUID()
      const want = events.get(f.sid)! + EVENTS_PER_LINE[kind]
      const line = claudeLine(f.sid, kind, f.parent, uuid, WORDS_PER_LINE)
      const t0 = performance.now()
      appendFileSync(f.path, line)
      const ms = await waitVisible(f.sid, want, t0)
      events.set(f.sid, want)
      f.parent = uuid
      return ms
    }
    const viaDaemon: number[] = []
    const viaPost: number[] = []
    const startedLatency = performance.now()
    for (let i = 0; i < WARMUP + SAMPLES; i++) {
      const d = await daemonSample(i)
      const t = performance.now()
      const p = await directSample(i)
      if (i >= WARMUP) {
        viaDaemon.push(d)
        viaPost.push(p)
      }
      // ~300 ms between appends, jittered so samples fall at every phase of the rescan.
      await sleep(Math.max(0, GAP_MS + Math.random() * 100 - (performance.now() - t)))
    }
    viaDaemon.sort((a, b) => a - b)
    viaPost.sort((a, b) => a - b)
    const p50 = percentile(viaDaemon, 50)
    const p99 = percentile(viaDaemon, 99)
    const d50 = percentile(viaPost, 50)
    const d99 = percentile(viaPost, 99)
    const ms = (n: number) => `${n.toFixed(0)} ms`
    console.log(
      `\n1. append → visible         ${SAMPLES} samples over ${LATENCY_FILES} files (${((performance.now() - startedLatency) / 1000).toFixed(0)} s), poll every ${POLL_MS} ms`,
    )
    console.log(`   direct POST (baseline)   p50 ${ms(d50)}  p99 ${ms(d99)}`)
    console.log(
      `   via daemon               p50 ${ms(p50)}  p99 ${ms(p99)}  min ${ms(viaDaemon[0])}  max ${ms(viaDaemon.at(-1)!)}`,
    )
    console.log(
      `   ratio daemon / direct    ${(p50 / d50).toFixed(1)}× at p50  (goal p50 < 1 s) ${verdict(p50 < 1000)}`,
    )

    // --- 4. health cold start (daemon A is running) ------------------------------------
    const healthMs: number[] = []
    const bareMs: number[] = []
    const timed = (args: string[]) => {
      const t = performance.now()
      const r = spawnSync(process.execPath, args, {
        env: { PATH: process.env.PATH ?? '', HOME: homeA.root },
        stdio: 'ignore',
      })
      const elapsed = performance.now() - t
      if (r.status !== 0) throw new Error(`${args.join(' ')} exited with ${r.status}`)
      return elapsed
    }
    timed([CLI_BIN, 'health', '-q', '--state-dir', homeA.stateDir])
    timed(['-e', '0'])
    for (let i = 0; i < HEALTH_RUNS; i++) {
      healthMs.push(timed([CLI_BIN, 'health', '-q', '--state-dir', homeA.stateDir]))
      bareMs.push(timed(['-e', '0']))
    }
    const hMed = median(healthMs)
    const bMed = median(bareMs)
    console.log(
      `\n4. hivemind health -q       ${HEALTH_RUNS} runs each, alternating, against daemon A`,
    )
    console.log(`   node -e 0 (baseline)     median ${ms(bMed)}`)
    console.log(`   hivemind health -q       median ${ms(hMed)}`)
    console.log(
      `   ratio health / node      ${(hMed / bMed).toFixed(2)}×  (goal ≤ 1.5×) ${verdict(hMed / bMed <= 1.5)}`,
    )

    // --- 3. RSS / CPU idle --------------------------------------------------------------
    const homeB = await newHome()
    const idleFiles: Session[] = []
    for (let i = 0; i < IDLE_FILES; i++) {
      const f = newSession(homeB, `-srv-idle-${i % IDLE_DIRS}`)
      const uuid = randomUUID()
      appendFileSync(f.path, claudeLine(f.sid, 'assistant', f.parent, uuid, WORDS_PER_LINE))
      idleFiles.push({ ...f, parent: uuid })
    }
    let t = performance.now()
    const daemonB = await startDaemon(envOf(homeB), homeB.cwd, homeB.stateDir, prof('idle'))
    daemons.push(daemonB)
    const startB = performance.now() - t
    await flushDaemon(daemonB)
    const catchUpB = performance.now() - t
    const bStatus = await daemonStatus(daemonB)
    const bare = spawn(process.execPath, ['-e', 'setInterval(()=>{},1000)'], { stdio: 'ignore' })
    others.push(() => bare.kill('SIGKILL'))
    await sleep(1000)
    const watched = [
      { name: `daemon, ${LATENCY_FILES} files`, pid: daemonA.pid },
      { name: `daemon, ${bStatus.files_watched} files`, pid: daemonB.pid },
      { name: 'node setInterval (baseline)', pid: bare.pid! },
    ]
    const before = watched.map((w) => procStats(w.pid))
    t = performance.now()
    await sleep(IDLE_WINDOW_MS)
    const windowMs = performance.now() - t
    const after = watched.map((w) => procStats(w.pid))
    const baseRss = after[2].rssKb
    console.log(
      `\n3. idle RSS / CPU           ${(windowMs / 1000).toFixed(1)} s window; ${IDLE_FILES} files in ${IDLE_DIRS} dirs caught up in ${(catchUpB / 1000).toFixed(1)} s (start ${(startB / 1000).toFixed(1)} s)`,
    )
    for (const [i, w] of watched.entries()) {
      const cpu = ((after[i].cpuMs - before[i].cpuMs) / windowMs) * 100
      console.log(
        `   ${w.name.padEnd(28)} RSS ${mb(after[i].rssKb).padStart(8)} (peak ${mb(after[i].hwmKb)}, ${(after[i].rssKb / baseRss).toFixed(1)}× baseline)  CPU ${cpu.toFixed(2)} % (${(after[i].cpuMs - before[i].cpuMs).toFixed(0)} ms)`,
      )
    }
    const worstRss = Math.max(after[0].rssKb, after[1].rssKb)
    const worstCpu = Math.max(
      ...[0, 1].map((i) => ((after[i].cpuMs - before[i].cpuMs) / windowMs) * 100),
    )
    const perRescan = (after[1].cpuMs - before[1].cpuMs) / (windowMs / 2000)
    console.log(
      `   goal RSS < 80 MB          ${verdict(worstRss < 80 * 1024)};  idle CPU ≈ 0 (< 1 %) ${verdict(worstCpu < 1)}  (${IDLE_FILES} files: ≈ ${perRescan.toFixed(0)} ms CPU per 2 s rescan)`,
    )
    bare.kill('SIGKILL')

    // Append → visible again, with all of B's files watched: every pass stats them all.
    const bFiles = idleFiles.filter((_, i) => i % Math.ceil(IDLE_FILES / LATENCY_FILES) === 0)
    const bCounts = new Map(bFiles.map((f) => [f.sid, 3]))
    const viaBusy: number[] = []
    const bCpu0 = procStats(daemonB.pid).cpuMs
    t = performance.now()
    for (let i = 0; i < WARMUP + BUSY_SAMPLES; i++) {
      const d = await daemonSample(i, bFiles, bCounts)
      if (i >= WARMUP) viaBusy.push(d)
      await sleep(GAP_MS + Math.random() * 100)
    }
    const bCpuPerSample = (procStats(daemonB.pid).cpuMs - bCpu0) / (WARMUP + BUSY_SAMPLES)
    viaBusy.sort((a, b) => a - b)
    console.log(
      `   append → visible, ${bStatus.files_watched} files watched: p50 ${ms(percentile(viaBusy, 50))}  p99 ${ms(percentile(viaBusy, 99))}  (${BUSY_SAMPLES} samples, ${((performance.now() - t) / 1000).toFixed(0)} s; daemon CPU ≈ ${bCpuPerSample.toFixed(0)} ms per appended line)`,
    )
    await daemonB.stop()
    await daemonA.stop()

    // --- 2. sustained tail rate ----------------------------------------------------------
    const ownerEvents = async (id: string) => {
      const body = await api.get<{ by_owner: { owner: { id: string }; events: number }[] }>(
        '/api/v1/stats',
      )
      return body.by_owner.find((o) => o.owner.id === id)?.events ?? 0
    }
    /** Server-side progress (events stored for `id`) every 250 ms until stopped. */
    const track = (id: string, from: number, t0: number) => {
      const points: { t: number; events: number }[] = []
      let on = true
      const done = (async () => {
        while (on) {
          await sleep(250)
          const n = await ownerEvents(id).catch(() => undefined)
          if (n !== undefined) points.push({ t: performance.now() - t0, events: n - from })
        }
      })()
      return {
        points,
        stop: async () => {
          on = false
          await done
        },
      }
    }
    /** Events/s between 20 % and 80 % of `total` stored: the rate in the middle of the run. */
    const middleRate = (points: { t: number; events: number }[], total: number) => {
      const at = (f: number) => points.find((p) => p.events >= f * total)
      const lo = at(0.2)
      const hi = at(0.8)
      return lo && hi && hi.t > lo.t ? (hi.events - lo.events) / ((hi.t - lo.t) / 1000) : NaN
    }
    const expectedEvents =
      TAIL_FILES *
      (Math.ceil(TAIL_LINES / 2) * EVENTS_PER_LINE.assistant + Math.floor(TAIL_LINES / 2))
    const perRecord = expectedEvents / (TAIL_FILES * TAIL_LINES)

    /**
     * A daemon on TAIL_FILES fresh sessions; once it has caught up, the writer appends
     * TAIL_LINES to each as fast as it can; done when a flush after the writer returns.
     * CPU is counted for the daemon and for `peers()` (server, PostgreSQL).
     */
    const tailRun = async (
      name: string,
      endpoint: string,
      tok: string,
      peers: () => number[],
      onStart?: (t0: number) => void,
    ) => {
      const home = await newHome()
      const tailFiles = Array.from({ length: TAIL_FILES }, (_, i) =>
        newSession(home, `-srv-tail-${i % 5}`),
      )
      const env = { ...envOf(home, tok), HIVEMIND_ENDPOINT: endpoint }
      const daemon = await startDaemon(env, home.cwd, home.stateDir, prof(name))
      daemons.push(daemon)
      await flushDaemon(daemon)
      const base = await daemonStatus(daemon)
      const cpu0 = cpuSnapshot([daemon.pid, ...peers()])
      const busy0 = machineBusyMs()
      const t0 = performance.now()
      const writer = spawn(process.execPath, ['-e', WRITER_SCRIPT], {
        env: {
          BENCH_WRITER: JSON.stringify({
            files: tailFiles.map((f) => ({ path: f.path, sid: f.sid, parent: f.parent })),
            lines: TAIL_LINES,
            words: WORDS_PER_LINE,
          }),
        },
        stdio: ['ignore', 'pipe', 'inherit'],
      })
      others.push(() => writer.kill('SIGKILL'))
      onStart?.(t0)
      let out = ''
      writer.stdout.on('data', (d: Buffer) => (out += d.toString()))
      const w = await new Promise<{ ms: number; lines: number; bytes: number }>((resolve, reject) =>
        writer.on('exit', (code) =>
          code === 0
            ? resolve(JSON.parse(out) as never)
            : reject(new Error(`writer exited ${code}`)),
        ),
      )
      await flushDaemon(daemon, 300_000)
      const ms = performance.now() - t0
      const cpu1 = cpuSnapshot([daemon.pid, ...peers()])
      const busy = machineBusyMs() - busy0
      const events = (await daemonStatus(daemon)).uploaded.events - base.uploaded.events
      const rss = procStats(daemon.pid).hwmKb
      await daemon.stop()
      const daemonCpu = (cpu1.get(daemon.pid) ?? 0) - (cpu0.get(daemon.pid) ?? 0)
      cpu0.delete(daemon.pid)
      cpu1.delete(daemon.pid)
      return {
        home,
        w,
        ms,
        events,
        rate: w.lines / (ms / 1000),
        daemonCpu,
        peerCpu: cpuBetween(cpu0, cpu1),
        busyPct: (busy / ms) * 100,
        rss,
      }
    }
    const sec = (n: number) => `${(n / 1000).toFixed(1)} s`

    const serverPid = server.child.pid!
    const serverPeers = () => [serverPid, ...postgresPids()]
    const storedBefore = await ownerEvents(owner)
    let progress: ReturnType<typeof track> | undefined
    const real = await tailRun('tail', server.url, token, serverPeers, (t0) => {
      progress = track(owner, storedBefore + TAIL_FILES, t0)
    })
    await progress?.stop()
    // The sessions' first lines (sent before the writer started) count too.
    const stored = (await ownerEvents(owner)) - storedBefore - TAIL_FILES

    // Baseline: one import of the same files, as another owner (fresh rows, fresh state dir).
    const importSa = await createToken(server.url, ['write'])
    const importEnv = (h: TempHome, endpoint: string, tok: string) => ({
      ...envOf(h, tok),
      HIVEMIND_ENDPOINT: endpoint,
      HIVEMIND_STATE_DIR: join(h.root, `import-state-${randomUUID()}`),
    })
    const icpu0 = cpuSnapshot(serverPeers())
    const ibusy0 = machineBusyMs()
    const importRun = runBuiltCli(
      ['import', '--all', '--json'],
      importEnv(real.home, server.url, importSa.token),
      real.home.cwd,
    )
    const importProgress = track(importSa.serviceAccountId, 0, performance.now())
    const imp = await importRun
    const importPeerCpu = cpuBetween(icpu0, cpuSnapshot(serverPeers()))
    const ibusy = machineBusyMs() - ibusy0
    await importProgress.stop()
    if (imp.code !== 0) throw new Error(`import failed: ${imp.stderr}`)
    const importEvents = (JSON.parse(imp.stdout) as { upload: { events: number } }).upload.events
    const importRecords = TAIL_FILES * (TAIL_LINES + 1)
    const importRate = importRecords / (imp.ms / 1000)

    // The CLI's own ceiling: the same against a server that stores nothing.
    const nullServer = await startNullServer()
    others.push(() => nullServer.stop())
    const nul = await tailRun('tail-null', nullServer.url, token, () => [nullServer.pid])
    const nullImport = await runBuiltCli(
      ['import', '--all', '--json'],
      importEnv(nul.home, nullServer.url, token),
      nul.home.cwd,
    )
    if (nullImport.code !== 0) throw new Error(`import (null server) failed: ${nullImport.stderr}`)
    nullServer.stop()

    const w = real.w
    console.log(
      `\n2. sustained tail           ${TAIL_FILES} files × ${TAIL_LINES} lines = ${w.lines} records, ${(w.bytes / 1024 / 1024).toFixed(1)} MB (${(w.bytes / w.lines) | 0} B/line, ${perRecord} events/record), written in ${(w.ms / 1000).toFixed(2)} s`,
    )
    console.log(
      `   import --all (baseline)  ${importRate.toFixed(0)} records/s  (${(imp.ms / 1000).toFixed(2)} s incl. process start, ${importEvents} events; 20–80 % stored at ${(middleRate(importProgress.points, importEvents) / perRecord).toFixed(0)} records/s)`,
    )
    console.log(
      `      CPU: server + postgres ${sec(importPeerCpu)}; machine ${ibusy / imp.ms > 0 ? ((ibusy / imp.ms) * 100).toFixed(0) : '?'} % busy (2 cores = 200 %)`,
    )
    console.log(
      `   daemon write→flushed     ${real.rate.toFixed(0)} records/s  (${(real.ms / 1000).toFixed(2)} s; ${real.events} events sent, ${stored} stored${stored === expectedEvents ? '' : ` ≠ ${expectedEvents} EXPECTED`}; 20–80 % stored at ${(middleRate(progress?.points ?? [], expectedEvents) / perRecord).toFixed(0)} records/s)`,
    )
    console.log(
      `      CPU: daemon ${sec(real.daemonCpu)} (${((real.daemonCpu / w.lines) * 1000).toFixed(0)} µs/record), server + postgres ${sec(real.peerCpu)}; machine ${real.busyPct.toFixed(0)} % busy; daemon peak RSS ${mb(real.rss)}`,
    )
    console.log(
      `   null server (stores nothing): daemon ${nul.rate.toFixed(0)} records/s (${(nul.ms / 1000).toFixed(2)} s, daemon CPU ${sec(nul.daemonCpu)} = ${((nul.daemonCpu / nul.ms) * 100).toFixed(0)} % of a core, ${((nul.daemonCpu / nul.w.lines) * 1000).toFixed(0)} µs/record); import ${(importRecords / (nullImport.ms / 1000)).toFixed(0)} records/s`,
    )
    console.log(
      `   ratio daemon / import    ${((real.rate / importRate) * 100).toFixed(0)} %  (goal ≥ 20 000 records/s) ${verdict(real.rate >= 20_000)}`,
    )
  } finally {
    for (const k of others) k()
    for (const d of daemons) await d.stop().catch(() => {})
    await stopBenchServer(server.child)
    await db?.drop().catch(() => {})
    for (const h of homes) await h.remove()
  }
}
