// The daemon when things go wrong, end to end: killed with SIGKILL in the middle of an
// upload, the server down for a while, a server slow to acknowledge. Real server process
// (PGlite), real daemon processes, and a small proxy on loopback where a test needs to
// hold the server's answers back.
import { randomUUID } from 'node:crypto'
import { rm } from 'node:fs/promises'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { isAlive } from '../src/daemon/state-dir.ts'
import type { DaemonStatus } from '../src/daemon/status.ts'
import {
  appendLines,
  claudeFile,
  claudeLine,
  codexLine,
  codexMetaLine,
  codexRollout,
  daemonPid,
  daemonSnapshot,
  freePort,
  killDaemon,
  sessionsBySource,
  sleep,
  startDelayProxy,
  waitFor,
  type DelayProxy,
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

/** What a test wrote: lines per source session id (each line is one event). */
type Written = Map<string, number>

describe('hivemind daemon under failures (real server and daemon processes)', () => {
  let port: number
  let server: ServerProcess
  let writer: { token: string; serviceAccountId: string }
  let reader: { token: string; serviceAccountId: string }
  const homes: TempHome[] = []
  const proxies: DelayProxy[] = []
  const home = async () => {
    const h = await tempHome({ fixtures: false })
    homes.push(h)
    return h
  }
  const proxy = async (delayMs = 0) => {
    const p = await startDelayProxy(server.url, delayMs)
    proxies.push(p)
    return p
  }
  const envFor = (h: TempHome, endpoint = server.url) => ({
    ...h.env,
    HIVEMIND_ENDPOINT: endpoint,
    HIVEMIND_TOKEN: writer.token,
    NODE_ENV: 'test',
    HIVEMIND_TEST_DAEMON_TIMINGS: FAST_TIMINGS,
  })
  /** The server holds exactly what was written: every line once, no session missing. */
  const expectAllThere = async (written: Written) => {
    const stored = await sessionsBySource(server.url, reader.token, writer.serviceAccountId)
    const counts = Object.fromEntries(
      [...written.keys()].map((k) => [k, stored.get(k)?.event_count]),
    )
    expect(counts).toEqual(Object.fromEntries(written))
  }
  const start = async (h: TempHome, env: Record<string, string>) => {
    const r = await runCli(['start'], env, h.cwd)
    expectExit(r, 0)
    const pid = daemonPid(h.stateDir)!
    expect(r.stdout).toContain(`daemon started (pid ${pid})`)
    return pid
  }
  const status = async (h: TempHome, env: Record<string, string>) => {
    const r = await runCli(['status', '--json'], env, h.cwd)
    return JSON.parse(r.stdout) as { running: boolean; status: DaemonStatus | null }
  }

  beforeAll(async () => {
    // A fixed port: the server is restarted on the same address (the daemon's endpoint).
    port = await freePort()
    server = await startServer(undefined, { HIVEMIND_PORT: String(port) })
    writer = await createToken(server.url, ['write'])
    reader = await createToken(server.url, ['read'])
  }, 90_000)

  afterEach(() => {
    for (const h of homes) killDaemon(h.stateDir)
  })

  afterAll(async () => {
    for (const h of homes) killDaemon(h.stateDir)
    await Promise.all(proxies.map((p) => p.close()))
    await server?.kill()
    if (server) await rm(server.dataDir, { recursive: true, force: true })
    await Promise.all(homes.map((h) => h.remove()))
  })

  it('SIGKILL in the middle of an upload, then start again: every event on the server exactly once', async () => {
    const h = await home()
    // Answers to batch uploads come 400 ms after the server stored them: the kill lands
    // between a store and its acknowledgement.
    const slow = await proxy(400)
    const env = envFor(h, slow.url)
    const pid1 = await start(h, env)

    // 20,000 lines across 10 Claude Code sessions and 10 Codex rollouts, appended in
    // rounds while the daemon uploads.
    const written: Written = new Map()
    const claude = Array.from({ length: 10 }, () => randomUUID())
    const codex = Array.from({ length: 10 }, () => codexRollout(h.codexDir))
    for (const c of codex) {
      await appendLines(c.path, [codexMetaLine(c.id)])
      written.set(c.id, 1)
    }
    const rounds = 4
    const perRound = 250
    const appending = (async () => {
      for (let r = 0; r < rounds; r++) {
        for (const sid of claude) {
          const n = written.get(sid) ?? 0
          await appendLines(
            claudeFile(h.claudeDir, sid),
            Array.from({ length: perRound }, (_, i) => claudeLine(sid, n + i)),
          )
          written.set(sid, n + perRound)
        }
        for (const c of codex) {
          const n = written.get(c.id)!
          const lines = Array.from({ length: r === rounds - 1 ? perRound - 1 : perRound }, (_, i) =>
            codexLine(n + i),
          )
          await appendLines(c.path, lines)
          written.set(c.id, n + lines.length)
        }
        await sleep(150)
      }
    })()

    // Kill once a few batches were acknowledged and the server has stored another one
    // whose acknowledgement is still held back.
    await waitFor(
      'acknowledged batches and a stored, unacknowledged one',
      () => slow.batchesStored - slow.batchesHeld >= 2 && slow.batchesHeld > 0,
      60_000,
      5,
    )
    process.kill(pid1, 'SIGKILL')
    // Gone for good, not just a zombie waiting for init to reap it (a pid `start` would
    // still see as running).
    await waitFor('the daemon to be reaped', () => !isAlive(pid1), 20_000, 50)
    const storedAtKill = slow.batchesStored
    await appending
    expect([...written.values()].reduce((a, b) => a + b, 0)).toBe(20_000)
    // Some batches were stored before the kill, and not everything.
    expect(storedAtKill).toBeGreaterThan(0)
    const before = await sessionsBySource(server.url, reader.token, writer.serviceAccountId)
    const storedBefore = [...before.values()].reduce((n, s) => n + s.event_count, 0)
    expect(storedBefore).toBeGreaterThan(0)
    expect(storedBefore).toBeLessThan(20_000)

    // The pid file is left behind by the killed daemon; `start` replaces it.
    expect(daemonPid(h.stateDir)).toBe(pid1)
    slow.delayMs = 0
    const pid2 = await start(h, env)
    expect(pid2).not.toBe(pid1)
    const flush = await runCli(['flush', '--timeout', '90', '--json'], env, h.cwd)
    expectExit(flush, 0)
    expect(JSON.parse(flush.stdout)).toMatchObject({ drained: true })
    await expectAllThere(written)

    // The records stored before the kill and not acknowledged were sent again, and the
    // server recognised them (idempotent on event keys).
    const s = await status(h, env)
    expect(s.running).toBe(true)
    expect(s.status!.uploaded.duplicates).toBeGreaterThan(0)
    expect(s.status!.uploaded.rejected).toBe(0)
    expect(s.status!.uploaded.events).toBeLessThan(20_000)

    const stop = await runCli(['stop'], env, h.cwd)
    expectExit(stop, 0)
    expect(stop.stdout).toContain('everything delivered')
  }, 180_000)

  it('server down for a while (lines written meanwhile): status shows the error and since when, health fails, all delivered once when it is back', async () => {
    const h = await home()
    const env = envFor(h)
    const written: Written = new Map()
    const sid = randomUUID()
    const cx = codexRollout(h.codexDir)
    await appendLines(claudeFile(h.claudeDir, sid), [claudeLine(sid, 0), claudeLine(sid, 1)])
    await appendLines(cx.path, [codexMetaLine(cx.id)])
    written.set(sid, 2).set(cx.id, 1)
    await start(h, env)
    const first = await runCli(['flush', '--timeout', '30'], env, h.cwd)
    expectExit(first, 0)
    await expectAllThere(written)
    const healthy = await runCli(
      ['health', '-q', '--failing-after', '1', '--state-dir', h.stateDir],
      h.env,
      h.cwd,
    )
    expect(healthy).toEqual({ code: 0, stdout: '', stderr: '' })

    // The server goes away. The issue asks for ~30 s; 8 s covers several backoff rounds
    // (backoff 200 ms doubling up to 2 s) and keeps the suite fast.
    const dataDir = server.dataDir
    await server.kill()
    const downSince = Date.now()
    const sid2 = randomUUID()
    let n = 0
    while (Date.now() - downSince < 8000) {
      await appendLines(claudeFile(h.claudeDir, sid), [claudeLine(sid, 2 + n)])
      await appendLines(claudeFile(h.claudeDir, sid2), [claudeLine(sid2, n)])
      await appendLines(cx.path, [codexLine(1 + n)])
      n++
      await sleep(400)
    }
    written
      .set(sid, 2 + n)
      .set(sid2, n)
      .set(cx.id, 1 + n)

    const down = await status(h, env)
    expect(down.running).toBe(true)
    expect(down.status).toMatchObject({
      state: 'running',
      last_error: { message: expect.stringMatching(/server unreachable at http:\/\/127\.0\.0\.1/) },
      failing_since: expect.any(String),
      paused: false,
    })
    expect(Date.parse(down.status!.failing_since!)).toBeGreaterThanOrEqual(downSince - 1000)
    expect(down.status!.pending.files).toBeGreaterThan(0)
    const human = await runCli(['status'], env, h.cwd)
    expect(human.stdout).toMatch(/last error: server unreachable/)
    expect(human.stdout).toMatch(/failing since /)
    // Failing for longer than 1 s, heartbeat fresh: unhealthy, quietly.
    const failing = await runCli(
      ['health', '-q', '--failing-after', '1', '--state-dir', h.stateDir],
      h.env,
      h.cwd,
    )
    expect(failing).toEqual({ code: 1, stdout: '', stderr: '' })
    const why = await runCli(
      ['health', '--failing-after', '1', '--state-dir', h.stateDir],
      h.env,
      h.cwd,
    )
    expect(why.stderr).toMatch(/has not uploaded for \d+ s \(limit 1 s\): server unreachable/)
    // Still healthy with the default threshold (300 s): a short outage is not a failure.
    expect((await runCli(['health', '-q', '--state-dir', h.stateDir], h.env, h.cwd)).code).toBe(0)
    const notYet = await runCli(['flush', '--timeout', '1'], env, h.cwd)
    expect(notYet.code).toBe(1)
    expect(notYet.stderr).toMatch(/not drained after 1 s: .*last error: server unreachable/)

    // Back on the same address and data: everything arrives, nothing twice.
    server = await startServer(dataDir, { HIVEMIND_PORT: String(port) })
    expect(server.url).toBe(`http://127.0.0.1:${port}`)
    const flush = await runCli(['flush', '--timeout', '60'], env, h.cwd)
    expectExit(flush, 0)
    await expectAllThere(written)
    const after = await status(h, env)
    expect(after.status).toMatchObject({ failing_since: null, pending: { files: 0 } })
    await waitFor('a heartbeat without the failure', () => {
      const snap = daemonSnapshot(h.stateDir)
      return snap !== undefined && snap.failing_since == null
    })
    expect(
      (
        await runCli(
          ['health', '-q', '--failing-after', '1', '--state-dir', h.stateDir],
          h.env,
          h.cwd,
        )
      ).code,
    ).toBe(0)

    const stop = await runCli(['stop'], env, h.cwd)
    expectExit(stop, 0)
    expect(stop.stdout).toContain('everything delivered')
  }, 180_000)

  it('flush waits for a slow server (exit 0 once drained) and gives up with "not drained" past its timeout', async () => {
    const h = await home()
    const slow = await proxy(0)
    const env = envFor(h, slow.url)
    const written: Written = new Map()
    const sid = randomUUID()
    await appendLines(claudeFile(h.claudeDir, sid), [claudeLine(sid, 0)])
    written.set(sid, 1)
    await start(h, env)
    const ready = await runCli(['flush', '--timeout', '30'], env, h.cwd)
    expectExit(ready, 0)

    // Every batch is acknowledged 3 s late: a 10 s flush still drains.
    slow.delayMs = 3000
    await appendLines(claudeFile(h.claudeDir, sid), [claudeLine(sid, 1), claudeLine(sid, 2)])
    written.set(sid, 3)
    const began = Date.now()
    const ok = await runCli(['flush', '--timeout', '10'], env, h.cwd)
    expectExit(ok, 0)
    expect(ok.stdout).toContain('flushed; everything written so far is on the server')
    expect(Date.now() - began).toBeGreaterThanOrEqual(2500)
    await expectAllThere(written)

    // Acknowledged 8 s late: a 2 s flush gives up, non-zero, saying what is pending.
    slow.delayMs = 8000
    await appendLines(claudeFile(h.claudeDir, sid), [claudeLine(sid, 3, 'slow one')])
    written.set(sid, 4)
    const late = await runCli(['flush', '--timeout', '2'], env, h.cwd)
    expect(late.code).not.toBe(0)
    expect(late.stderr).toMatch(/not drained after 2 s: \d+ events in \d+ files still pending/)

    // The daemon goes on: once the server answers in time again, all of it is there once.
    slow.delayMs = 0
    const done = await runCli(['flush', '--timeout', '60'], env, h.cwd)
    expectExit(done, 0)
    await expectAllThere(written)
    const stop = await runCli(['stop'], env, h.cwd)
    expectExit(stop, 0)
  }, 120_000)
})
