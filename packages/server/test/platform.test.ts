import Router from '@koa/router'
import { createRemoteJWKSet, jwtVerify } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  GRANT_TYPE_TOKEN_EXCHANGE,
  HealthResponse,
  OpenIdConfiguration,
} from '@hivemind/sdk/schemas'
import { memoryReplayStore, openMemoryDb, startTestServer, type TestServer } from './helpers.js'

function boomRouter(): Router {
  const r = new Router()
  r.get('/boom', () => {
    throw new Error('secret internals at /etc/passwd')
  })
  return r
}

describe('platform routes', () => {
  let t: TestServer
  const replay = memoryReplayStore()
  beforeAll(async () => {
    t = await startTestServer({ overrides: { replay }, routers: [boomRouter()] })
  })
  afterAll(() => t.close())

  it('reports readiness with version, audience and checks', async () => {
    const r = await t.call('GET', '/api/v1/health')
    expect(r.status).toBe(200)
    expect(HealthResponse.parse(r.body)).toEqual({
      status: 'ok',
      version: expect.stringMatching(/^\d+\.\d+\.\d+/),
      audience: t.server.deps.config.audience,
      checks: { database: 'ok', replay_store: 'ok' },
    })
    expect((await t.call('GET', '/api/v1/health/live')).body).toEqual({ status: 'ok' })
  })

  it('answers 503 when the replay store is down', async () => {
    replay.down = true
    try {
      const r = await t.call('GET', '/api/v1/health')
      expect(r).toMatchObject({
        status: 503,
        body: { status: 'degraded', checks: { database: 'ok', replay_store: 'down' } },
      })
    } finally {
      replay.down = false
    }
  })

  it('publishes JWKS that verifies the tokens it signs, and discovery', async () => {
    const jwks = await t.call('GET', '/.well-known/jwks.json')
    expect(jwks.headers.get('cache-control')).toBe('public, max-age=300')
    expect(jwks.body.keys).toHaveLength(1)
    expect(jwks.body.keys[0]).toMatchObject({
      kty: 'EC',
      crv: 'P-256',
      alg: 'ES256',
      use: 'sig',
      kid: expect.any(String),
    })
    expect(jwks.body.keys[0]).not.toHaveProperty('d')
    const { token } = await t.server.deps.keys.sign({ sub: 'sa_x', scope: 'read' }, 600)
    const base = t.server.deps.config.publicUrl
    const { payload } = await jwtVerify(
      token,
      createRemoteJWKSet(new URL(`${t.url}/.well-known/jwks.json`)),
      {
        issuer: base,
        audience: base,
      },
    )
    expect(payload.sub).toBe('sa_x')

    const d = await t.call('GET', '/.well-known/openid-configuration')
    expect(OpenIdConfiguration.parse(d.body)).toEqual({
      issuer: base,
      jwks_uri: `${base}/.well-known/jwks.json`,
      token_endpoint: `${base}/oauth/token`,
      grant_types_supported: [GRANT_TYPE_TOKEN_EXCHANGE],
      hivemind_audience: base,
    })
  })

  it('exposes Prometheus metrics labelled by route pattern', async () => {
    await t.call('GET', '/api/v1/service-accounts/sa_nope', { admin: true })
    const r = await t.call('GET', '/metrics')
    expect(r.headers.get('content-type')).toMatch(/^text\/plain/)
    expect(r.body).toContain('# TYPE hivemind_token_exchanges_total counter')
    expect(r.body).toContain('hivemind_token_exchange_duration_seconds')
    expect(r.body).toMatch(
      /hivemind_http_requests_total\{method="GET",route="\/api\/v1\/service-accounts\/:id",status="404"\} 1/,
    )
    expect(r.body).toContain('process_cpu_user_seconds_total')
  })

  it('serves an OpenAPI 3.1 document generated from the zod schemas', async () => {
    const r = await t.call('GET', '/api/v1/openapi.json')
    expect(r.body.openapi).toBe('3.1.0')
    const create = r.body.paths['/api/v1/service-accounts'].post
    expect(create.requestBody.content['application/json'].schema).toMatchObject({
      type: 'object',
      properties: {
        max_ttl_seconds: {
          anyOf: expect.arrayContaining([expect.objectContaining({ minimum: 600 })]),
        },
      },
      required: ['name'],
    })
    expect(Object.keys(r.body.paths)).toEqual(
      expect.arrayContaining([
        '/oauth/token',
        '/api/v1/me',
        '/api/v1/audit',
        '/api/v1/service-accounts/{id}/tokens',
      ]),
    )
  })

  it('sets security headers and echoes or generates the request id', async () => {
    const r = await t.call('GET', '/api/v1/me', {
      admin: true,
      headers: { 'x-request-id': 'abc-123' },
    })
    expect(Object.fromEntries(r.headers)).toMatchObject({
      'x-request-id': 'abc-123',
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY',
      'referrer-policy': 'no-referrer',
      'cache-control': 'no-store',
    })
    const gen = await t.call('GET', '/api/v1/health/live', {
      headers: { 'x-request-id': 'bad id\twith spaces' },
    })
    expect(gen.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)
  })

  it.each([
    ['GET', '/nope', undefined, 404, { error: 'no route for GET /nope', code: 'not_found' }],
    ['GET', '/boom', undefined, 500, { error: 'internal error', code: 'internal' }],
    ['POST', '/api/v1/service-accounts', '{not json', 400, { code: 'invalid_request' }],
    [
      'POST',
      '/api/v1/service-accounts',
      JSON.stringify({ name: 'x'.repeat(2_000_000) }),
      413,
      { code: 'payload_too_large' },
    ],
  ])('%s %s → %i with the error shape', async (method, path, body, status, expected) => {
    const res = await fetch(t.url + path, {
      method,
      headers: {
        'x-api-key': 'test-admin-key-0123456789abcdef',
        'content-type': 'application/json',
      },
      ...(body === undefined ? {} : { body }),
    })
    expect(res.status).toBe(status)
    const json = (await res.json()) as Record<string, unknown>
    expect(json).toMatchObject(expected)
    expect(JSON.stringify(json)).not.toMatch(/passwd|at .*\.ts/)
  })

  it('answers RFC 6749 bodies on /oauth/token for malformed requests', async () => {
    const res = await fetch(`${t.url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{oops',
    })
    expect(res.status).toBe(400)
    expect(await res.json()).toMatchObject({ error: 'invalid_request' })
  })
})

describe('readiness with the database down', () => {
  it('answers 503 naming the database', async () => {
    const db = await openMemoryDb()
    const t = await startTestServer({ overrides: { db } })
    await db.close()
    const r = await t.call('GET', '/api/v1/health')
    expect(r).toMatchObject({
      status: 503,
      body: { status: 'degraded', checks: { database: 'down', replay_store: 'ok' } },
    })
    await t.server.close()
  })
})
