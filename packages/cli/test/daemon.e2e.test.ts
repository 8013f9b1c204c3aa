// The daemon end to end: `hivemind start`, `stop`, `status`, `flush` and `health` as
// child processes against the real server (from source, its own process, PGlite), with
// agent session files written into a temp home while the daemon runs.
import { randomUUID } from 'node:crypto'
import { existsSync } from 'node:fs'
import { appendFile, mkdir, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { daemonPaths } from '../src/daemon/state-dir.ts'
import { DaemonStatus } from '../src/daemon/status.ts'
import {
  appendLines,
  claudeFile,
  claudeFixtureLines,
  claudeLine,
  codexLine,
  codexMetaLine,
  codexRollout,
  daemonPid,
  daemonSnapshot,
  eventCount,
  eventTexts,
  geminiLegacyDoc,
  killDaemon,
  processRunning,
  sessionEvents,
  sessionsBySource,
  sleep,
  socketFlush,
  socketStatus,
  waitFor,
  writeNew,
  expectExit,
  FAST_TIMINGS,
} from './daemon-helpers.ts'
import {
  createToken,
  runCli,
  startServer,
  tempHome,
  type ServerProcess,
  type TempHome,
} from './processes.ts'

describe('hivemind daemon (real server and daemon processes)', () => {
  let server: ServerProcess
  let writer: { token: string; serviceAccountId: string }
  let reader: { token: string; serviceAccountId: string }
  const homes: TempHome[] = []
  /** State dirs of daemons the current test started (killed after it if still there). */
  const stateDirs: string[] = []
  /** State dirs of daemons shared by a describe block (killed at the end). */
  const sharedDirs: string[] = []
  const home = async (shared = false) => {
    const h = await tempHome({ fixtures: false })
    homes.push(h)
    ;(shared ? sharedDirs : stateDirs).push(h.stateDir)
    return h
  }
  const envFor = (h: TempHome, extra: Record<string, string> = {}) => ({
    ...h.env,
    HIVEMIND_ENDPOINT: server.url,
    HIVEMIND_TOKEN: writer.token,
    ...extra,
  })
  const fastEnv = (h: TempHome, extra: Record<string, string> = {}) =>
    envFor(h, { NODE_ENV: 'test', HIVEMIND_TEST_DAEMON_TIMINGS: FAST_TIMINGS, ...extra })
  const owner = () => writer.serviceAccountId
  const count = (sid: string) => eventCount(server.url, reader.token, owner(), sid)
  const texts = (sid: string) => eventTexts(server.url, reader.token, owner(), sid)

  /** `hivemind start` → exit 0; returns the daemon's pid (from the pid file). */
  const start = async (h: TempHome, env: Record<string, string>, args: string[] = []) => {
    const r = await runCli(['start', ...args], env, h.cwd)
    expectExit(r, 0)
    const m = /daemon started \(pid (\d+)\)/.exec(r.stdout)
    expect(m).not.toBeNull()
    const pid = Number(m![1])
    const stateDir = args.includes('--state-dir')
      ? args[args.indexOf('--state-dir') + 1]
      : h.stateDir
    expect(daemonPid(stateDir)).toBe(pid)
    expect(processRunning(pid)).toBe(true)
    return pid
  }
  const health = (h: TempHome, args: string[]) =>
    runCli(['health', '-q', '--state-dir', h.stateDir, ...args], h.env, h.cwd)

  beforeAll(async () => {
    server = await startServer()
    writer = await createToken(server.url, ['write'])
    reader = await createToken(server.url, ['read'])
  }, 90_000)

  afterEach(() => {
    for (const dir of stateDirs.splice(0)) killDaemon(dir)
  })

  afterAll(async () => {
    for (const dir of sharedDirs) killDaemon(dir)
    await server?.kill()
    if (server) await rm(server.dataDir, { recursive: true, force: true })
    await Promise.all(homes.map((h) => h.remove()))
  })

  it('start → lines appended over time reach the server → a second start refuses → stop delivers the last line, exit 0', async () => {
    const h = await home()
    // A Claude Code session (the fixture's records under a new id) and a Codex rollout,
    // both already on disk when the daemon starts.
    const sid = randomUUID()
    const cFile = claudeFile(h.claudeDir, sid)
    await writeNew(cFile, `${claudeFixtureLines(sid).join('\n')}\n`)
    const codex = codexRollout(h.codexDir)
    await appendLines(codex.path, [codexMetaLine(codex.id), codexLine(1), codexLine(2)])

    const env = envFor(h)
    const pid = await start(h, env)
    expect(pid).not.toBe(process.pid)

    const again = await runCli(['start'], env, h.cwd)
    expect(again.code).toBe(1)
    expect(again.stderr).toContain(`a daemon is already running for state dir ${h.stateDir}`)
    expect(again.stderr).toContain(`(pid ${pid})`)
    expect(daemonPid(h.stateDir)).toBe(pid)

    // What was on disk arrives without anything else happening.
    await waitFor('the fixture records', async () =>
      (await texts(sid)).includes('Running the tests.'),
    )
    await waitFor('the first codex lines', async () => (await count(codex.id)) === 3)

    // The agents keep writing.
    for (let i = 0; i < 5; i++) {
      await appendLines(cFile, [claudeLine(sid, 2 * i, `appended turn ${i}`)])
      await appendLines(codex.path, [codexLine(3 + i, `codex turn ${i}`)])
      await sleep(300)
    }
    await waitFor(
      'the appended claude lines',
      async () => (await texts(sid)).includes('appended turn 4'),
      30_000,
    )
    await waitFor('the appended codex lines', async () => (await count(codex.id)) === 8, 30_000)

    // The very last line is written right before `stop`: the final catch-up sends it.
    await appendLines(cFile, [claudeLine(sid, 100, 'the last message before stop')])
    await appendLines(codex.path, [codexLine(99, 'codex last words')])
    const stop = await runCli(['stop'], env, h.cwd)
    expectExit(stop, 0)
    expect(stop.stdout).toMatch(new RegExp(`daemon stopped \\(pid ${pid}\\); everything delivered`))
    expect(await texts(sid)).toContain('the last message before stop')
    expect(await texts(codex.id)).toContain('codex last words')
    expect(await count(codex.id)).toBe(9)
    // Every Claude record is there once: the fixture's and the appended ones.
    const claudeTexts = await texts(sid)
    for (const t of ['appended turn 0', 'appended turn 4', 'the last message before stop']) {
      expect(claudeTexts.filter((x) => x === t)).toHaveLength(1)
    }

    expect(existsSync(daemonPaths(h.stateDir).pidFile)).toBe(false)
    expect(processRunning(pid)).toBe(false)
    const status = await runCli(['status', '--json'], env, h.cwd)
    expect(status.code).toBe(1)
    expect(JSON.parse(status.stdout)).toMatchObject({
      running: false,
      status: { pid, state: 'stopped', drained: true },
    })
    expect((await health(h, [])).code).toBe(1)
  }, 120_000)

  it('stop with no daemon → exit 0 and says there is nothing to stop; flush → exit 1', async () => {
    const h = await home()
    const stop = await runCli(['stop'], envFor(h), h.cwd)
    expect(stop.code).toBe(0)
    expect(stop.stdout).toContain(`no daemon running for state dir ${h.stateDir}; nothing to stop`)
    const flush = await runCli(['flush', '--timeout', '5'], envFor(h), h.cwd)
    expect(flush.code).toBe(1)
    expect(flush.stderr).toContain(`no daemon running for state dir ${h.stateDir}`)
  })

  it.each([
    // Refused by the SDK before any request: not even the shape of a token.
    ['garbage', /HIVEMIND_TOKEN does not look like a HiveMind token/],
    // Well formed, unknown to the server: its 401.
    [`hmsa_${'A'.repeat(43)}`, /401/],
  ])(
    'start with HIVEMIND_TOKEN=%s fails fast: exit 1 with the reason, no daemon left',
    async (token, reason) => {
      const h = await home()
      const sid = randomUUID()
      await appendLines(claudeFile(h.claudeDir, sid), [claudeLine(sid, 0)])
      const began = Date.now()
      const r = await runCli(['start'], envFor(h, { HIVEMIND_TOKEN: token }), h.cwd)
      expectExit(r, 1)
      expect(Date.now() - began).toBeLessThan(30_000)
      expect(r.stderr).toMatch(reason)
      expect(r.stderr).not.toMatch(/\n\s+at /)
      expect(r.stdout).not.toMatch(/daemon started/)
      expect(existsSync(daemonPaths(h.stateDir).pidFile)).toBe(false)
      expect((await health(h, [])).code).toBe(1)
      expect(await count(sid)).toBe(0)
    },
    60_000,
  )

  describe('files changing under the daemon', () => {
    let h: TempHome
    beforeAll(async () => {
      h = await home(true)
      await start(h, fastEnv(h))
    }, 60_000)
    afterAll(async () => {
      const r = await runCli(['stop'], fastEnv(h), h.cwd)
      expectExit(r, 0)
    }, 30_000)

    it('a partial last line is not sent (no error event); once completed it arrives once', async () => {
      const sid = randomUUID()
      const file = claudeFile(h.claudeDir, sid)
      await appendLines(file, [claudeLine(sid, 0), claudeLine(sid, 1)])
      expect(await socketFlush(h.stateDir)).toMatchObject({ drained: true })
      expect(await count(sid)).toBe(2)

      const line = claudeLine(sid, 2, 'completed later')
      const cut = Math.floor(line.length / 2)
      await appendFile(file, line.slice(0, cut))
      await sleep(800) // a few rescans and watch events
      expect(await socketFlush(h.stateDir)).toMatchObject({ drained: true })
      const events = await sessionEvents(
        server.url,
        reader.token,
        (await sessionsBySource(server.url, reader.token, owner())).get(sid)!.id,
      )
      expect(events).toHaveLength(2)
      expect(events.filter((e) => e.kind === 'error')).toEqual([])

      await appendFile(file, `${line.slice(cut)}\n`)
      expect(await socketFlush(h.stateDir)).toMatchObject({ drained: true })
      expect(await count(sid)).toBe(3)
      expect((await texts(sid)).filter((t) => t === 'completed later')).toHaveLength(1)
      const st = DaemonStatus.parse(await socketStatus(h.stateDir))
      expect(st.uploaded.rejected).toBe(0)
    }, 60_000)

    it('a file truncated and rewritten is read again from the start: new records arrive, old ones stay once', async () => {
      const sid = randomUUID()
      const file = claudeFile(h.claudeDir, sid)
      const original = Array.from({ length: 6 }, (_, i) => claudeLine(sid, i, `original ${i}`))
      await appendLines(file, original)
      expect(await socketFlush(h.stateDir)).toMatchObject({ drained: true })
      expect(await count(sid)).toBe(6)

      // Rewritten in place, shorter: the first two records kept, two new ones.
      const rewritten = [
        original[0],
        original[1],
        claudeLine(sid, 10, 'rewritten a'),
        claudeLine(sid, 11, 'rewritten b'),
      ]
      await writeFile(file, `${rewritten.join('\n')}\n`)
      expect(await socketFlush(h.stateDir)).toMatchObject({ drained: true })
      expect(await count(sid)).toBe(8)
      const t = await texts(sid)
      expect(t.filter((x) => x === 'rewritten a')).toHaveLength(1)
      expect(t.filter((x) => x === 'original 0')).toHaveLength(1)

      // Then truncated to nothing and a different session written into it.
      const sid2 = randomUUID()
      await writeFile(file, '')
      await sleep(300)
      await writeFile(
        file,
        `${[claudeLine(sid2, 0, 'other session 0'), claudeLine(sid2, 1)].join('\n')}\n`,
      )
      expect(await socketFlush(h.stateDir)).toMatchObject({ drained: true })
      expect(await count(sid2)).toBe(2)
      expect(await count(sid)).toBe(8)
    }, 60_000)

    it('a rotated file (renamed in its dir, a new one created) is not re-sent; the new one is', async () => {
      const cx = codexRollout(h.codexDir)
      const first = [codexMetaLine(cx.id), ...Array.from({ length: 9 }, (_, i) => codexLine(i + 1))]
      await appendLines(cx.path, first)
      expect(await socketFlush(h.stateDir)).toMatchObject({ drained: true })
      expect(await count(cx.id)).toBe(10)
      const sentBefore = DaemonStatus.parse(await socketStatus(h.stateDir)).uploaded.events

      // Rotation: the old file gets another name in the same dir; a new session starts
      // under a new rollout name (Codex) and a Claude file at the very same path.
      const sid = randomUUID()
      const cFile = claudeFile(h.claudeDir, sid)
      await appendLines(cFile, [claudeLine(sid, 0, 'before rotation')])
      expect(await socketFlush(h.stateDir)).toMatchObject({ drained: true })
      const sentBefore2 = DaemonStatus.parse(await socketStatus(h.stateDir)).uploaded.events
      expect(sentBefore2).toBe(sentBefore + 1)

      await rename(cx.path, cx.path.replace(/\.jsonl$/, '.1.jsonl'))
      await rename(cFile, join(h.claudeDir, 'projects', '-tmp-proj', `${sid}.1.jsonl`))
      const cx2 = codexRollout(h.codexDir)
      await appendLines(cx2.path, [codexMetaLine(cx2.id), codexLine(1, 'after rotation')])
      await appendLines(cFile, [claudeLine(sid, 1, 'new file, same path')])
      expect(await socketFlush(h.stateDir)).toMatchObject({ drained: true })

      expect(await count(cx.id)).toBe(10)
      expect(await count(cx2.id)).toBe(2)
      expect(await count(sid)).toBe(2)
      expect((await texts(sid)).filter((t) => t === 'before rotation')).toHaveLength(1)
      // Nothing of the renamed files was sent again: only the three new records.
      const after = DaemonStatus.parse(await socketStatus(h.stateDir)).uploaded
      expect(after.events).toBe(sentBefore2 + 3)
    }, 60_000)

    it('a Gemini legacy session .json rewritten with one more message: it arrives, the others stay once', async () => {
      const sessionId = randomUUID()
      const hashDir = join(h.root, '.gemini', 'tmp', 'a'.repeat(64), 'chats')
      await mkdir(hashDir, { recursive: true })
      const path = join(hashDir, `session-2026-02-01T09-00-${sessionId.slice(0, 8)}.json`)
      const messages: { id: string; type: 'user' | 'gemini'; content: string }[] = [
        { id: 'm1', type: 'user', content: 'gemini question one' },
        { id: 'm2', type: 'gemini', content: 'gemini answer one' },
      ]
      await writeFile(path, geminiLegacyDoc(sessionId, messages, '2026-02-01T09:00:10.000Z'))
      await waitFor('the legacy session', async () => (await count(sessionId)) === 2, 30_000)

      messages.push({ id: 'm3', type: 'user', content: 'gemini question two' })
      // Rewritten in place (no tmp + rename), as Gemini CLI does.
      await writeFile(path, geminiLegacyDoc(sessionId, messages, '2026-02-01T09:00:20.000Z'))
      await waitFor(
        'the added message',
        async () => (await texts(sessionId)).includes('gemini question two'),
        30_000,
      )
      expect(await socketFlush(h.stateDir)).toMatchObject({ drained: true })
      expect(await count(sessionId)).toBe(3)
      expect((await texts(sessionId)).sort()).toEqual(
        ['gemini answer one', 'gemini question one', 'gemini question two'].sort(),
      )
    }, 60_000)
  })

  it('health: running → 0, stopped (SIGSTOP) → 1 with --stale-after 1, resumed → 0, absent → 1; -q prints nothing', async () => {
    const h = await home()
    const env = fastEnv(h)
    const never = await health(h, [])
    expect(never).toMatchObject({ code: 1, stdout: '', stderr: '' })

    const pid = await start(h, env)
    await waitFor('a heartbeat', () => daemonSnapshot(h.stateDir)?.pid === pid)
    expect(await health(h, [])).toEqual({ code: 0, stdout: '', stderr: '' })
    const loud = await runCli(['health', '--state-dir', h.stateDir], h.env, h.cwd)
    expect(loud.code).toBe(0)
    expect(loud.stdout).toContain(`daemon pid ${pid} is healthy`)

    process.kill(pid, 'SIGSTOP')
    try {
      await sleep(2000)
      expect(await health(h, ['--stale-after', '1'])).toEqual({ code: 1, stdout: '', stderr: '' })
      const why = await runCli(
        ['health', '--state-dir', h.stateDir, '--stale-after', '1'],
        h.env,
        h.cwd,
      )
      expect(why.code).toBe(1)
      expect(why.stderr).toMatch(
        new RegExp(`daemon pid ${pid} is stuck: last heartbeat \\d+ s ago`),
      )
    } finally {
      process.kill(pid, 'SIGCONT')
    }
    await waitFor(
      'healthy again',
      async () => (await health(h, ['--stale-after', '1'])).code === 0,
      15_000,
      300,
    )

    const stop = await runCli(['stop'], env, h.cwd)
    expectExit(stop, 0)
    expect(await health(h, [])).toEqual({ code: 1, stdout: '', stderr: '' })
  }, 90_000)

  it('a deep state dir (socket path over 108 bytes) works: start, status, flush, stop', async () => {
    const h = await home()
    let deep = join(h.root, 'state')
    while (Buffer.byteLength(join(deep, 'daemon.sock')) <= 120)
      deep = join(deep, 'nested-directory')
    const env = fastEnv(h)
    const args = ['--state-dir', deep]
    stateDirs.push(deep)
    const sid = randomUUID()
    await appendLines(claudeFile(h.claudeDir, sid), [claudeLine(sid, 0), claudeLine(sid, 1)])

    const pid = await start(h, env, args)
    const status = await runCli(['status', '--json', ...args], env, h.cwd)
    expectExit(status, 0)
    const s = JSON.parse(status.stdout) as { running: boolean; status: DaemonStatus }
    expect(s).toMatchObject({ running: true, status: { pid, state_dir: deep } })
    expect(Buffer.byteLength(s.status.socket)).toBeLessThanOrEqual(104)
    expect(s.status.socket.startsWith(deep)).toBe(false)
    expect(existsSync(s.status.socket)).toBe(true)

    await appendLines(claudeFile(h.claudeDir, sid), [claudeLine(sid, 2, 'deep flush')])
    const flush = await runCli(['flush', '--timeout', '30', ...args], env, h.cwd)
    expectExit(flush, 0)
    expect(flush.stdout).toContain('flushed')
    expect(await count(sid)).toBe(3)

    const hc = await runCli(['health', '-q', ...args], h.env, h.cwd)
    expect(hc.code).toBe(0)
    const stop = await runCli(['stop', ...args], env, h.cwd)
    expectExit(stop, 0)
    expect(stop.stdout).toContain('everything delivered')
    expect(existsSync(s.status.socket)).toBe(false)
  }, 90_000)
})
