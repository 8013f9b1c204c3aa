import { createHash } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli } from '../src/cli/run.js'
import { loadConfig } from '../src/config.js'
import { migrate } from '../src/db/migrate.js'
import type { Db } from '../src/db/types.js'
import { openDatabase } from '../src/server.js'
import { hashPassword } from '../src/users/password.js'
import {
  createSession,
  getPatPolicy,
  registerFirstUser,
  rotateApiKey,
  setPatPolicy,
} from '../src/users/store.js'
import { BACKENDS, backendAvailable, backendEnv, silentLogger, startTestServer } from './helpers.js'
import { PASSWORD, cookieValue, rawRequest } from './people-helpers.js'

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex')

describe.each(BACKENDS)('people storage on %s', (backend) => {
  describe.skipIf(!backendAvailable(backend))('when the database is available', () => {
    let env: Record<string, string>
    let cleanup: () => Promise<void>
    let db: Db
    beforeAll(async () => {
      const b = await backendEnv(backend)
      env = b.env
      cleanup = () => b.cleanup()
    })
    afterAll(async () => {
      await cleanup()
    })

    describe('store', () => {
      beforeAll(async () => {
        db = await openDatabase(loadConfig(env))
        await migrate(db)
      })
      afterAll(async () => {
        // Leave the database empty for the HTTP part below.
        for (const t of [
          'user_sessions',
          'user_api_keys',
          'personal_access_tokens',
          'first_registration',
          'org_policy',
          'users',
        ])
          await db.query(`DELETE FROM ${t}`)
        await db.query('DELETE FROM audit_log')
        await db.close()
      })

      it('lets exactly one of many concurrent first registrations through', async () => {
        const passwordHash = await hashPassword(PASSWORD)
        // A race is a matter of timing: several rounds, so a broken guard cannot slip through by luck.
        for (let round = 0; round < 5; round++) {
          await db.query('DELETE FROM first_registration')
          await db.query('DELETE FROM users')
          const results = await Promise.all(
            Array.from({ length: 8 }, (_, i) =>
              registerFirstUser(
                db,
                { username: `r${i}`, email: `r${i}@example.com`, passwordHash },
                Date.now(),
              ),
            ),
          )
          const winners = results.filter((r) => r !== undefined)
          expect(winners).toHaveLength(1)
          expect(winners[0]).toMatchObject({ role: 'Admin', source: 'local' })
          const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM users')
          expect(Number(rows[0].n)).toBe(1)
        }
        expect(
          await registerFirstUser(
            db,
            { username: 'late', email: 'late@example.com', passwordHash },
            Date.now(),
          ),
        ).toBeUndefined()
      })

      it('stores sessions and API keys as SHA-256 hashes only', async () => {
        const { rows: users } = await db.query<{ id: string }>('SELECT id FROM users')
        const userId = users[0].id
        const s = await createSession(db, userId, {
          nowMs: Date.now(),
          ttlS: 60,
          address: '127.0.0.1',
        })
        const k = await rotateApiKey(db, userId, Date.now())
        const { rows } = await db.query<Record<string, unknown>>(
          'SELECT s.token_hash, s.csrf_hash, k.key_hash FROM user_sessions s, user_api_keys k',
        )
        expect(rows).toEqual([
          { token_hash: sha256(s.token), csrf_hash: sha256(s.csrf), key_hash: sha256(k.key) },
        ])
        const dump = JSON.stringify((await db.query('SELECT * FROM user_sessions')).rows)
        expect(dump).not.toContain(s.token)
      })

      it('keeps one org policy row, enabled by default', async () => {
        expect(await getPatPolicy(db)).toBe('enabled')
        await setPatPolicy(db, 'write-only', Date.now())
        await setPatPolicy(db, 'disabled', Date.now())
        expect(await getPatPolicy(db)).toBe('disabled')
        const { rows } = await db.query('SELECT * FROM org_policy')
        expect(rows).toHaveLength(1)
      })
    })

    describe('HTTP smoke', () => {
      it('keeps a session across a server restart (sessions live in the database)', async () => {
        const opts = { env, overrides: { logger: silentLogger() } }
        let t = await startTestServer(opts)
        let cookie: string
        try {
          const reg = await t.call('POST', '/auth/register', {
            body: { username: 'ada', email: 'ada@example.com', password: PASSWORD },
          })
          expect(reg).toMatchObject({ status: 201, body: { role: 'Admin' } })
          const r = await rawRequest(t.url, {
            method: 'POST',
            path: '/auth/login',
            body: { email: 'ada@example.com', password: PASSWORD },
          })
          expect(r.status).toBe(200)
          cookie = `hm_session=${cookieValue(r.cookies, 'hm_session')}`
        } finally {
          await t.close()
        }
        t = await startTestServer(opts)
        try {
          const me = await rawRequest(t.url, { path: '/api/v1/me', headers: { cookie } })
          expect(me.body).toMatchObject({
            kind: 'user',
            name: 'ada',
            role: 'Admin',
            credential: 'session',
          })
          const pat = await t.call('POST', '/api/v1/tokens', {
            headers: { cookie: `${cookie}; hm_csrf=x`, 'x-csrf-token': 'x' },
            body: {},
          })
          // The CSRF value must be the one issued with this session.
          expect(pat.status).toBe(403)
        } finally {
          await t.close()
        }
      })

      it('admin-key rotate prints a new hm- key once, which works and replaces the previous one', async () => {
        const cli = async () => {
          const lines: string[] = []
          const code = await runCli(['node', 'hivemind-server', 'admin-key', 'rotate'], {
            env: { ...env, LOG_LEVEL: 'silent' },
            print: (l) => lines.push(l),
            stopSignal: () => new Promise(() => {}),
          })
          return { code, out: lines.join('\n') }
        }
        const first = await cli()
        expect(first.code).toBe(0)
        expect(first.out).toContain('HIVEMIND_API_KEY=')
        expect(first.out).toContain('~/.config/hivemind/env')
        expect(first.out).toContain('ADMIN_API_KEY')
        const key1 = /\b(hm-[A-Za-z0-9]{64})\b/.exec(first.out)![1]
        const second = await cli()
        const key2 = /\b(hm-[A-Za-z0-9]{64})\b/.exec(second.out)![1]
        expect(key2).not.toBe(key1)
        const t = await startTestServer({ env, overrides: { logger: silentLogger() } })
        try {
          const ok = await t.call('GET', '/api/v1/me', { headers: { 'x-api-key': key2 } })
          expect(ok.body).toMatchObject({
            kind: 'user',
            name: 'ada',
            role: 'Admin',
            credential: 'api_key',
          })
          const old = await t.call('GET', '/api/v1/me', { headers: { 'x-api-key': key1 } })
          expect(old.body).toEqual({
            error: 'invalid or inactive API key',
            code: 'invalid_api_key',
          })
          const audit = await t.call('GET', '/api/v1/audit?action=api_key.rotate', { admin: true })
          expect(audit.body.items).toHaveLength(2)
          expect(JSON.stringify(audit.body)).not.toContain(key2)
        } finally {
          await t.close()
        }
      })
    })
  })
})
