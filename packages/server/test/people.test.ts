import { createHash } from 'node:crypto'
import Router from '@koa/router'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { requireScope } from '../src/auth/require.js'
import { loadConfig } from '../src/config.js'
import { verifyPassword } from '../src/users/password.js'
import type * as PasswordModule from '../src/users/password.js'
import { ADMIN_KEY, manualClock, startTestServer, type TestServer } from './helpers.js'
import {
  PASSWORD,
  capturingLogger,
  cookieValue,
  rawRequest,
  type RawResponse,
} from './people-helpers.js'

// The real verifier, observed: the login route must hash for unknown users too.
vi.mock('../src/users/password.js', async (importOriginal) => {
  const real = await importOriginal<typeof PasswordModule>()
  return { ...real, verifyPassword: vi.fn(real.verifyPassword) }
})

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex')

function probeRouter(): Router {
  const r = new Router()
  r.post('/probe/write', requireScope('write'), (ctx) => {
    ctx.body = { ok: true }
  })
  r.get('/probe/read', requireScope('read'), (ctx) => {
    ctx.body = { ok: true }
  })
  r.get('/probe/page', (ctx) => {
    ctx.type = 'text/html'
    ctx.body = '<!doctype html><title>x</title>'
  })
  return r
}

interface Login {
  r: RawResponse
  cookie: string
  csrf: string
  session: string
}

async function login(t: TestServer, email: string, password = PASSWORD, localAddress?: string) {
  const r = await rawRequest(t.url, {
    method: 'POST',
    path: '/auth/login',
    body: { email, password },
    ...(localAddress ? { localAddress } : {}),
  })
  const session = cookieValue(r.cookies, 'hm_session') ?? ''
  const csrf = cookieValue(r.cookies, 'hm_csrf') ?? ''
  return { r, cookie: `hm_session=${session}; hm_csrf=${csrf}`, csrf, session }
}

/** A request authenticated by a session cookie, with the CSRF header for writes. */
function asSession(t: TestServer, s: Login, method: string, path: string, body?: unknown) {
  return rawRequest(t.url, {
    method,
    path,
    headers: { cookie: s.cookie, 'x-csrf-token': s.csrf },
    ...(body === undefined ? {} : { body }),
  })
}

