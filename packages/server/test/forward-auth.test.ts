import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import Router from '@koa/router'
import { resolveRole } from '../src/auth/forward-auth.js'
import { requireScope } from '../src/auth/require.js'
import { loadConfig } from '../src/config.js'
import { ADMIN_KEY, startTestServer } from './helpers.js'
import { capturingLogger, cookieValue, rawRequest, type LogRecord } from './people-helpers.js'

const INJECTION_MSG =
  'rejecting forward-auth headers from untrusted source — possible header-injection attempt peer='
const WARN = 40
const INFO = 30

function probeRouter(): Router {
  const r = new Router()
  r.post('/probe/write', requireScope('write'), (ctx) => {
    ctx.body = { ok: true }
  })
  return r
}

async function faServer(env: Record<string, string> = {}) {
  const log = capturingLogger()
  const t = await startTestServer({
    env: {
      HIVEMIND_FORWARD_AUTH: 'true',
      HIVEMIND_FORWARD_AUTH_TRUSTED_NETS: '127.0.0.1/32',
      ...env,
    },
    overrides: { logger: log.logger },
    routers: [probeRouter()],
  })
  const port = new URL(t.url).port
  return { t, log, port }
}

const me = (url: string, headers: Record<string, string | string[]>, localAddress?: string) =>
  rawRequest(url, {
    path: '/api/v1/me',
    headers,
    ...(localAddress ? { localAddress } : {}),
  })

describe(resolveRole.name, () => {
  const config = loadConfig({}).forwardAuth
  it.each([
    [['hivemind-admin'], 'Admin'],
    [['HiveMind-Admin'], 'Admin'],
    [['hivemind-readonly', 'hivemind-user', 'hivemind-admin'], 'Admin'],
    [['hivemind-readonly', 'hivemind-user'], 'User'],
    [['hivemind-readonly'], 'ReadOnly'],
    [['HIVEMIND-READONLY'], 'ReadOnly'],
    [[' hivemind-readonly '], 'ReadOnly'],
    [['hivemind-admins', 'xhivemind-admin', 'hivemind'], 'User'],
    [[], 'User'],
  ])('%j → %s', (groups, role) => {
    expect(resolveRole(groups, config)).toBe(role)
  })
})

