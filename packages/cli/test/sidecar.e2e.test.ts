// Pattern B without Docker: what the image runs (its ENTRYPOINT `hivemind start
// --foreground`, the compose file's flags and environment, a read-only mounted `.claude`
// under /watch, SIGTERM from `docker stop`, and the HEALTHCHECK command) as plain processes.
import { readFileSync } from 'node:fs'
import { appendFile, chmod, cp, mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createToken,
  listSessions,
  runCli,
  spawnCli,
  startServer,
  tempHome,
  type ServerProcess,
  type TempHome,
} from './processes.ts'

const CLAUDE_SID = '11111111-2222-4333-8444-555555555555'
const DOCKERFILE = fileURLToPath(new URL('../Dockerfile', import.meta.url))

/** The image's ENTRYPOINT and HEALTHCHECK commands, read from the Dockerfile (minus `hivemind`). */
function imageCommands(): { entrypoint: string[]; healthcheck: string[] } {
  const text = readFileSync(DOCKERFILE, 'utf8')
  const json = (re: RegExp) => JSON.parse(re.exec(text)?.[1] ?? 'null') as string[]
  const entrypoint = json(/^ENTRYPOINT (\[.*\])$/m)
  const healthcheck = json(/^HEALTHCHECK .* CMD (\[.*\])$/m)
  expect(entrypoint[0]).toBe('hivemind')
  expect(healthcheck[0]).toBe('hivemind')
  return { entrypoint: entrypoint.slice(1), healthcheck: healthcheck.slice(1) }
}

/** One Claude Code user record in the on-disk format of the fixture. */
function claudeLine(n: number, cwd: string): string {
  return `${JSON.stringify({
    parentUuid: null,
    isSidechain: false,
    userType: 'external',
    cwd,
    sessionId: CLAUDE_SID,
    version: '2.1.111',
    gitBranch: 'main',
    type: 'user',
    message: { role: 'user', content: `sidecar message ${n}` },
    uuid: `aaaaaaaa-0000-4000-8000-${String(n).padStart(12, '0')}`,
    timestamp: new Date(Date.UTC(2026, 10, 26, 12, 0, n)).toISOString(),
  })}\n`
}