describe('local accounts over HTTP (PGlite)', () => {
  let t: TestServer
  const clock = manualClock(Date.parse('2026-03-01T00:00:00Z'))
  const log = capturingLogger()
  let admin: Login
  // Attempted passwords are secrets too: a typo is usually close to the real one.
  const secrets: string[] = [PASSWORD, ADMIN_KEY, 'wrong password!!']

  beforeAll(async () => {
    t = await startTestServer({
      overrides: { clock, logger: log.logger },
      routers: [probeRouter()],
    })
  })
  afterAll(() => t.close())

  describe('registration', () => {
    it('refuses a password shorter than 12 characters, naming the rule', async () => {
      const r = await t.call('POST', '/auth/register', {
        body: { username: 'ada', email: 'ada@example.com', password: 'short-11chr' },
      })
      expect(r.status).toBe(400)
      expect(r.body).toMatchObject({
        code: 'invalid_request',
        error: 'password: must be at least 12 characters',
      })
    })

    it('makes the first user Admin, then answers 409', async () => {
      const first = await t.call('POST', '/auth/register', {
        body: { username: 'ada', email: 'ada@example.com', password: PASSWORD },
      })
      expect(first.status).toBe(201)
      expect(first.body).toEqual({
        id: expect.stringMatching(/^usr_/),
        username: 'ada',
        email: 'ada@example.com',
        role: 'Admin',
      })
      const second = await t.call('POST', '/auth/register', {
        body: { username: 'eve', email: 'eve@example.com', password: PASSWORD },
      })
      expect(second).toMatchObject({ status: 409, body: { code: 'already_registered' } })
    })
  })

  describe('login, sessions, CSRF', () => {
    it('answers one generic 401 for a wrong password and an unknown email', async () => {
      const wrong = await login(t, 'ada@example.com', 'wrong password!!')
      const unknown = await login(t, 'nobody@example.com', 'wrong password!!')
      expect(wrong.r.status).toBe(401)
      expect(unknown.r.status).toBe(401)
      expect(wrong.r.text).toBe(unknown.r.text)
      expect(wrong.r.body).toEqual({
        error: 'invalid email or password',
        code: 'invalid_credentials',
      })
      expect(wrong.r.cookies).toEqual([])
    })

    it('does the Argon2 verification for an unknown email too (same path as a wrong password)', async () => {
      const verify = vi.mocked(verifyPassword)
      verify.mockClear()
      expect((await login(t, 'nobody@example.com', 'wrong password!!')).r.status).toBe(401)
      expect(verify).toHaveBeenCalledTimes(1)
      expect(verify).toHaveBeenCalledWith(null, 'wrong password!!')
      verify.mockClear()
      expect((await login(t, 'ada@example.com', 'wrong password!!')).r.status).toBe(401)
      expect(verify).toHaveBeenCalledTimes(1)
    })

    it('sets hm_session=hms-… (HttpOnly, SameSite=Lax, 7 days) and stores only its hash', async () => {
      admin = await login(t, 'ADA@example.com')
      expect(admin.r.status).toBe(200)
      secrets.push(admin.session, admin.csrf)
      const line = admin.r.cookies.find((c) => c.startsWith('hm_session='))!
      expect(line).toMatch(
        /^hm_session=hms-[A-Za-z0-9_-]{43}; Path=\/; Max-Age=604800; HttpOnly; SameSite=Lax$/,
      )
      expect(line).not.toMatch(/Secure/)
      const csrfLine = admin.r.cookies.find((c) => c.startsWith('hm_csrf='))!
      expect(csrfLine).not.toMatch(/HttpOnly/)
      const { rows } = await t.server.deps.db.query<{ token_hash: string }>(
        'SELECT token_hash FROM user_sessions',
      )
      expect(rows.map((r) => r.token_hash)).toEqual([sha256(admin.session)])
      const meR = await asSession(t, admin, 'GET', '/api/v1/me')
      expect(meR.body).toMatchObject({
        kind: 'user',
        name: 'ada',
        role: 'Admin',
        credential: 'session',
      })
    })

    it('refuses cookie-authenticated writes without a matching X-CSRF-Token', async () => {
      const path = '/api/v1/me/api-key/rotate'
      const none = await rawRequest(t.url, {
        method: 'POST',
        path,
        headers: { cookie: admin.cookie },
      })
      expect(none).toMatchObject({ status: 403, body: { code: 'csrf_failed' } })
      const wrong = await rawRequest(t.url, {
        method: 'POST',
        path,
        headers: { cookie: admin.cookie, 'x-csrf-token': 'x'.repeat(43) },
      })
      expect(wrong.status).toBe(403)
      // A planted hm_csrf cookie equal to the header still fails: it is not this session's.
      const planted = await rawRequest(t.url, {
        method: 'POST',
        path,
        headers: {
          cookie: `hm_session=${admin.session}; hm_csrf=${'y'.repeat(43)}`,
          'x-csrf-token': 'y'.repeat(43),
        },
      })
      expect(planted.status).toBe(403)
      const ok = await asSession(t, admin, 'POST', path)
      expect(ok.status).toBe(201)
      secrets.push(ok.body.api_key as string)
    })

    it('exempts API keys and bearers from CSRF', async () => {
      const r = await t.call('POST', '/api/v1/users', {
        admin: true,
        body: { username: 'zed', email: 'zed@example.com', password: PASSWORD },
      })
      expect(r.status).toBe(201)
    })

    it('tries the session before API keys, and stops once it has a user', async () => {
      const both = await rawRequest(t.url, {
        path: '/api/v1/me',
        headers: { cookie: admin.cookie, 'x-api-key': ADMIN_KEY },
      })
      expect(both.body).toMatchObject({ kind: 'user', name: 'ada', credential: 'session' })
      const junk = await rawRequest(t.url, {
        path: '/api/v1/me',
        headers: { cookie: admin.cookie, 'x-api-key': 'junk' },
      })
      expect(junk).toMatchObject({ status: 200, body: { name: 'ada', credential: 'session' } })
    })

    it('expires sessions after 7 days (injected clock)', async () => {
      const s = await login(t, 'ada@example.com')
      clock.advance(7 * 86_400 - 10)
      expect((await asSession(t, s, 'GET', '/api/v1/me')).status).toBe(200)
      clock.advance(11)
      const r = await asSession(t, s, 'GET', '/api/v1/me')
      expect(r).toMatchObject({ status: 401, body: { code: 'invalid_session' } })
      admin = await login(t, 'ada@example.com')
    })

    it('revokes the session on logout', async () => {
      const s = await login(t, 'ada@example.com')
      const out = await asSession(t, s, 'POST', '/auth/logout')
      expect(out.status).toBe(204)
      expect(out.cookies.some((c) => c.startsWith('hm_session=;'))).toBe(true)
      expect((await asSession(t, s, 'GET', '/api/v1/me')).status).toBe(401)
      expect((await asSession(t, admin, 'GET', '/api/v1/me')).status).toBe(200)
    })
  })

  describe('API keys', () => {
    it('answers the quoted bodies byte for byte', async () => {
      const missing = await rawRequest(t.url, { path: '/api/v1/me' })
      expect(missing.status).toBe(401)
      expect(missing.text).toBe('{"error":"missing X-API-Key header","code":"missing_credentials"}')
      const invalid = await rawRequest(t.url, {
        path: '/api/v1/me',
        headers: { 'X-API-Key': `hm-${'a'.repeat(64)}` },
      })
      expect(invalid.status).toBe(401)
      expect(invalid.text).toBe('{"error":"invalid or inactive API key","code":"invalid_api_key"}')
    })

    it('rotates: the new hm- key works once shown, the old one is inactive', async () => {
      const a = await asSession(t, admin, 'POST', '/api/v1/me/api-key/rotate')
      const b = await asSession(t, admin, 'POST', '/api/v1/me/api-key/rotate')
      expect(a.body.api_key).toMatch(/^hm-[A-Za-z0-9]{64}$/)
      secrets.push(a.body.api_key as string, b.body.api_key as string)
      const old = await t.call('GET', '/api/v1/me', { headers: { 'x-api-key': a.body.api_key } })
      expect(old.body).toEqual({ error: 'invalid or inactive API key', code: 'invalid_api_key' })
      const cur = await t.call('GET', '/api/v1/me', { headers: { 'x-api-key': b.body.api_key } })
      expect(cur.body).toMatchObject({
        kind: 'user',
        name: 'ada',
        role: 'Admin',
        credential: 'api_key',
      })
    })

    it('keeps ADMIN_API_KEY working as X-API-Key and bearer', async () => {
      expect((await t.call('GET', '/api/v1/users', { admin: true })).status).toBe(200)
      expect((await t.call('GET', '/api/v1/users', { bearer: ADMIN_KEY })).status).toBe(200)
    })
  })

  describe('user management and roles', () => {
    const users: Record<'bob' | 'carol', { id: string; key: string; session: Login }> = {} as never

    beforeAll(async () => {
      // Both start as User (so each holds an API key); carol is then demoted to ReadOnly.
      for (const [name, role] of [
        ['bob', 'User'],
        ['carol', 'User'],
      ] as const) {
        const c = await asSession(t, admin, 'POST', '/api/v1/users', {
          username: name,
          email: `${name}@example.com`,
          password: PASSWORD,
          role,
        })
        if (c.status !== 201) throw new Error(`create ${name}: ${c.text}`)
        const session = await login(t, `${name}@example.com`)
        const key = await asSession(t, session, 'POST', '/api/v1/me/api-key/rotate')
        if (key.status !== 201) throw new Error(`rotate ${name}: ${key.text}`)
        users[name] = { id: c.body.id as string, key: key.body.api_key as string, session }
        secrets.push(users[name].key, session.session)
      }
      const demote = await asSession(t, admin, 'PATCH', `/api/v1/users/${users.carol.id}`, {
        role: 'ReadOnly',
      })
      if (demote.status !== 200) throw new Error(`demote: ${demote.text}`)
    })

    const adminRoutes: [string, string, unknown?][] = [
      ['GET', '/api/v1/users'],
      ['POST', '/api/v1/users', { username: 'x1', email: 'x1@example.com', password: PASSWORD }],
      ['GET', '/api/v1/users/usr_x'],
      ['PATCH', '/api/v1/users/usr_x', { role: 'Admin' }],
      ['GET', '/api/v1/org/policy'],
      ['PUT', '/api/v1/org/policy', { pats: 'disabled' }],
      ['GET', '/api/v1/audit'],
      ['GET', '/api/v1/service-accounts'],
      ['POST', '/api/v1/service-accounts', { name: 'x', scopes: ['write'] }],
      ['GET', '/api/v1/service-accounts/sa_x'],
      ['PATCH', '/api/v1/service-accounts/sa_x', { disabled: true }],
      ['DELETE', '/api/v1/service-accounts/sa_x'],
      ['GET', '/api/v1/service-accounts/sa_x/tokens'],
      ['POST', '/api/v1/service-accounts/sa_x/tokens', {}],
      ['DELETE', '/api/v1/service-accounts/sa_x/tokens/sat_x'],
      ['GET', '/api/v1/service-accounts/sa_x/identity-providers'],
      [
        'POST',
        '/api/v1/service-accounts/sa_x/identity-providers',
        { issuer: 'https://x', selector: 'x' },
      ],
      ['GET', '/api/v1/service-accounts/sa_x/identity-providers/idp_x'],
      ['PATCH', '/api/v1/service-accounts/sa_x/identity-providers/idp_x', {}],
      ['DELETE', '/api/v1/service-accounts/sa_x/identity-providers/idp_x'],
      ['POST', '/api/v1/exchange/explain', { subject_token: 'x' }],
    ]

    it.each(
      adminRoutes.flatMap(([m, p, b]) =>
        (['bob', 'carol'] as const).flatMap((u) =>
          (['API key', 'session'] as const).map((via) => [u, via, m, p, b] as const),
        ),
      ),
    )('%s (%s) is refused on %s %s with 403', async (who, via, method, path, body) => {
      const r =
        via === 'session'
          ? await asSession(t, users[who].session, method, path, body)
          : await t.call(method, path, {
              headers: { 'x-api-key': users[who].key },
              ...(body === undefined ? {} : { body }),
            })
      expect(r.status).toBe(403)
      expect(r.body.code).toBe('forbidden')
    })

    it('lets an Admin user through the same routes', async () => {
      for (const [method, path, body] of adminRoutes) {
        if (path.includes('org/policy') && method === 'PUT') continue
        const r = await asSession(t, admin, method, path, body)
        expect([200, 201, 204, 400, 404, 409]).toContain(r.status)
      }
    })

    it('ReadOnly can read but not write, and cannot mint keys or PATs', async () => {
      const carol = users.carol.session
      expect((await asSession(t, carol, 'GET', '/probe/read')).status).toBe(200)
      expect((await asSession(t, carol, 'POST', '/probe/write')).status).toBe(403)
      expect(
        (await asSession(t, carol, 'POST', '/api/v1/tokens', { scopes: ['read'] })).status,
      ).toBe(403)
      expect((await asSession(t, carol, 'POST', '/api/v1/me/api-key/rotate')).status).toBe(403)
      const key = await t.call('POST', '/probe/write', {
        headers: { 'x-api-key': users.carol.key },
      })
      expect(key.status).toBe(403)
      expect(
        (await t.call('GET', '/probe/read', { headers: { 'x-api-key': users.carol.key } })).status,
      ).toBe(200)
      const bob = users.bob.session
      expect((await asSession(t, bob, 'POST', '/probe/write')).status).toBe(200)
    })

    it('changes a role and audits it', async () => {
      const r = await asSession(t, admin, 'PATCH', `/api/v1/users/${users.bob.id}`, {
        role: 'ReadOnly',
      })
      expect(r.body).toMatchObject({ role: 'ReadOnly' })
      const k = await t.call('POST', '/probe/write', { headers: { 'x-api-key': users.bob.key } })
      expect(k.status).toBe(403)
      await asSession(t, admin, 'PATCH', `/api/v1/users/${users.bob.id}`, { role: 'User' })
      const audit = await t.call('GET', '/api/v1/audit?action=user.role_change', { admin: true })
      expect(audit.body.items[0]).toMatchObject({
        actor_kind: 'user',
        target: users.bob.id,
        details: { from: 'ReadOnly', to: 'User' },
      })
    })

    it('lets users change their own password (old one stops working)', async () => {
      const bob = users.bob.session
      const bad = await asSession(t, bob, 'POST', '/api/v1/me/password', {
        current_password: 'not the password',
        new_password: 'another long password',
      })
      expect(bad.status).toBe(403)
      const short = await asSession(t, bob, 'POST', '/api/v1/me/password', {
        current_password: PASSWORD,
        new_password: 'short',
      })
      expect(short.body.error).toBe('new_password: must be at least 12 characters')
      const ok = await asSession(t, bob, 'POST', '/api/v1/me/password', {
        current_password: PASSWORD,
        new_password: 'another long password',
      })
      expect(ok.status).toBe(204)
      secrets.push('another long password')
      expect((await login(t, 'bob@example.com')).r.status).toBe(401)
      const again = await login(t, 'bob@example.com', 'another long password')
      expect(again.r.status).toBe(200)
      users.bob.session = again
    })

    it('PATs act as their user, with expiry, list and revoke', async () => {
      const bob = users.bob.session
      const created = await asSession(t, bob, 'POST', '/api/v1/tokens', {
        name: 'laptop',
        expires_in: '30d',
        scopes: ['read'],
      })
      expect(created.status).toBe(201)
      const pat = created.body.token as string
      secrets.push(pat)
      expect(pat).toMatch(/^hmpat_[A-Za-z0-9_-]{43}$/)
      expect(Date.parse(created.body.expires_at as string) - clock.now()).toBe(30 * 86_400_000)
      const meR = await t.call('GET', '/api/v1/me', { bearer: pat })
      expect(meR.body).toMatchObject({
        kind: 'user',
        id: users.bob.id,
        credential: 'pat',
        scopes: ['read'],
      })
      expect((await t.call('POST', '/probe/write', { bearer: pat })).status).toBe(403)
      const list = await asSession(t, bob, 'GET', '/api/v1/tokens')
      expect(list.body.items).toContainEqual(
        expect.objectContaining({ id: created.body.id, name: 'laptop' }),
      )
      expect(JSON.stringify(list.body)).not.toContain(pat)
      clock.advance(30 * 86_400 + 1)
      expect((await t.call('GET', '/api/v1/me', { bearer: pat })).body.error).toMatch(/expired/)
      clock.advance(-(30 * 86_400 + 1))
      const del = await asSession(t, bob, 'DELETE', `/api/v1/tokens/${created.body.id}`)
      expect(del.status).toBe(204)
      expect((await t.call('GET', '/api/v1/me', { bearer: pat })).status).toBe(401)
    })

    it('a write PAT of a user demoted to ReadOnly can only read', async () => {
      const bob = users.bob.session
      const pat = (await asSession(t, bob, 'POST', '/api/v1/tokens', { scopes: ['write', 'read'] }))
        .body.token as string
      secrets.push(pat)
      expect((await t.call('POST', '/probe/write', { bearer: pat })).status).toBe(200)
      await asSession(t, admin, 'PATCH', `/api/v1/users/${users.bob.id}`, { role: 'ReadOnly' })
      expect((await t.call('POST', '/probe/write', { bearer: pat })).status).toBe(403)
      expect((await t.call('GET', '/probe/read', { bearer: pat })).status).toBe(200)
      await asSession(t, admin, 'PATCH', `/api/v1/users/${users.bob.id}`, { role: 'User' })
    })

    it('an Admin read-only PAT can read admin routes but not change them', async () => {
      const pat = (await asSession(t, admin, 'POST', '/api/v1/tokens', { scopes: ['read'] })).body
        .token as string
      secrets.push(pat)
      expect((await t.call('GET', '/api/v1/users', { bearer: pat })).status).toBe(200)
      const w = await t.call('PUT', '/api/v1/org/policy', {
        bearer: pat,
        body: { pats: 'disabled' },
      })
      expect(w.status).toBe(403)
    })

    it('enforces the org PAT policy at mint and at use, naming the policy', async () => {
      const bob = users.bob.session
      const readPat = (await asSession(t, bob, 'POST', '/api/v1/tokens', { scopes: ['read'] })).body
        .token as string
      const writePat = (await asSession(t, bob, 'POST', '/api/v1/tokens', { scopes: ['write'] }))
        .body.token as string
      secrets.push(readPat, writePat)
      const bobPut = await asSession(t, bob, 'PUT', '/api/v1/org/policy', { pats: 'enabled' })
      expect(bobPut.status).toBe(403)

      expect(
        (await asSession(t, admin, 'PUT', '/api/v1/org/policy', { pats: 'write-only' })).body,
      ).toEqual({
        pats: 'write-only',
      })
      const readUse = await t.call('GET', '/api/v1/me', { bearer: readPat })
      expect(readUse).toMatchObject({ status: 403, body: { code: 'pat_policy' } })
      expect(readUse.body.error).toContain('pats: write-only')
      expect((await t.call('POST', '/probe/write', { bearer: writePat })).status).toBe(200)
      const mintRead = await asSession(t, bob, 'POST', '/api/v1/tokens', {
        scopes: ['read', 'write'],
      })
      expect(mintRead.body.error).toContain('pats: write-only')

      await asSession(t, admin, 'PUT', '/api/v1/org/policy', { pats: 'disabled' })
      const writeUse = await t.call('POST', '/probe/write', { bearer: writePat })
      expect(writeUse.status).toBe(403)
      expect(writeUse.body.error).toContain('pats: disabled')
      const mint = await asSession(t, bob, 'POST', '/api/v1/tokens', { scopes: ['write'] })
      expect(mint.body).toMatchObject({ code: 'pat_policy' })
      expect(mint.body.error).toContain('pats: disabled')

      await asSession(t, admin, 'PUT', '/api/v1/org/policy', { pats: 'enabled' })
      expect((await t.call('GET', '/api/v1/me', { bearer: readPat })).status).toBe(200)
    })

    it('disabling a user ends their sessions, API keys and PATs at once', async () => {
      const bob = users.bob.session
      const pat = (await asSession(t, bob, 'POST', '/api/v1/tokens', {})).body.token as string
      secrets.push(pat)
      const key = (await asSession(t, bob, 'POST', '/api/v1/me/api-key/rotate')).body
        .api_key as string
      secrets.push(key)
      const off = await asSession(t, admin, 'PATCH', `/api/v1/users/${users.bob.id}`, {
        disabled: true,
      })
      expect(off.body).toMatchObject({ disabled: true })
      expect((await asSession(t, bob, 'GET', '/api/v1/me')).status).toBe(401)
      expect((await t.call('GET', '/api/v1/me', { headers: { 'x-api-key': key } })).status).toBe(
        401,
      )
      expect((await t.call('GET', '/api/v1/me', { bearer: pat })).status).toBe(401)
      expect((await login(t, 'bob@example.com', 'another long password')).r.status).toBe(401)
      // Re-enabling does not bring the old credentials back.
      await asSession(t, admin, 'PATCH', `/api/v1/users/${users.bob.id}`, { disabled: false })
      expect((await t.call('GET', '/api/v1/me', { bearer: pat })).status).toBe(401)
    })

    it('resets a password as admin and signs the user out', async () => {
      const s = await login(t, 'carol@example.com')
      const r = await asSession(t, admin, 'PATCH', `/api/v1/users/${users.carol.id}`, {
        password: 'reset by the admin!',
      })
      expect(r.status).toBe(200)
      secrets.push('reset by the admin!')
      expect((await asSession(t, s, 'GET', '/api/v1/me')).status).toBe(401)
      expect((await login(t, 'carol@example.com', 'reset by the admin!')).r.status).toBe(200)
    })
  })

  describe('audit and logs', () => {
    it('records logins, failures, registrations, rotations and PAT changes', async () => {
      const r = await t.call('GET', '/api/v1/audit?limit=500', { admin: true })
      const actions = new Set(
        (r.body.items as { action: string; result: string }[]).map(
          (i) => `${i.action}:${i.result}`,
        ),
      )
      for (const a of [
        'auth.register:success',
        'auth.register:failure',
        'auth.login:success',
        'auth.login:failure',
        'auth.logout:success',
        'user.create:success',
        'user.role_change:success',
        'user.disable:success',
        'user.password_change:success',
        'user.password_reset:success',
        'api_key.rotate:success',
        'pat.create:success',
        'pat.revoke:success',
        'org_policy.update:success',
      ])
        expect(actions).toContain(a)
      const login = (r.body.items as { action: string; address: string; at: string }[]).find(
        (i) => i.action === 'auth.login',
      )
      expect(login?.address).toBe('127.0.0.1')
      expect(Date.parse(login?.at ?? '')).not.toBeNaN()
      const text = JSON.stringify(r.body)
      for (const s of secrets) expect(text).not.toContain(s)
    })

    it('never logs a secret', () => {
      const text = log.text()
      expect(text.length).toBeGreaterThan(0)
      for (const s of secrets) expect(text).not.toContain(s)
    })
  })

  describe('security headers', () => {
    it.each([
      ['/api/v1/health', "default-src 'none'; frame-ancestors 'none'"],
      ['/probe/page', "default-src 'self'"],
    ])('%s', async (path, csp) => {
      const r = await rawRequest(t.url, { path })
      expect(r.headers['content-security-policy']).toContain(csp)
      expect(r.headers).toMatchObject({
        'x-content-type-options': 'nosniff',
        'x-frame-options': 'DENY',
        'referrer-policy': 'no-referrer',
      })
      expect(r.headers['strict-transport-security']).toBeUndefined()
    })
  })
})