describe('forward-auth (HIVEMIND_FORWARD_AUTH=true, trusted 127.0.0.1/32)', () => {
  let s: Awaited<ReturnType<typeof faServer>>
  let url: string
  beforeAll(async () => {
    s = await faServer()
    url = `http://127.0.0.1:${s.port}`
  })
  afterAll(() => s.t.close())

  it('logs the startup line with the trusted nets and the user header', () => {
    const line = s.log.records.find((r) => r.msg.startsWith('forward-auth enabled'))
    expect(line).toMatchObject({
      level: INFO,
      msg: 'forward-auth enabled trusted_nets=[127.0.0.1/32] user_header=X-Authentik-Username',
    })
  })

  it('makes the user from a trusted peer and auto-provisions them', async () => {
    const r = await me(url, {
      'X-Authentik-Username': 'alice',
      'X-Authentik-Email': 'alice@example.com',
      'X-Authentik-Groups': 'staff|hivemind-user',
    })
    expect(r.status).toBe(200)
    expect(r.body).toMatchObject({
      kind: 'user',
      name: 'alice',
      role: 'User',
      credential: 'forward_auth',
      scopes: ['read', 'write'],
    })
    const users = await s.t.call('GET', '/api/v1/users', { admin: true })
    expect(users.body.items).toContainEqual(
      expect.objectContaining({
        username: 'alice',
        email: 'alice@example.com',
        source: 'forward_auth',
      }),
    )
  })

  it.each([
    ['lower-case name', 'x-authentik-username'],
    ['upper-case name', 'X-AUTHENTIK-USERNAME'],
  ])('accepts the identity header whatever its name casing (%s)', async (_n, header) => {
    const r = await me(url, { [header]: 'casey' })
    expect(r.body).toMatchObject({ name: 'casey', credential: 'forward_auth' })
  })

  it.each([
    ['identity header only', { 'X-Authentik-Username': 'admin' }],
    [
      'identity header and a spoofed X-Forwarded-For',
      { 'X-Authentik-Username': 'admin', 'X-Forwarded-For': '127.0.0.1', 'X-Real-IP': '127.0.0.1' },
    ],
    [
      'identity header and a valid admin API key',
      { 'X-Authentik-Username': 'admin', 'X-API-Key': ADMIN_KEY },
    ],
    ['groups header only', { 'X-Authentik-Groups': 'hivemind-admin' }],
  ])('refuses %s from an untrusted peer with 403 and a WARN line', async (_n, headers) => {
    const before = s.log.records.length
    const r = await me(url, headers, '127.0.0.2')
    expect(r.status).toBe(403)
    expect(r.body).toMatchObject({ code: 'untrusted_forward_auth_source' })
    const warn = s.log.records.slice(before).find((l: LogRecord) => l.msg.startsWith('rejecting'))
    expect(warn).toMatchObject({ level: WARN, msg: `${INJECTION_MSG}127.0.0.2` })
  })

  it('lets forward-auth win over an API key from a trusted peer, ignoring a junk key beside it', async () => {
    const admin = await me(url, { 'X-Authentik-Username': 'olive', 'X-API-Key': ADMIN_KEY })
    expect(admin.body).toMatchObject({ kind: 'user', name: 'olive', credential: 'forward_auth' })
    const junk = await me(url, { 'X-Authentik-Username': 'olive', 'X-API-Key': 'junk' })
    expect(junk).toMatchObject({ status: 200, body: { name: 'olive', credential: 'forward_auth' } })
  })

  it('lets an untrusted peer without identity headers use API keys, and answers 401 without any', async () => {
    expect((await me(url, { 'X-API-Key': ADMIN_KEY }, '127.0.0.2')).status).toBe(200)
    const none = await me(url, {}, '127.0.0.2')
    expect(none.status).toBe(401)
  })

  it.each([
    ['a duplicate identity header', { 'X-Authentik-Username': ['mallory', 'admin'] }],
    [
      'a duplicate groups header',
      { 'X-Authentik-Username': 'mallory', 'X-Authentik-Groups': ['x', 'hivemind-admin'] },
    ],
    ['a comma in the user name', { 'X-Authentik-Username': 'mallory, admin' }],
    ['a control character (tab)', { 'X-Authentik-Username': 'mallory\tadmin' }],
  ])('refuses %s with 400 and no user', async (_n, headers) => {
    const r = await me(url, headers)
    expect(r.status).toBe(400)
    expect(r.body).toMatchObject({ code: 'invalid_forward_auth_header' })
    const users = await s.t.call('GET', '/api/v1/users', { admin: true })
    expect(
      (users.body.items as { username: string; id: string }[]).map(
        (u: { username: string }) => u.username,
      ),
    ).not.toContain('mallory')
  })

  it('updates the stored role on the request where the groups change (no sync cache)', async () => {
    const as = (groups: string) =>
      me(url, { 'X-Authentik-Username': 'dave', 'X-Authentik-Groups': groups })
    expect((await as('HIVEMIND-ADMIN')).body.role).toBe('Admin')
    const list = await rawRequest(url, {
      path: '/api/v1/users',
      headers: { 'X-Authentik-Username': 'dave', 'X-Authentik-Groups': 'hivemind-admin' },
    })
    expect(list.status).toBe(200)
    expect((await as('hivemind-readonly')).body).toMatchObject({
      role: 'ReadOnly',
      scopes: ['read'],
    })
    const denied = await rawRequest(url, {
      path: '/api/v1/users',
      headers: { 'X-Authentik-Username': 'dave', 'X-Authentik-Groups': 'hivemind-readonly' },
    })
    expect(denied.status).toBe(403)
    const users = await s.t.call('GET', '/api/v1/users', { admin: true })
    expect(
      (users.body.items as { username: string; id: string }[]).find(
        (u: { username: string }) => u.username === 'dave',
      ),
    ).toMatchObject({
      role: 'ReadOnly',
    })
    const audit = await s.t.call('GET', '/api/v1/audit?action=user.role_change', { admin: true })
    expect(audit.body.items[0]).toMatchObject({ details: { from: 'Admin', to: 'ReadOnly' } })
  })

  it('answers 404 pointing to the IdP on /auth/register and /auth/login', async () => {
    for (const path of ['/auth/register', '/auth/login']) {
      const r = await rawRequest(url, {
        method: 'POST',
        path,
        body: { username: 'x', email: 'x@example.com', password: 'p'.repeat(12) },
      })
      expect(r.status).toBe(404)
      expect(r.body).toMatchObject({ code: 'local_accounts_disabled' })
      expect(r.body.error).toMatch(/identity provider/)
    }
  })

  it('needs X-CSRF-Token matching hm_csrf for state changes by forward-auth users', async () => {
    const who = { 'X-Authentik-Username': 'erin' }
    const first = await me(url, who)
    const csrf = cookieValue(first.cookies, 'hm_csrf')
    expect(csrf).toBeTruthy()
    const bare = await rawRequest(url, {
      method: 'POST',
      path: '/api/v1/me/api-key/rotate',
      headers: who,
    })
    expect(bare).toMatchObject({ status: 403, body: { code: 'csrf_failed' } })
    const ok = await rawRequest(url, {
      method: 'POST',
      path: '/api/v1/me/api-key/rotate',
      headers: { ...who, cookie: `hm_csrf=${csrf}`, 'X-CSRF-Token': csrf! },
    })
    expect(ok.status).toBe(201)
  })

  it('refuses a disabled forward-auth user', async () => {
    await me(url, { 'X-Authentik-Username': 'frank' })
    const users = await s.t.call('GET', '/api/v1/users', { admin: true })
    const frank = (users.body.items as { username: string; id: string }[]).find(
      (u: { username: string }) => u.username === 'frank',
    )
    await s.t.call('PATCH', `/api/v1/users/${frank!.id}`, { admin: true, body: { disabled: true } })
    expect((await me(url, { 'X-Authentik-Username': 'frank' })).status).toBe(403)
  })

  it('never logs or audits a secret (the admin key sent beside injected headers, minted keys)', async () => {
    const minted = await me(url, { 'X-Authentik-Username': 'erin' })
    const csrf = cookieValue(minted.cookies, 'hm_csrf') ?? ''
    const key = await rawRequest(url, {
      method: 'POST',
      path: '/api/v1/me/api-key/rotate',
      headers: { 'X-Authentik-Username': 'erin', cookie: `hm_csrf=${csrf}`, 'X-CSRF-Token': csrf },
    })
    expect(key.status).toBe(201)
    const audit = await s.t.call('GET', '/api/v1/audit?limit=500', { admin: true })
    const text = s.log.text()
    expect(text).toContain('rejecting forward-auth headers')
    for (const secret of [ADMIN_KEY, key.body.api_key as string]) {
      expect(text).not.toContain(secret)
      expect(JSON.stringify(audit.body)).not.toContain(secret)
    }
  })
})

