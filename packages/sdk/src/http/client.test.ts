import { delay, HttpResponse } from 'msw'
import { describe, expect, it } from 'vitest'
import {
  apiError,
  callsTo,
  defaultHandlers,
  exchangeBody,
  oauthError,
  route,
  TEST_ENDPOINT,
  useMswServer,
} from '../../test/msw.js'
import type { CredentialProvider } from '../credentials/types.js'
import { GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_ID_TOKEN } from '../schemas/index.js'
import { HiveMindClient, type HiveMindClientInit } from './client.js'

const server = useMswServer(...defaultHandlers)
const SUBJECT = 'eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lzcyIsImp0aSI6ImEifQ.c3ViamVjdA'

function client(init: Partial<HiveMindClientInit> = {}): HiveMindClient {
  return new HiveMindClient({
    endpoint: TEST_ENDPOINT,
    retryBaseDelayMs: 1,
    retryMaxDelayMs: 5,
    env: {},
    ...init,
  })
}

describe(HiveMindClient.name, () => {
  describe('configuration', () => {
    it('names HIVEMIND_ENDPOINT when no endpoint is set', () => {
      expect(() => new HiveMindClient({ env: {} })).toThrow(
        expect.objectContaining({
          code: 'ERR_CONFIGURATION',
          message: expect.stringContaining('HIVEMIND_ENDPOINT'),
        }),
      )
    })

    it('reads HIVEMIND_ENDPOINT and drops a trailing slash', () => {
      expect(
        new HiveMindClient({ env: { HIVEMIND_ENDPOINT: 'https://h.example/base/' } }).endpoint,
      ).toBe('https://h.example/base')
    })

    it.each([
      'not a url',
      'ftp://h.example',
      'https://u:p@h.example',
      'https://h.example/?token=x',
    ])('rejects endpoint %s', (endpoint) => {
      expect(() => new HiveMindClient({ endpoint, env: {} })).toThrow(
        expect.objectContaining({ code: 'ERR_CONFIGURATION' }),
      )
    })

    it('fails a request no handler expects (msw onUnhandledFrame: error)', async () => {
      await expect(
        client({ endpoint: 'https://unhandled.test', retries: 0 }).health(),
      ).rejects.toMatchObject({ code: 'ERR_NETWORK' })
    })

    it('rejects invalid options with a ConfigurationError', () => {
      expect(() => client({ retries: -1 })).toThrow(
        expect.objectContaining({ code: 'ERR_CONFIGURATION' }),
      )
    })
  })

  describe('exchange', () => {
    it('posts an RFC 8693 form and parses the answer', async () => {
      const res = await client().exchange(SUBJECT, { scope: 'write' })
      expect(res).toEqual(exchangeBody())
      const [call] = callsTo('/oauth/token')
      expect(call?.headers['content-type']).toContain('application/x-www-form-urlencoded')
      expect(call?.headers['user-agent']).toBe('@hivemind/sdk')
      expect(call?.form).toEqual({
        grant_type: GRANT_TYPE_TOKEN_EXCHANGE,
        subject_token: SUBJECT,
        subject_token_type: TOKEN_TYPE_ID_TOKEN,
        scope: 'write',
      })
    })

    it('maps an audience_mismatch to a HiveMindApiError with every field and a hint', async () => {
      server.use(
        route('post', '/oauth/token', () =>
          oauthError(
            400,
            {
              error: 'invalid_grant',
              hivemind_error: 'audience_mismatch',
              expected_audience: 'https://hivemind.example.com',
            },
            { 'x-request-id': 'req-123' },
          ),
        ),
      )
      const error = await client()
        .exchange(SUBJECT)
        .catch((e: unknown) => e)
      expect(error).toMatchObject({
        name: 'HiveMindApiError',
        code: 'ERR_TOKEN_EXCHANGE_REJECTED',
        message: `Token exchange failed with status 400 invalid_grant (audience_mismatch): POST ${TEST_ENDPOINT}/oauth/token`,
        status: 400,
        request: { method: 'POST', url: `${TEST_ENDPOINT}/oauth/token` },
        requestId: 'req-123',
        error: 'invalid_grant',
        hivemindError: 'audience_mismatch',
        data: { expected_audience: 'https://hivemind.example.com' },
        hint: expect.stringMatching(/https:\/\/hivemind\.example\.com.*HIVEMIND_AUDIENCE/),
      })
      expect(JSON.stringify(error)).not.toContain(SUBJECT)
      expect(String((error as Error).message)).not.toContain(SUBJECT)
    })

    it.each([
      ['no_matching_service_account', /hivemind-server explain/],
      ['expired', /fresh/],
      ['policy_denied', /CEL/],
      ['replayed_token', /already exchanged/],
    ])('hints for %s', async (check, hint) => {
      server.use(
        route('post', '/oauth/token', () =>
          oauthError(400, { error: 'invalid_grant', hivemind_error: check }),
        ),
      )
      await expect(client().exchange(SUBJECT)).rejects.toMatchObject({
        code: 'ERR_TOKEN_EXCHANGE_REJECTED',
        hivemindError: check,
        hint: expect.stringMatching(hint),
      })
    })

    it('raises ResponseValidationError on a 200 with the wrong shape', async () => {
      server.use(
        route('post', '/oauth/token', () =>
          HttpResponse.json({ access_token: '', token_type: 'Bearer' }),
        ),
      )
      await expect(client().exchange(SUBJECT)).rejects.toMatchObject({
        name: 'ResponseValidationError',
        code: 'ERR_RESPONSE_VALIDATION',
        request: { method: 'POST', url: `${TEST_ENDPOINT}/oauth/token` },
        issues: expect.arrayContaining([expect.objectContaining({ path: ['access_token'] })]),
      })
      expect(callsTo('/oauth/token')).toHaveLength(1)
    })
  })

  describe('retry classification', () => {
    it.each([408, 429, 500, 502, 503, 504])('retries %i, then succeeds', async (status) => {
      server.use(
        route('post', '/oauth/token', ({ n }) =>
          n === 1
            ? oauthError(status, { error: 'temporarily_unavailable' })
            : HttpResponse.json(exchangeBody()),
        ),
      )
      await expect(client().exchange(SUBJECT)).resolves.toEqual(exchangeBody())
      expect(callsTo('/oauth/token')).toHaveLength(2)
    })

    it.each([
      [400, 'invalid_grant'],
      [400, 'invalid_request'],
      [401, 'invalid_client'],
      [403, 'unauthorized_client'],
    ])('never retries %i %s', async (status, error) => {
      server.use(route('post', '/oauth/token', () => oauthError(status, { error })))
      await expect(client().exchange(SUBJECT)).rejects.toMatchObject({
        code: 'ERR_TOKEN_EXCHANGE_REJECTED',
        status,
        error,
      })
      expect(callsTo('/oauth/token')).toHaveLength(1)
    })

    it('gives up after `retries` and throws the last answer', async () => {
      server.use(
        route('get', '/api/v1/me', () => apiError(500, { error: 'boom', code: 'internal' })),
      )
      await expect(client({ retries: 2, auth: { token: 'hmsa_x' } }).me()).rejects.toMatchObject({
        code: 'ERR_API',
        status: 500,
        apiCode: 'internal',
      })
      expect(callsTo('/api/v1/me')).toHaveLength(3)
    })

    it('retries network errors and reports ERR_NETWORK when they persist', async () => {
      server.use(route('get', '/api/v1/health', () => HttpResponse.error()))
      await expect(client({ retries: 1 }).health()).rejects.toMatchObject({
        name: 'HiveMindNetworkError',
        code: 'ERR_NETWORK',
        request: { method: 'GET', url: `${TEST_ENDPOINT}/api/v1/health` },
      })
      expect(callsTo('/api/v1/health')).toHaveLength(2)
    })

    it('honours Retry-After in seconds', async () => {
      server.use(
        route('post', '/oauth/token', ({ n }) =>
          n === 1
            ? oauthError(429, { error: 'invalid_request' }, { 'retry-after': '1' })
            : HttpResponse.json(exchangeBody()),
        ),
      )
      const started = performance.now()
      await client().exchange(SUBJECT)
      // Backoff alone would be ≤ 5 ms here.
      expect(performance.now() - started).toBeGreaterThanOrEqual(950)
    })

    it('caps Retry-After at maxRetryAfterMs', async () => {
      server.use(
        route('post', '/oauth/token', ({ n }) =>
          n === 1
            ? oauthError(503, { error: 'temporarily_unavailable' }, { 'retry-after': '3600' })
            : HttpResponse.json(exchangeBody()),
        ),
      )
      const started = performance.now()
      await client({ maxRetryAfterMs: 20 }).exchange(SUBJECT)
      expect(performance.now() - started).toBeLessThan(1_000)
      expect(callsTo('/oauth/token')).toHaveLength(2)
    })

    it('exposes Retry-After on the error', async () => {
      server.use(
        route('post', '/oauth/token', () =>
          oauthError(429, { error: 'invalid_request' }, { 'retry-after': '7' }),
        ),
      )
      await expect(client({ retries: 0 }).exchange(SUBJECT)).rejects.toMatchObject({
        status: 429,
        retryAfterMs: 7000,
      })
    })

    it('times out one slow attempt and retries it', async () => {
      server.use(
        route('get', '/api/v1/health', async ({ n }) => {
          if (n === 1) await delay(500)
          return HttpResponse.json({ status: 'ok', version: '1', audience: 'x', checks: {} })
        }),
      )
      await expect(client({ timeoutMs: 50 }).health()).resolves.toMatchObject({ status: 'ok' })
      expect(callsTo('/api/v1/health')).toHaveLength(2)
    })

    it('stops at the overall deadline with ERR_TIMEOUT', async () => {
      server.use(
        route('get', '/api/v1/health', async () => {
          await delay(1_000)
          return HttpResponse.json({})
        }),
      )
      const started = performance.now()
      await expect(
        client({ timeoutMs: 60, deadlineMs: 150, retries: 10 }).health(),
      ).rejects.toMatchObject({ code: 'ERR_TIMEOUT' })
      expect(performance.now() - started).toBeLessThan(600)
      expect(callsTo('/api/v1/health').length).toBeLessThanOrEqual(3)
    })
  })

  describe('api calls', () => {
    it('returns a degraded health body on 503 instead of throwing', async () => {
      server.use(
        route('get', '/api/v1/health', () =>
          HttpResponse.json(
            {
              status: 'degraded',
              version: '1',
              audience: TEST_ENDPOINT,
              checks: { database: 'down' },
            },
            { status: 503 },
          ),
        ),
      )
      await expect(client().health()).resolves.toMatchObject({ status: 'degraded' })
    })

    it.each([
      [{ token: 'hmsa_static' }, 'authorization', 'Bearer hmsa_static'],
      [{ apiKey: 'hm-key' }, 'x-api-key', 'hm-key'],
    ])('sends %o', async (auth, header, value) => {
      await client({ auth }).me()
      expect(callsTo('/api/v1/me')[0]?.headers[header]).toBe(value)
    })

    it('exchanges an ID token from a provider and sends the JWT', async () => {
      const provider: CredentialProvider = Object.assign(
        () =>
          Promise.resolve({
            kind: 'id-token' as const,
            token: SUBJECT,
            source: 'inline',
            refreshable: 'always' as const,
          }),
        { providerName: 'inline' },
      )
      await client({ auth: { provider } }).me()
      expect(callsTo('/oauth/token')).toHaveLength(1)
      expect(callsTo('/api/v1/me')[0]?.headers.authorization).toBe(
        `Bearer ${exchangeBody().access_token}`,
      )
    })

    it('maps an API error body and keeps credentials out of the message', async () => {
      server.use(
        route('get', '/api/v1/me', () =>
          apiError(
            401,
            { error: 'invalid or inactive API key', code: 'invalid_api_key' },
            {
              'x-request-id': 'r-9',
            },
          ),
        ),
      )
      const error = await client({ auth: { apiKey: 'hm-secret-secret-secret-secret' } })
        .me()
        .catch((e: unknown) => e)
      expect(error).toMatchObject({
        code: 'ERR_API',
        status: 401,
        apiCode: 'invalid_api_key',
        requestId: 'r-9',
        hint: expect.stringContaining('HIVEMIND_API_KEY'),
        message: `HiveMind API request failed with status 401 invalid_api_key: GET ${TEST_ENDPOINT}/api/v1/me - invalid or inactive API key`,
      })
      expect(callsTo('/api/v1/me')).toHaveLength(1)
      expect((error as Error).message).not.toContain('hm-secret')
    })
  })
})