describe('register race', () => {
  it('gives exactly one Admin among concurrent first registrations', async () => {
    const t = await startTestServer()
    try {
      const results = await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          t.call('POST', '/auth/register', {
            body: { username: `u${i}`, email: `u${i}@example.com`, password: PASSWORD },
          }),
        ),
      )
      expect(results.filter((r) => r.status === 201)).toHaveLength(1)
      expect(results.filter((r) => r.status === 409)).toHaveLength(5)
      const users = await t.call('GET', '/api/v1/users', { admin: true })
      expect(users.body.items).toHaveLength(1)
      expect(users.body.items[0]).toMatchObject({ role: 'Admin' })
    } finally {
      await t.close()
    }
  })
})

describe('https public URL', () => {
  it('marks cookies Secure and sends HSTS', async () => {
    const t = await startTestServer({
      env: { HIVEMIND_PUBLIC_URL: 'https://hivemind.example.com' },
    })
    try {
      await t.call('POST', '/auth/register', {
        body: { username: 'ada', email: 'ada@example.com', password: PASSWORD },
      })
      const s = await login(t, 'ada@example.com')
      expect(s.r.cookies.every((c) => c.endsWith('; Secure'))).toBe(true)
      expect(s.r.headers['strict-transport-security']).toMatch(/max-age=/)
    } finally {
      await t.close()
    }
  })
})

