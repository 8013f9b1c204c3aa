// `hivemind mcp` end to end: an MCP client from @modelcontextprotocol/sdk spawns the CLI
// (from source) over stdio, as GitHub Copilot does; the real server runs in its own
// process. The daemon runs inside the MCP process, reachable on its control socket.
import { randomUUID } from 'node:crypto'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { isAlive } from '../src/daemon/state-dir.ts'
import { DaemonStatus } from '../src/daemon/status.ts'
import {
  appendLines,
  claudeFile,
  claudeLine,
  daemonLog,
  daemonPid,
  daemonSnapshot,
  eventCount,
  eventTexts,
  killDaemon,
  waitFor,
  expectExit,
  FAST_TIMINGS,
} from './daemon-helpers.ts'
import {
  ROOT,
  createToken,
  runCli,
  startServer,
  tempHome,
  type ServerProcess,
  type TempHome,
} from './processes.ts'

describe('hivemind mcp (MCP client ⇄ CLI over stdio, real server)', () => {
  let server: ServerProcess
  let writer: { token: string; serviceAccountId: string }
  let reader: { token: string; serviceAccountId: string }
  const homes: TempHome[] = []
  const clients: { client: Client; stderr: () => string }[] = []
  const home = async () => {
    const h = await tempHome({ fixtures: false })
    homes.push(h)
    return h
  }
  const envFor = (h: TempHome) => ({
    ...h.env,
    HIVEMIND_ENDPOINT: server.url,
    HIVEMIND_TOKEN: writer.token,
    NODE_ENV: 'test',
    HIVEMIND_TEST_DAEMON_TIMINGS: FAST_TIMINGS,
  })
  const count = (sid: string) => eventCount(server.url, reader.token, writer.serviceAccountId, sid)

  /** `hivemind mcp` from source (node + tsx's loader, as processes.ts runs the CLI). */
  const connect = async (h: TempHome) => {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [
        '--import',
        pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href,
        join(ROOT, 'packages/cli/src/index.ts'),
        'mcp',
      ],
      env: { ...envFor(h), TSX_TSCONFIG_PATH: join(ROOT, 'tsconfig.json') },
      cwd: h.cwd,
      stderr: 'pipe',
    })
    let stderr = ''
    transport.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
    const client = new Client({ name: 'hivemind-e2e', version: '1.0.0' })
    clients.push({ client, stderr: () => stderr })
    await client.connect(transport)
    return { client, transport, stderr: () => stderr }
  }
  const status = async (client: Client) => {
    const r = await client.callTool({ name: 'status', arguments: {} })
    if (r.isError) throw new Error(`status tool failed: ${JSON.stringify(r.content)}`)
    return DaemonStatus.parse(r.structuredContent)
  }

  beforeAll(async () => {
    server = await startServer()
    writer = await createToken(server.url, ['write'])
    reader = await createToken(server.url, ['read'])
  }, 90_000)

  afterEach(async () => {
    await Promise.all(clients.splice(0).map(({ client }) => client.close().catch(() => {})))
    for (const h of homes) killDaemon(h.stateDir)
  })

  afterAll(async () => {
    await server?.kill()
    if (server) await rm(server.dataDir, { recursive: true, force: true })
    await Promise.all(homes.map((h) => h.remove()))
  })

  it('lists one tool, `status`; reports the in-process daemon; `hivemind flush` reaches it; closing stdin flushes and exits', async () => {
    const h = await home()
    const sid = randomUUID()
    const file = claudeFile(h.claudeDir, sid)
    await appendLines(file, [claudeLine(sid, 0), claudeLine(sid, 1)])

    const { client, transport, stderr } = await connect(h)
    const pid = transport.pid!
    expect(pid).toBeGreaterThan(0)

    const { tools } = await client.listTools()
    expect(tools.map((t) => t.name)).toEqual(['status'])
    expect(tools[0]).toMatchObject({
      annotations: { readOnlyHint: true },
      outputSchema: { type: 'object' },
    })

    const s = await waitFor('the first pass', async () => {
      const st = await status(client)
      return st.files_watched > 0 && st.uploaded.events >= 2 ? st : undefined
    })
    expect(s).toMatchObject({
      pid,
      state: 'running',
      endpoint: server.url,
      state_dir: h.stateDir,
      files_watched: 1,
      paused: false,
      last_error: null,
      token: { source: 'static', kind: 'bearer', state: 'valid' },
    })
    expect(s.watch_roots).toContainEqual({ agent: 'claude-code', root: h.claudeDir })
    expect(daemonPid(h.stateDir)).toBe(pid)
    expect(await count(sid)).toBe(2)

    // The session-end hook: `hivemind flush` in another process, over the daemon's socket.
    await appendLines(file, [claudeLine(sid, 2, 'flushed from another process')])
    const flush = await runCli(['flush', '--timeout', '30'], envFor(h), h.cwd)
    expectExit(flush, 0)
    expect(await count(sid)).toBe(3)
    const cliStatus = await runCli(['status', '--json'], envFor(h), h.cwd)
    expect(cliStatus.code).toBe(0)
    expect(JSON.parse(cliStatus.stdout)).toMatchObject({ running: true, status: { pid } })

    // The agent's session ends: the client closes stdin. The MCP server flushes what was
    // written last and exits on its own.
    await appendLines(file, [claudeLine(sid, 3, 'written just before the session ended')])
    await client.close()
    await waitFor('the MCP process to exit', () => !isAlive(pid), 15_000, 50)
    expect(await eventTexts(server.url, reader.token, writer.serviceAccountId, sid)).toContain(
      'written just before the session ended',
    )
    expect(await count(sid)).toBe(4)
    expect(daemonSnapshot(h.stateDir)).toMatchObject({ pid, state: 'stopped', drained: true })
    expect(daemonPid(h.stateDir)).toBeUndefined()
    const ended = daemonLog(h.stateDir).find((r) => r.msg === 'MCP session ended; final flush')
    expect(ended).toMatchObject({ reason: 'stdin closed' })
    // stdout carries only the protocol, and nothing went wrong on stderr.
    expect(stderr()).not.toMatch(/\n\s+at |error/i)
    expect(daemonLog(h.stateDir).some((r) => r.msg === 'stopped: everything delivered')).toBe(true)
  }, 90_000)

  it('with a daemon already running for the state dir, `status` serves that daemon’s status', async () => {
    const h = await home()
    const sid = randomUUID()
    await appendLines(claudeFile(h.claudeDir, sid), [claudeLine(sid, 0)])
    const started = await runCli(['start'], envFor(h), h.cwd)
    expectExit(started, 0)
    const daemon = daemonPid(h.stateDir)!

    const { client, transport } = await connect(h)
    expect(transport.pid).not.toBe(daemon)
    const s = await waitFor('the running daemon’s first pass', async () => {
      const st = await status(client)
      return st.files_watched > 0 ? st : undefined
    })
    expect(s).toMatchObject({ pid: daemon, state: 'running', state_dir: h.stateDir })
    await client.close()
    // The MCP process leaves the other daemon alone.
    expect(isAlive(daemon)).toBe(true)
    expect(daemonPid(h.stateDir)).toBe(daemon)
    const stop = await runCli(['stop'], envFor(h), h.cwd)
    expectExit(stop, 0)
    expect(await count(sid)).toBe(1)
  }, 90_000)
})