describe('Pattern B: the sidecar entrypoint as a process', () => {
  let server: ServerProcess
  let writer: { token: string; serviceAccountId: string }
  let reader: { token: string }
  let h: TempHome

  beforeAll(async () => {
    server = await startServer()
    writer = await createToken(server.url, ['write'])
    reader = await createToken(server.url, ['read'])
    h = await tempHome({ fixtures: false })
  }, 90_000)

  afterAll(async () => {
    await server?.kill()
    await h?.remove()
  })

  it('catches up on what the agent wrote before it started, tails, is healthy, and flushes on SIGTERM', async () => {
    const { entrypoint, healthcheck } = imageCommands()
    // The agent's volume, mounted read-only at /watch/.claude in the compose file.
    const watch = join(h.root, 'watch', '.claude')
    const project = join(watch, 'projects', '-workspace')
    await mkdir(project, { recursive: true })
    const file = join(project, `${CLAUDE_SID}.jsonl`)
    await cp(
      join(
        fileURLToPath(new URL('./fixtures/claude-code/projects/-tmp-proj/', import.meta.url)),
        `${CLAUDE_SID}.jsonl`,
      ),
      file,
    )
    const fixtureLines = (await readFile(file, 'utf8')).trim().split('\n').length
    const state = join(h.root, 'home-hivemind', '.hivemind')
    // The sidecar only reads: the session dir is not writable by it.
    await chmod(project, 0o555)
    const env = {
      HOME: join(h.root, 'home-hivemind'),
      NODE_ENV: 'production',
      HIVEMIND_STATE_DIR: state,
      HIVEMIND_ENDPOINT: server.url,
      HIVEMIND_WATCH_PATHS: '/nonexistent/.codex,' + watch,
      HIVEMIND_TOKEN: writer.token,
    }
    const daemon = spawnCli([...entrypoint, '--drain-timeout', '25'], env, h.cwd)
    try {
      const health = () => runCli([...healthcheck.slice(0, -1), state], env, h.cwd)
      await expect
        .poll(async () => (await health()).code, { timeout: 30_000, interval: 500 })
        .toBe(0)
      expect((await health()).stdout).toBe('') // -q
      // The session that was there before the sidecar started is uploaded.
      const events = async () =>
        (await listSessions(server.url, reader.token, writer.serviceAccountId)).reduce(
          (n, s) => n + s.event_count,
          0,
        )
      await expect.poll(events, { timeout: 30_000, interval: 250 }).toBeGreaterThan(0)
      const before = await events()

      // The agent appends while the sidecar runs; the last lines land right before SIGTERM.
      await chmod(project, 0o755)
      for (let i = 1; i <= 5; i++) await appendFile(file, claudeLine(i, '/workspace'))
      await chmod(project, 0o555)
      daemon.child.kill('SIGTERM')
      const exit = await daemon.done
      expect(exit.code).toBe(0)
      expect(exit.stderr).toMatch(/daemon stopped; everything delivered/)
      expect(await events()).toBe(before + 5)
      // Nothing the agent wrote is counted twice, and the fixture's events are all there.
      expect(before).toBeGreaterThanOrEqual(fixtureLines - 2)
      const last = JSON.parse(await readFile(join(state, 'daemon.json'), 'utf8')) as {
        state: string
        drained: boolean
      }
      expect(last).toMatchObject({ state: 'stopped', drained: true })
      expect((await health()).code).toBe(1)
    } finally {
      await chmod(project, 0o755)
      if (daemon.child.exitCode == null) daemon.child.kill('SIGKILL')
    }
  }, 120_000)

  it('never exits on a credential the server refuses: stays up, reports unhealthy, stops on SIGTERM', async () => {
    const { entrypoint } = imageCommands()
    const state = join(h.root, 'bad-cred', '.hivemind')
    const env = {
      HOME: join(h.root, 'bad-cred'),
      HIVEMIND_STATE_DIR: state,
      HIVEMIND_ENDPOINT: server.url,
      HIVEMIND_TOKEN: 'hmsa_not-a-real-token',
      CLAUDE_CONFIG_DIR: join(h.root, 'bad-cred', '.claude'),
      NODE_ENV: 'test',
      HIVEMIND_TEST_DAEMON_TIMINGS: JSON.stringify({ backoffMs: 100, maxBackoffMs: 500 }),
    }
    await mkdir(join(env.CLAUDE_CONFIG_DIR, 'projects', 'p'), { recursive: true })
    await appendFile(
      join(env.CLAUDE_CONFIG_DIR, 'projects', 'p', `${CLAUDE_SID}.jsonl`),
      claudeLine(1, '/p'),
    )
    const daemon = spawnCli(entrypoint, env, h.cwd)
    try {
      await expect
        .poll(
          async () => {
            const r = await runCli(['status', '--json', '--state-dir', state], env, h.cwd)
            return r.code === 0
              ? (JSON.parse(r.stdout) as { status: { last_error: unknown } }).status.last_error
              : null
          },
          { timeout: 30_000, interval: 300 },
        )
        .toMatchObject({ message: expect.stringMatching(/401|invalid|token/i) })
      await new Promise((r) => setTimeout(r, 1500))
      expect(daemon.child.exitCode).toBeNull()
      const health = () =>
        runCli(['health', '--state-dir', state, '--failing-after', '1'], env, h.cwd)
      await expect
        .poll(async () => (await health()).code, { timeout: 15_000, interval: 300 })
        .toBe(1)
      const unhealthy = await health()
      expect(unhealthy.code).toBe(1)
      expect(unhealthy.stderr).toMatch(/has not uploaded for \d+ s \(limit 1 s\)/)
      expect(unhealthy.stderr).not.toContain('hmsa_not-a-real-token')
      daemon.child.kill('SIGTERM')
      const exit = await daemon.done
      // Not drained: the record is still pending, and it says so.
      expect(exit.code).toBe(1)
      expect(exit.stderr).toMatch(/not delivered/)
      expect(exit.stderr).not.toContain('hmsa_not-a-real-token')
    } finally {
      if (daemon.child.exitCode == null) daemon.child.kill('SIGKILL')
    }
  }, 120_000)
})
