import { execFileSync, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ADMIN_KEY, SECRET_KEY, tempDir } from './helpers.js'

const pkgDir = fileURLToPath(new URL('..', import.meta.url))
const bin = join(pkgDir, 'bin', 'hivemind-server.js')

interface Run {
  code: number | null
  stderr: string
  stdout: string
}

/** Runs the real bin to completion with a clean environment. */
function run(args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], {
      env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'warn', ...env },
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

/** Starts `serve`, resolves once it prints where it listens. */
function serve(env: Record<string, string>) {
  const child = spawn(process.execPath, [bin], {
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'warn', ...env },
  })
  let stderr = ''
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve))
  const listening = new Promise<string>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString()
      const m = /listening on (http:\/\/\S+)/.exec(stderr)
      if (m && stderr.includes('\n', m.index)) setTimeout(() => resolve(m[1]), 200)
    })
    void exited.then((code) => reject(new Error(`exited ${code}: ${stderr}`)))
  })
  return { child, listening, exited, stderr: () => stderr }
}

describe('hivemind-server bin', () => {
  const dirs: { remove(): Promise<void> }[] = []
  const dir = async () => {
    const d = await tempDir('hivemind-bin-')
    dirs.push(d)
    return d.path
  }
  beforeAll(() => {
    // The bin runs the bundle; `pnpm test` builds first, a lone vitest run may not have.
    if (!existsSync(join(pkgDir, 'dist', 'main.js'))) {
      execFileSync('npx', ['-y', 'pnpm@10', '--filter', '@hivemind/server...', 'run', 'build'], {
        cwd: pkgDir,
        stdio: 'ignore',
      })
    }
  }, 120_000)
  afterAll(async () => {
    for (const d of dirs) await d.remove()
  })

  // Each process boots PGlite (a few seconds on a small machine).
  it(
    'serves on a free port, prints where and how to bootstrap, and stops on SIGTERM',
    { timeout: 60_000 },
    async () => {
      const s = serve({ HIVEMIND_PORT: '0', HIVEMIND_DATA_DIR: await dir() })
      const url = await s.listening
      const all = s.stderr().trim().split('\n')
      // One progress line per migration, whatever their number.
      const migrations = all.filter((l) => l.includes('applied migration'))
      expect(migrations[0]).toMatch(/^hivemind-server: applied migration 001_core\.sql \(1\/\d+\)$/)
      const lines = all.filter((l) => !l.includes('applied migration'))
      expect(lines).toEqual([
        expect.stringMatching(
          new RegExp(
            `^hivemind-server \\S+ listening on ${url} \\(issuer and audience ${url}; PGlite data in `,
          ),
        ),
        'hivemind-server: no ADMIN_API_KEY is set and there are no users or service accounts yet. To bootstrap:',
        `  1. register the first account, which becomes Admin:  curl -sS -X POST ${url}/auth/register -H 'Content-Type: application/json' -d '{"username":"admin","email":"admin@example.com","password":"<at least 12 characters>"}'`,
        '     or restart with an admin key (keep it secret):  export ADMIN_API_KEY=$(openssl rand -hex 32)',
        `  2. create a service account (with an Admin's hm-… API key, or the admin key):  curl -sS -X POST ${url}/api/v1/service-accounts -H "X-API-Key: $ADMIN_API_KEY" -H 'Content-Type: application/json' -d '{"name":"ci","scopes":["write"]}'`,
      ])
      const health = await fetch(`${url}/api/v1/health`)
      expect(health.status).toBe(200)
      s.child.kill('SIGTERM')
      expect(await s.exited).toBe(0)
    },
  )

  it('follows its own bootstrap hint', { timeout: 60_000 }, async () => {
    const s = serve({
      HIVEMIND_PORT: '0',
      HIVEMIND_DATA_DIR: await dir(),
      ADMIN_API_KEY: ADMIN_KEY,
    })
    const url = await s.listening
    expect(s.stderr()).toContain('no service accounts yet; create the first one with:')
    const res = await fetch(`${url}/api/v1/service-accounts`, {
      method: 'POST',
      headers: { 'X-API-Key': ADMIN_KEY, 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'ci', scopes: ['write'] }),
    })
    expect(res.status).toBe(201)
    s.child.kill('SIGTERM')
    expect(await s.exited).toBe(0)
  })

  it.each([
    [
      { HIVEMIND_PORT: 'abc' },
      'hivemind-server: invalid HIVEMIND_PORT="abc": Invalid input: expected number, received NaN',
    ],
    [
      { DATABASE_URL: 'mysql://db' },
      'hivemind-server: invalid DATABASE_URL="mysql://db": must be a postgres:// URL',
    ],
    [
      { HIVEMIND_SECRET_KEY: 'short' },
      'hivemind-server: invalid HIVEMIND_SECRET_KEY="short": must be at least 32 characters',
    ],
  ])('bad config %o → exit 2, one line', async (env, line) => {
    const r = await run(['serve'], env)
    expect(r.code).toBe(2)
    expect(r.stderr).toBe(`${line}\n`)
  })

  it('port in use → exit 1, one clear line', { timeout: 60_000 }, async () => {
    const blocker: Server = createServer()
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
    const port = (blocker.address() as { port: number }).port
    try {
      const r = await run(['serve'], {
        HIVEMIND_PORT: String(port),
        HIVEMIND_DATA_DIR: await dir(),
      })
      expect(r.code).toBe(1)
      expect(r.stderr.trim().split('\n').at(-1)).toBe(
        `hivemind-server: cannot listen on 127.0.0.1:${port}: the port is already in use (set HIVEMIND_PORT to a free port)`,
      )
    } finally {
      blocker.close()
    }
  })

  it('unreachable database → exit 1, one clear line without the password', async () => {
    const r = await run(['serve'], { DATABASE_URL: 'postgres://app:hunter2@127.0.0.1:1/hivemind' })
    expect(r.code).toBe(1)
    expect(r.stderr).toBe(
      'hivemind-server: cannot connect to the database at postgres://app@127.0.0.1:1/hivemind: connection refused (is PostgreSQL running?)\n',
    )
  })

  it('unknown command → exit 2', async () => {
    const r = await run(['frobnicate'], {})
    expect(r).toMatchObject({
      code: 2,
      stderr: 'hivemind-server: unknown command "frobnicate" (see --help)\n',
    })
  })

  it('migrate, keys rotate, backup and restore', async () => {
    const data = await dir()
    const env = { HIVEMIND_DATA_DIR: data, HIVEMIND_SECRET_KEY: SECRET_KEY }
    const m1 = await run(['migrate'], env)
    expect(m1).toMatchObject({ code: 0 })
    expect(m1.stderr).toContain('hivemind-server: applied migration 001_core.sql (1/')
    expect((await run(['migrate'], env)).stderr).toMatch(
      /database is up to date \(0 applied now, \d+ before\)/,
    )

    const rot = await run(['keys', 'rotate'], env)
    expect(rot.code).toBe(0)
    expect(rot.stderr).toMatch(
      /^hivemind-server: signing key \S+ is now active; previous keys stay published until \S+Z\./,
    )

    const file = join(await dir(), 'hivemind.backup.gz')
    const b = await run(['backup', '--out', file], env)
    expect(b.code).toBe(0)
    expect(b.stderr).toContain(`hivemind-server: wrote ${file}`)
    expect(b.stderr).toContain('keep HIVEMIND_SECRET_KEY with this backup')

    const target = await dir()
    const wrong = await run(['restore', '--in', file], {
      HIVEMIND_DATA_DIR: target,
      HIVEMIND_SECRET_KEY: 'x'.repeat(40),
    })
    expect(wrong.code).toBe(1)
    expect(wrong.stderr).toMatch(
      /^hivemind-server: the backup's signing key \S+ cannot be decrypted: HIVEMIND_SECRET_KEY differs from the key the backed-up server used\n$/,
    )
    const ok = await run(['restore', '--in', file], {
      HIVEMIND_DATA_DIR: target,
      HIVEMIND_SECRET_KEY: SECRET_KEY,
    })
    expect(ok.code).toBe(0)
    expect(ok.stderr).toContain(`hivemind-server: restored ${file} into PGlite data in ${target}`)

    const s = serve({
      HIVEMIND_PORT: '0',
      HIVEMIND_DATA_DIR: target,
      HIVEMIND_SECRET_KEY: SECRET_KEY,
    })
    const url = await s.listening
    const jwks = (await (await fetch(`${url}/.well-known/jwks.json`)).json()) as { keys: unknown[] }
    expect(jwks.keys).toHaveLength(2)
    s.child.kill('SIGTERM')
    await s.exited
  }, 120_000)
})