describe('forward-auth trust lists', () => {
  it('trusts nobody with an empty list and logs the WARN line', async () => {
    const s = await faServer({ HIVEMIND_FORWARD_AUTH_TRUSTED_NETS: '' })
    try {
      expect(s.log.records).toContainEqual(
        expect.objectContaining({
          level: WARN,
          msg: 'HIVEMIND_FORWARD_AUTH=true but HIVEMIND_FORWARD_AUTH_TRUSTED_NETS is empty',
        }),
      )
      const r = await me(`http://127.0.0.1:${s.port}`, { 'X-Authentik-Username': 'admin' })
      expect(r.status).toBe(403)
    } finally {
      await s.t.close()
    }
  })

  it('matches IPv4-mapped peers (::ffff:127.0.0.1) against IPv4 CIDRs', async () => {
    const s = await faServer({
      HIVEMIND_HOST: '::',
      HIVEMIND_FORWARD_AUTH_TRUSTED_NETS: '127.0.0.0/8',
    })
    try {
      const ok = await me(`http://127.0.0.1:${s.port}`, { 'X-Authentik-Username': 'mapped' })
      expect(ok.body).toMatchObject({ name: 'mapped' })
      const v6 = await me(`http://[::1]:${s.port}`, { 'X-Authentik-Username': 'mapped' })
      expect(v6.status).toBe(403)
      expect(s.log.records.at(-2)?.msg ?? s.log.text()).toContain('peer=::1')
    } finally {
      await s.t.close()
    }
  })

  it('matches IPv6 CIDRs (::1) and not IPv4 peers', async () => {
    const s = await faServer({ HIVEMIND_HOST: '::', HIVEMIND_FORWARD_AUTH_TRUSTED_NETS: '::1' })
    try {
      const ok = await me(`http://[::1]:${s.port}`, { 'X-Authentik-Username': 'six' })
      expect(ok.body).toMatchObject({ name: 'six' })
      const v4 = await me(`http://127.0.0.1:${s.port}`, { 'X-Authentik-Username': 'six' })
      expect(v4.status).toBe(403)
    } finally {
      await s.t.close()
    }
  })

  it('uses the configured header names, group names and group delimiter', async () => {
    const s = await faServer({
      HIVEMIND_FORWARD_AUTH_USER_HEADER: 'Remote-User',
      HIVEMIND_FORWARD_AUTH_EMAIL_HEADER: 'Remote-Email',
      HIVEMIND_FORWARD_AUTH_GROUPS_HEADER: 'Remote-Groups',
      HIVEMIND_FORWARD_AUTH_GROUPS_DELIM: ',',
      HIVEMIND_GROUP_ADMIN: 'ops',
      HIVEMIND_GROUP_USER: 'devs',
      HIVEMIND_GROUP_READONLY: 'viewers',
    })
    try {
      const url = `http://127.0.0.1:${s.port}`
      const ro = await me(url, {
        'Remote-User': 'grace',
        'Remote-Email': 'grace@example.com',
        'Remote-Groups': 'viewers,hivemind-admin',
      })
      expect(ro.body).toMatchObject({ name: 'grace', role: 'ReadOnly' })
      expect(
        (await me(url, { 'Remote-User': 'grace', 'Remote-Groups': 'viewers,devs' })).body,
      ).toMatchObject({ role: 'User' })
      const r = await me(url, { 'Remote-User': 'grace', 'Remote-Groups': 'dev,OPS' })
      expect(r.body).toMatchObject({ name: 'grace', role: 'Admin' })
      const users = await s.t.call('GET', '/api/v1/users', { admin: true })
      expect(users.body.items).toContainEqual(
        expect.objectContaining({ username: 'grace', email: 'grace@example.com' }),
      )
      // `|` is no longer the delimiter: "dev|ops" is one unknown group.
      const pipe = await me(url, { 'Remote-User': 'grace', 'Remote-Groups': 'dev|ops' })
      expect(pipe.body).toMatchObject({ role: 'User' })
      // The default Authentik header is now just another header.
      const other = await me(url, { 'X-Authentik-Username': 'admin' })
      expect(other.status).toBe(401)
    } finally {
      await s.t.close()
    }
  })

  it('decides trust by the socket peer even where X-Forwarded-For is believed for the client address', async () => {
    // Both loopback addresses are trusted proxies for logs and rate limits; only
    // 127.0.0.1 is a trusted forward-auth source.
    const s = await faServer({ HIVEMIND_TRUSTED_PROXIES: '127.0.0.1/32,127.0.0.2/32' })
    try {
      const url = `http://127.0.0.1:${s.port}`
      const spoofed = await me(
        url,
        { 'X-Authentik-Username': 'admin', 'X-Forwarded-For': '127.0.0.1' },
        '127.0.0.2',
      )
      expect(spoofed.status).toBe(403)
      expect(s.log.records.find((r) => r.msg.startsWith('rejecting'))?.msg).toBe(
        `${INJECTION_MSG}127.0.0.2`,
      )
      const proxied = await me(url, {
        'X-Authentik-Username': 'henry',
        'X-Forwarded-For': '203.0.113.5',
      })
      expect(proxied.body).toMatchObject({ name: 'henry', credential: 'forward_auth' })
    } finally {
      await s.t.close()
    }
  })

  it('rate-limits injection attempts without logging each one', async () => {
    const s = await faServer({ HIVEMIND_RATE_LIMIT_AUTH_FAILURES_PER_MIN: '2' })
    try {
      const url = `http://127.0.0.1:${s.port}`
      const statuses: number[] = []
      for (let i = 0; i < 4; i++)
        statuses.push((await me(url, { 'X-Authentik-Username': 'admin' }, '127.0.0.2')).status)
      expect(statuses).toEqual([403, 403, 429, 429])
      expect(s.log.records.filter((r) => r.msg.startsWith('rejecting'))).toHaveLength(2)
      // The trusted proxy's own address is unaffected.
      expect((await me(url, { 'X-Authentik-Username': 'alice' })).status).toBe(200)
    } finally {
      await s.t.close()
    }
  })

  it('ignores identity headers entirely when forward-auth is off', async () => {
    const t = await startTestServer()
    try {
      const r = await me(t.url, { 'X-Authentik-Username': 'admin' })
      expect(r.status).toBe(401)
    } finally {
      await t.close()
    }
  })

  it('rejects an invalid CIDR at startup, naming the variable', () => {
    expect(() =>
      loadConfig({
        HIVEMIND_FORWARD_AUTH: 'true',
        HIVEMIND_FORWARD_AUTH_TRUSTED_NETS: '10.0.0.0/33',
      }),
    ).toThrow(/HIVEMIND_FORWARD_AUTH_TRUSTED_NETS/)
  })
})