describe('rate limits of failed authentication', () => {
  it('are on by default, with generous limits', () => {
    const c = loadConfig({})
    expect(c.rateLimitAuthFailuresPerMin).toBeGreaterThanOrEqual(100)
    expect(c.rateLimitLoginFailuresPerMin).toBeGreaterThanOrEqual(10)
  })

  it('answers 429 with Retry-After per address, without locking the account out, then recovers', async () => {
    const clock = manualClock()
    const t = await startTestServer({
      env: { HIVEMIND_RATE_LIMIT_AUTH_FAILURES_PER_MIN: '3' },
      overrides: { clock },
    })
    try {
      const bad = { 'x-api-key': `hm-${'b'.repeat(64)}` }
      // X-Forwarded-For is not believed without HIVEMIND_TRUSTED_PROXIES: it cannot dodge the limit.
      for (let i = 0; i < 3; i++) {
        const r = await rawRequest(t.url, {
          path: '/api/v1/me',
          headers: { ...bad, 'x-forwarded-for': `198.51.100.${i}` },
        })
        expect(r.status).toBe(401)
      }
      const limited = await rawRequest(t.url, {
        path: '/api/v1/me',
        headers: { 'x-api-key': ADMIN_KEY },
      })
      expect(limited.status).toBe(429)
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0)
      expect(limited.body).toMatchObject({ code: 'rate_limited' })
      // Another address is unaffected: failing on someone's behalf locks out only yourself.
      const other = await rawRequest(t.url, {
        path: '/api/v1/me',
        headers: { 'x-api-key': ADMIN_KEY },
        localAddress: '127.0.0.2',
      })
      expect(other.status).toBe(200)
      clock.advance(61)
      const after = await rawRequest(t.url, {
        path: '/api/v1/me',
        headers: { 'x-api-key': ADMIN_KEY },
      })
      expect(after.status).toBe(200)
    } finally {
      await t.close()
    }
  })

  it('limits failed logins per account and address', async () => {
    const clock = manualClock()
    const t = await startTestServer({
      env: { HIVEMIND_RATE_LIMIT_LOGIN_FAILURES_PER_MIN: '2' },
      overrides: { clock },
    })
    try {
      await t.call('POST', '/auth/register', {
        body: { username: 'ada', email: 'ada@example.com', password: PASSWORD },
      })
      expect((await login(t, 'ada@example.com', 'wrong password 1')).r.status).toBe(401)
      expect((await login(t, 'ada@example.com', 'wrong password 2')).r.status).toBe(401)
      const third = await login(t, 'ada@example.com', PASSWORD)
      expect(third.r.status).toBe(429)
      expect(third.r.headers['retry-after']).toBeDefined()
      // The real owner, from their own address, still gets in.
      expect((await login(t, 'ada@example.com', PASSWORD, '127.0.0.2')).r.status).toBe(200)
      clock.advance(61)
      expect((await login(t, 'ada@example.com', PASSWORD)).r.status).toBe(200)
    } finally {
      await t.close()
    }
  })

  it('believes X-Forwarded-For only from HIVEMIND_TRUSTED_PROXIES', async () => {
    const t = await startTestServer({
      env: {
        HIVEMIND_TRUSTED_PROXIES: '127.0.0.1/32',
        HIVEMIND_RATE_LIMIT_AUTH_FAILURES_PER_MIN: '1',
      },
    })
    try {
      const bad = { 'x-api-key': `hm-${'c'.repeat(64)}` }
      const via = (xff: string, localAddress?: string) =>
        rawRequest(t.url, {
          path: '/api/v1/me',
          headers: { ...bad, 'x-forwarded-for': xff },
          ...(localAddress ? { localAddress } : {}),
        })
      expect((await via('203.0.113.7')).status).toBe(401)
      expect((await via('203.0.113.7')).status).toBe(429)
      // Another client behind the same trusted proxy is a different address.
      expect((await via('203.0.113.8')).status).toBe(401)
      // From an untrusted peer the header is ignored: the peer itself is the client.
      expect((await via('203.0.113.9', '127.0.0.2')).status).toBe(401)
      expect((await via('203.0.113.10', '127.0.0.2')).status).toBe(429)
      await t.call('POST', '/auth/register', {
        headers: { 'x-forwarded-for': '192.0.2.44, 127.0.0.1' },
        body: { username: 'ada', email: 'ada@example.com', password: PASSWORD },
      })
      const audit = await t.call('GET', '/api/v1/audit?action=auth.register', {
        headers: { 'x-api-key': ADMIN_KEY, 'x-forwarded-for': '192.0.2.45' },
      })
      expect(audit.body.items[0]).toMatchObject({ address: '192.0.2.44' })
    } finally {
      await t.close()
    }
  })
})
