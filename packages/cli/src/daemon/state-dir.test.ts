import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { DEFAULTS, ENV } from '@hivemind/sdk/schemas'
import { afterEach, describe, expect, it } from 'vitest'
import { checkHealth } from '../health.js'
import {
  DEFAULT_STATE_DIR_NAME,
  STATE_DIR_ENV,
  daemonPaths,
  pidFileContent,
  resolveStateDir,
  runningPid,
} from './state-dir.js'

const dirs: string[] = []
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true })
})
async function temp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'hivemind-state-'))
  dirs.push(d)
  return d
}

describe('state dir', () => {
  it('repeats the SDK names (the healthcheck cannot load them)', () => {
    expect(STATE_DIR_ENV).toBe(ENV.stateDir)
    expect(DEFAULT_STATE_DIR_NAME).toBe(DEFAULTS.stateDir)
  })

  it('resolves --state-dir, then HIVEMIND_STATE_DIR, then ~/.hivemind', () => {
    expect(resolveStateDir('s', { HIVEMIND_STATE_DIR: '/e', HOME: '/h' }, '/cwd')).toBe('/cwd/s')
    expect(resolveStateDir(undefined, { HIVEMIND_STATE_DIR: '/e', HOME: '/h' }, '/cwd')).toBe('/e')
    expect(resolveStateDir(undefined, { HOME: '/h' }, '/cwd')).toBe('/h/.hivemind')
  })

  it('keeps the socket in the state dir when it fits, else derives a short path per dir', () => {
    expect(daemonPaths('/home/u/.hivemind').socket).toBe('/home/u/.hivemind/daemon.sock')
    const deep = `/home/runner/work/_temp/${'nested/'.repeat(20)}state`
    const a = daemonPaths(deep).socket
    expect(Buffer.byteLength(a)).toBeLessThanOrEqual(100)
    expect(a).toMatch(/hivemind-[0-9a-f]{16}\.sock$/)
    expect(daemonPaths(`${deep}2`).socket).not.toBe(a)
    expect(daemonPaths(deep).socket).toBe(a)
    // The same for every environment: a hook's `hivemind flush` may see another TMPDIR.
    const saved = process.env.TMPDIR
    process.env.TMPDIR = '/var/tmp/elsewhere'
    try {
      expect(daemonPaths(deep).socket).toBe(a)
    } finally {
      if (saved === undefined) delete process.env.TMPDIR
      else process.env.TMPDIR = saved
    }
  })

  it.runIf(process.platform === 'linux')(
    'does not take a reused pid (another start time) for the daemon',
    async () => {
      const dir = await temp()
      const paths = daemonPaths(dir)
      await writeFile(paths.pidFile, pidFileContent(process.pid))
      expect(runningPid(paths)).toBe(process.pid)
      await writeFile(paths.pidFile, `${process.pid}\n1\n`)
      expect(runningPid(paths)).toBeUndefined()
    },
  )

  it('reports a pid only when that process is alive', async () => {
    const dir = await temp()
    const paths = daemonPaths(dir)
    expect(runningPid(paths)).toBeUndefined()
    await writeFile(paths.pidFile, `${process.pid}\n`)
    expect(runningPid(paths)).toBe(process.pid)
    const dead = spawnSync(process.execPath, ['-e', '0']).pid
    await writeFile(paths.pidFile, `${dead}\n`)
    expect(runningPid(paths)).toBeUndefined()
  })
})

describe('checkHealth', () => {
  const now = Date.parse('2026-11-26T12:00:00Z')
  async function daemonDir(snapshot: Record<string, unknown>): Promise<string> {
    const dir = join(await temp(), 'deep')
    await mkdir(dir)
    const paths = daemonPaths(dir)
    await writeFile(paths.pidFile, `${process.pid}\n`)
    await writeFile(paths.stateFile, JSON.stringify({ pid: process.pid, ...snapshot }))
    return dir
  }
  const opts = { staleAfter: 30, failingAfter: 300, now }

  it('is healthy with a fresh heartbeat and no long failure', async () => {
    const dir = await daemonDir({
      state: 'running',
      heartbeat_at: new Date(now - 5000).toISOString(),
    })
    expect(checkHealth(dir, opts)).toMatchObject({ healthy: true })
  })

  it('is unhealthy when there is no daemon', async () => {
    const dir = await temp()
    expect(checkHealth(dir, opts)).toEqual({
      healthy: false,
      message: `no daemon running for state dir ${dir}`,
    })
  })

  it('is unhealthy when the heartbeat is stale (stuck loop)', async () => {
    const dir = await daemonDir({
      state: 'running',
      heartbeat_at: new Date(now - 31_000).toISOString(),
    })
    expect(checkHealth(dir, opts)).toMatchObject({
      healthy: false,
      message: expect.stringMatching(/stuck: last heartbeat 31 s ago/),
    })
  })

  it('is unhealthy when uploads have failed longer than the threshold, healthy before', async () => {
    const base = {
      state: 'running',
      heartbeat_at: new Date(now - 1000).toISOString(),
      last_error: { message: 'server unreachable at http://x' },
    }
    const recent = await daemonDir({ ...base, failing_since: new Date(now - 60_000).toISOString() })
    expect(checkHealth(recent, opts).healthy).toBe(true)
    const old = await daemonDir({ ...base, failing_since: new Date(now - 301_000).toISOString() })
    expect(checkHealth(old, opts)).toMatchObject({
      healthy: false,
      message: expect.stringMatching(/has not uploaded for 301 s .*server unreachable/),
    })
  })

  it('is unhealthy when the status file belongs to another (earlier) daemon', async () => {
    const dir = await daemonDir({ state: 'running', heartbeat_at: new Date(now).toISOString() })
    await writeFile(
      daemonPaths(dir).stateFile,
      JSON.stringify({ pid: 1, state: 'running', heartbeat_at: new Date(now).toISOString() }),
    )
    expect(checkHealth(dir, opts).healthy).toBe(false)
  })
})

describe('isAlive', () => {
  it.runIf(process.platform === 'linux')(
    'treats an exited but unreaped process (a zombie) as dead',
    async () => {
      const { spawn } = await import('node:child_process')
      const { isAlive } = await import('./state-dir.js')
      // A short sleep runs in the background and exits after its parent has exec'd the
      // long `sleep`, which never reaps it: a zombie for as long as the long sleep lasts.
      const parent = spawn('sh', ['-c', 'sleep 0.3 & echo $!; exec sleep 5'], {
        stdio: ['ignore', 'pipe', 'ignore'],
      })
      try {
        const pid = Number(
          await new Promise<string>((r) =>
            parent.stdout.once('data', (d: Buffer) => r(d.toString())),
          ),
        )
        await expect
          .poll(() => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0], {
            timeout: 5000,
          })
          .toBe('Z')
        expect(isAlive(pid)).toBe(false)
        expect(isAlive(parent.pid!)).toBe(true)
      } finally {
        parent.kill()
      }
    },
  )
})
