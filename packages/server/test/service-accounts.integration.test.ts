import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  ADMIN_KEY,
  BACKENDS,
  backendAvailable,
  backendEnv,
  manualClock,
  startTestServer,
  type TestServer,
} from './helpers.js'
import Router from '@koa/router'
import { requireScope } from '../src/auth/require.js'
import { SA_STATUS_TTL_MS } from '../src/service-accounts/status-cache.js'

/** Probe routes guarded by scope, as the sessions API will declare them. */
function probeRouter(): Router {
  const r = new Router()
  r.post('/probe/write', requireScope('write'), (ctx) => {
    ctx.body = { ok: true }
  })
  r.post('/probe/read', requireScope('read'), (ctx) => {
    ctx.body = { ok: true }
  })
  return r
}

describe.each(BACKENDS)('admin API on %s', (backend) => {
  describe.skipIf(!backendAvailable(backend))('when the database is available', () => {
    let t: TestServer
    let cleanup: () => Promise<void>
    const clock = manualClock()
    beforeAll(async () => {
      const b = await backendEnv(backend)
      cleanup = () => b.cleanup()
      t = await startTestServer({ env: b.env, overrides: { clock }, routers: [probeRouter()] })
    })
    afterAll(async () => {
      await t.close()
      await cleanup()
    })

    const createSa = async (body: Record<string, unknown>) => {
      const r = await t.call('POST', '/api/v1/service-accounts', { admin: true, body })
      expect(r).toMatchObject({ status: 201 })
      return r.body as { id: string; name: string }
    }
    const createToken = async (saId: string, body: Record<string, unknown> = {}) => {
      const r = await t.call('POST', `/api/v1/service-accounts/${saId}/tokens`, {
        admin: true,
        body,
      })
      expect(r).toMatchObject({ status: 201 })
      return r.body as { id: string; token: string; expires_at: string | null }
    }

    describe('admin authentication', () => {
      it.each([
        ['no credential', {}, 401, 'missing_credentials'],
        ['wrong X-API-Key', { 'x-api-key': 'nope-nope-nope-nope' }, 401, 'invalid_api_key'],
        ['wrong bearer', { authorization: 'Bearer nope-nope-nope' }, 401, 'invalid_token'],
        ['basic auth', { authorization: 'Basic Zm9vOmJhcg==' }, 401, 'invalid_token'],
        ['admin key as X-API-Key', { 'x-api-key': ADMIN_KEY }, 200, undefined],
        ['admin key as bearer', { authorization: `Bearer ${ADMIN_KEY}` }, 200, undefined],
      ])('%s → %i', async (_name, headers, status, code) => {
        const r = await t.call('GET', '/api/v1/service-accounts', { headers })
        expect(r.status).toBe(status)
        expect((r.body as { code?: string }).code).toBe(code)
      })

      it('answers the quoted body for a bad API key and the RFC 6750 challenge for a bad bearer', async () => {
        const k = await t.call('GET', '/api/v1/me', { headers: { 'x-api-key': 'x'.repeat(20) } })
        expect(k.body).toEqual({ error: 'invalid or inactive API key', code: 'invalid_api_key' })
        const b = await t.call('GET', '/api/v1/me', { bearer: 'a.b.c' })
        expect(b.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"')
      })

      it('forbids service-account credentials on admin routes', async () => {
        const sa = await createSa({ name: 'not-admin', scopes: ['read', 'write'] })
        const { token } = await createToken(sa.id)
        const r = await t.call('GET', '/api/v1/service-accounts', { bearer: token })
        expect(r).toMatchObject({ status: 403, body: { code: 'forbidden' } })
      })

      it('ignores junk credentials on public routes', async () => {
        expect((await t.call('GET', '/api/v1/health/live', { bearer: 'junk' })).status).toBe(200)
      })
    })

    describe('service accounts CRUD', () => {
      it.each([
        [{ name: 'x', max_ttl_seconds: 599 }, 'max_ttl_seconds: must be at least 600 seconds'],
        [{ name: 'x', max_ttl_seconds: 86_401 }, 'max_ttl_seconds: must be at most 86400 seconds'],
        [{ name: 'x', scopes: ['admin'] }, expect.stringMatching(/^scopes\.0: /)],
        [{ name: 'x', scopes: [] }, 'scopes: must name at least one scope'],
        [{ name: 'x', scopes: ['read', 'read'] }, 'scopes: must not repeat a scope'],
        [{ name: 'has space' }, expect.stringMatching(/^name: must be 1-64 characters/)],
        [{ scopes: ['read'] }, 'name: is required'],
        [{ name: 'x', colour: 'red' }, 'body: unknown field(s) colour'],
      ])('rejects %o', async (body, error) => {
        const r = await t.call('POST', '/api/v1/service-accounts', { admin: true, body })
        expect(r.status).toBe(400)
        expect(r.body).toMatchObject({ code: 'invalid_request', error, details: expect.any(Array) })
      })

      it('creates, reads, lists, patches and deletes', async () => {
        const sa = await createSa({ name: 'crud', scopes: ['read'], max_ttl_seconds: 600 })
        expect(sa).toMatchObject({
          id: expect.stringMatching(/^sa_[a-z0-9]{20}$/),
          name: 'crud',
          scopes: ['read'],
          max_ttl_seconds: 600,
          disabled: false,
          disabled_at: null,
        })
        expect(
          (await t.call('GET', `/api/v1/service-accounts/${sa.id}`, { admin: true })).body,
        ).toEqual(sa)
        const dup = await t.call('POST', '/api/v1/service-accounts', {
          admin: true,
          body: { name: 'crud' },
        })
        expect(dup).toMatchObject({ status: 409, body: { code: 'conflict' } })

        const p = await t.call('PATCH', `/api/v1/service-accounts/${sa.id}`, {
          admin: true,
          body: { scopes: ['read', 'write'], max_ttl_seconds: null },
        })
        expect(p.body).toMatchObject({ scopes: ['read', 'write'], max_ttl_seconds: null })
        const bad = await t.call('PATCH', `/api/v1/service-accounts/${sa.id}`, {
          admin: true,
          body: { max_ttl_seconds: 10 },
        })
        expect(bad).toMatchObject({
          status: 400,
          body: { error: 'max_ttl_seconds: must be at least 600 seconds' },
        })

        const del = await t.call('DELETE', `/api/v1/service-accounts/${sa.id}`, { admin: true })
        expect(del.status).toBe(204)
        expect(
          (await t.call('GET', `/api/v1/service-accounts/${sa.id}`, { admin: true })).status,
        ).toBe(404)
        expect(
          (await t.call('DELETE', `/api/v1/service-accounts/${sa.id}`, { admin: true })).status,
        ).toBe(404)
      })

      it('paginates with a cursor', async () => {
        for (const i of [1, 2, 3]) await createSa({ name: `page-${i}` })
        const seen: string[] = []
        let cursor: string | null = null
        do {
          const q: string = cursor ? `&cursor=${cursor}` : ''
          const r = await t.call('GET', `/api/v1/service-accounts?limit=2${q}`, { admin: true })
          expect(r.body.items.length).toBeLessThanOrEqual(2)
          seen.push(...(r.body.items as { name: string }[]).map((i) => i.name))
          cursor = r.body.next_cursor
        } while (cursor)
        expect(seen).toEqual(expect.arrayContaining(['page-1', 'page-2', 'page-3']))
        expect(new Set(seen).size).toBe(seen.length)
        const bad = await t.call('GET', '/api/v1/service-accounts?limit=501', { admin: true })
        expect(bad).toMatchObject({
          status: 400,
          body: { code: 'invalid_request', error: expect.stringMatching(/^limit: /) },
        })
      })
    })

    describe('static tokens', () => {
      it("pages one account's tokens with a cursor and never shows another account's", async () => {
        const sa = await createSa({ name: 'tokens-paged' })
        const other = await createSa({ name: 'tokens-other' })
        await createToken(other.id)
        const ids: string[] = []
        for (let i = 0; i < 3; i++) ids.push((await createToken(sa.id)).id)
        const seen: string[] = []
        let cursor: string | null = null
        let pages = 0
        do {
          const q: string = cursor ? `&cursor=${cursor}` : ''
          const r = await t.call('GET', `/api/v1/service-accounts/${sa.id}/tokens?limit=2${q}`, {
            admin: true,
          })
          expect(r.status).toBe(200)
          seen.push(...(r.body.items as { id: string }[]).map((i) => i.id))
          cursor = r.body.next_cursor
          pages++
        } while (cursor)
        expect(pages).toBe(2)
        // The test clock may stamp them all alike; then (created_at, id) orders by id.
        expect(seen).toHaveLength(3)
        expect([...seen].sort()).toEqual([...ids].sort())
      })

      it('creates (shown once), lists with expires_at, authenticates, revokes', async () => {
        const sa = await createSa({ name: 'tok', scopes: ['read', 'write'] })
        const created = await createToken(sa.id, { expires_in: '30d', scopes: ['write'] })
        expect(created.token).toMatch(/^hmsa_[A-Za-z0-9_-]{43,}$/)
        expect(Date.parse(created.expires_at!) - clock.now()).toBe(30 * 86_400_000)
        const list = await t.call('GET', `/api/v1/service-accounts/${sa.id}/tokens`, {
          admin: true,
        })
        expect(list.body.items).toEqual([
          expect.objectContaining({
            id: created.id,
            expires_at: created.expires_at,
            scopes: ['write'],
          }),
        ])
        expect(JSON.stringify(list.body)).not.toContain(created.token)
        const { rows } = await t.server.deps.db.query<Record<string, unknown>>(
          'SELECT * FROM service_account_tokens WHERE id = $1',
          [created.id],
        )
        expect(JSON.stringify(rows)).not.toContain(created.token.slice(5))

        const me = await t.call('GET', '/api/v1/me', { bearer: created.token })
        expect(me).toMatchObject({
          status: 200,
          body: {
            kind: 'service_account',
            id: sa.id,
            name: 'tok',
            scopes: ['write'],
            credential: 'static_token',
          },
        })

        expect(
          (
            await t.call('DELETE', `/api/v1/service-accounts/${sa.id}/tokens/${created.id}`, {
              admin: true,
            })
          ).status,
        ).toBe(204)
        const after = await t.call('GET', '/api/v1/me', { bearer: created.token })
        expect(after).toMatchObject({
          status: 401,
          body: { code: 'invalid_token', error: 'service-account token has been revoked' },
        })
      })

      it.each([
        ['30d', 30 * 86_400_000],
        ['90d', 90 * 86_400_000],
      ])('expires_in %s', async (expires_in, ms) => {
        const sa = await createSa({ name: `exp-${expires_in}` })
        const c = await createToken(sa.id, { expires_in })
        expect(Date.parse(c.expires_at!) - clock.now()).toBe(ms)
      })

      it('defaults to 90d, supports never, and rejects expired tokens', async () => {
        const sa = await createSa({ name: 'expiry' })
        const def = await createToken(sa.id)
        expect(Date.parse(def.expires_at!) - clock.now()).toBe(90 * 86_400_000)
        const never = await createToken(sa.id, { expires_in: 'never' })
        expect(never.expires_at).toBeNull()
        const short = await createToken(sa.id, { expires_in: '30d' })
        clock.advance(30 * 86_400 + 1)
        expect(await t.call('GET', '/api/v1/me', { bearer: short.token })).toMatchObject({
          status: 401,
          body: { error: 'service-account token has expired' },
        })
        expect((await t.call('GET', '/api/v1/me', { bearer: never.token })).status).toBe(200)
        const bad = await t.call('POST', `/api/v1/service-accounts/${sa.id}/tokens`, {
          admin: true,
          body: { expires_in: '2y' },
        })
        expect(bad).toMatchObject({
          status: 400,
          body: { error: expect.stringMatching(/^expires_in: /) },
        })
      })

      it('refuses scopes the account lacks and unknown tokens', async () => {
        const sa = await createSa({ name: 'narrow', scopes: ['read'] })
        const r = await t.call('POST', `/api/v1/service-accounts/${sa.id}/tokens`, {
          admin: true,
          body: { scopes: ['write'] },
        })
        expect(r).toMatchObject({
          status: 400,
          body: { error: `scopes: write is not granted to service account ${sa.id}` },
        })
        const unknown = await t.call('GET', '/api/v1/me', { bearer: `hmsa_${'A'.repeat(43)}` })
        expect(unknown).toMatchObject({
          status: 401,
          body: { error: 'unknown service-account token' },
        })
      })
    })

    describe('disabling a service account', () => {
      it('invalidates its static tokens and minted JWTs at once, and re-enabling restores them', async () => {
        const sa = await createSa({ name: 'to-disable', scopes: ['read', 'write'] })
        const { token } = await createToken(sa.id)
        const jwt = (await t.server.deps.keys.sign({ sub: sa.id, scope: 'read write' }, 3600)).token
        expect((await t.call('GET', '/api/v1/me', { bearer: token })).status).toBe(200)
        expect((await t.call('GET', '/api/v1/me', { bearer: jwt })).status).toBe(200)

        const p = await t.call('PATCH', `/api/v1/service-accounts/${sa.id}`, {
          admin: true,
          body: { disabled: true },
        })
        expect(p.body).toMatchObject({ disabled: true, disabled_at: expect.any(String) })
        for (const bearer of [token, jwt]) {
          expect(await t.call('GET', '/api/v1/me', { bearer })).toMatchObject({
            status: 401,
            body: { code: 'invalid_token', error: 'service account is disabled' },
          })
        }
        await t.call('PATCH', `/api/v1/service-accounts/${sa.id}`, {
          admin: true,
          body: { disabled: false },
        })
        expect((await t.call('GET', '/api/v1/me', { bearer: jwt })).status).toBe(200)
      })

      it('is seen by another replica within 30 s', async () => {
        const sa = await createSa({ name: 'replica', scopes: ['read'] })
        const jwt = (await t.server.deps.keys.sign({ sub: sa.id, scope: 'read' }, 3600)).token
        expect((await t.call('GET', '/api/v1/me', { bearer: jwt })).status).toBe(200)
        // Another replica disables it: straight in the database, no local invalidation.
        await t.server.deps.db.query('UPDATE service_accounts SET disabled = true WHERE id = $1', [
          sa.id,
        ])
        clock.advance(SA_STATUS_TTL_MS / 1000)
        expect((await t.call('GET', '/api/v1/me', { bearer: jwt })).status).toBe(401)
      })
    })

    describe('scopes', () => {
      it('answers 403 naming the missing scope', async () => {
        const sa = await createSa({ name: 'reader', scopes: ['read'] })
        const { token } = await createToken(sa.id)
        const probe = (path: string) => t.call('POST', path, { bearer: token })
        const res = await probe('/probe/write')
        expect(res).toMatchObject({
          status: 403,
          body: { error: 'this credential lacks the write scope', code: 'insufficient_scope' },
        })
        expect(res.headers.get('www-authenticate')).toBe(
          'Bearer error="insufficient_scope", scope="write"',
        )
        expect((await probe('/probe/read')).status).toBe(200)
        const jwt = (await t.server.deps.keys.sign({ sub: sa.id, scope: 'read write' }, 600)).token
        // The JWT asks for write, but the account only has read: still 403.
        expect((await t.call('POST', '/probe/write', { bearer: jwt })).status).toBe(403)
        expect((await t.call('POST', '/probe/write', { admin: true })).status).toBe(200)
        expect((await t.call('POST', '/probe/write')).status).toBe(401)
      })
    })

    describe('/api/v1/me and audit', () => {
      it('describes the admin', async () => {
        const me = await t.call('GET', '/api/v1/me', { admin: true })
        expect(me.body).toEqual({
          kind: 'user',
          id: 'admin',
          name: 'admin',
          role: 'Admin',
          scopes: ['read', 'write'],
          credential: 'admin_api_key',
        })
      })

      it('records admin actions, newest first, filtered and paginated', async () => {
        const sa = await createSa({ name: 'audited' })
        await createToken(sa.id)
        const all = await t.call('GET', '/api/v1/audit?limit=500', { admin: true })
        expect(all.status).toBe(200)
        expect(all.body.items[0]).toMatchObject({
          action: 'service_account_token.create',
          actor_kind: 'admin',
          actor_id: 'admin',
          result: 'success',
        })
        const filtered = await t.call(
          'GET',
          `/api/v1/audit?action=service_account.create&actor=admin`,
          { admin: true },
        )
        expect(
          (filtered.body.items as { action: string }[]).every(
            (i) => i.action === 'service_account.create',
          ),
        ).toBe(true)
        expect((filtered.body.items as { target: string }[]).some((i) => i.target === sa.id)).toBe(
          true,
        )
        const prefix = await t.call('GET', '/api/v1/audit?action=service_account_token.*', {
          admin: true,
        })
        expect(prefix.body.items.length).toBeGreaterThan(0)
        const p1 = await t.call('GET', '/api/v1/audit?limit=1', { admin: true })
        const p2 = await t.call('GET', `/api/v1/audit?limit=1&cursor=${p1.body.next_cursor}`, {
          admin: true,
        })
        expect(Number(p2.body.items[0].id)).toBeLessThan(Number(p1.body.items[0].id))
        expect(JSON.stringify(all.body)).not.toMatch(/hmsa_/)
        expect((await t.call('GET', '/api/v1/audit?cursor=@@', { admin: true })).status).toBe(400)
      })
    })
  })
})
