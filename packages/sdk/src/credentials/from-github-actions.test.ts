import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import {
  startForwardProxy,
  startGitHubTokenEndpoint,
  startOidcIssuer,
  type ForwardProxy,
  type GitHubTokenEndpoint,
  type LocalOidcIssuer,
} from '@hivemind/test-utils'
import { decodeJwt } from 'jose'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  ENV_ACTIONS_ID_TOKEN_REQUEST_TOKEN,
  ENV_ACTIONS_ID_TOKEN_REQUEST_URL,
  fromGitHubActions,
  GITHUB_MISSING_PERMISSION_MESSAGE,
  type FromGitHubActionsInit,
} from './from-github-actions.js'

const AUDIENCE = 'https://hivemind.example.com'
const fast = { baseDelayMs: 1, maxDelayMs: 5, timeoutMs: 2_000, deadlineMs: 10_000 } as const

let issuer: LocalOidcIssuer
let endpoint: GitHubTokenEndpoint

beforeAll(async () => {
  issuer = await startOidcIssuer()
})
afterAll(() => issuer.close())
beforeEach(async () => {
  endpoint = await startGitHubTokenEndpoint(issuer)
})
afterEach(() => endpoint.close())

function runnerEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    ACTIONS_ID_TOKEN_REQUEST_URL: endpoint.url,
    ACTIONS_ID_TOKEN_REQUEST_TOKEN: endpoint.requestToken,
    ...extra,
  }
}

function github(init: FromGitHubActionsInit = {}) {
  return fromGitHubActions({ audience: AUDIENCE, env: runnerEnv(), ...fast, ...init })
}

describe(`${fromGitHubActions.name}`, () => {
  it('exports the env names', () => {
    expect(ENV_ACTIONS_ID_TOKEN_REQUEST_URL).toBe('ACTIONS_ID_TOKEN_REQUEST_URL')
    expect(ENV_ACTIONS_ID_TOKEN_REQUEST_TOKEN).toBe('ACTIONS_ID_TOKEN_REQUEST_TOKEN')
  })

  it('mints an ID token for the audience, with the request token as bearer', async () => {
    const credential = await github()()
    expect(credential).toMatchObject({
      kind: 'id-token',
      source: 'github-actions',
      refreshable: 'always',
    })
    expect(credential.kind === 'id-token' && decodeJwt(credential.token).aud).toBe(AUDIENCE)
    expect(endpoint.requests).toEqual([
      { audience: AUDIENCE, authorization: `Bearer ${endpoint.requestToken}` },
    ])
  })

  it('adds the audience with the URL API to a URL that already has a query', async () => {
    const seen: string[] = []
    const recording: typeof fetch = (input, init) => {
      seen.push(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url)
      return fetch(input, init)
    }
    await github({ fetch: recording })()
    const url = new URL(seen[0] ?? '')
    expect(url.searchParams.get('api-version')).toBe('2.0')
    expect(url.searchParams.get('audience')).toBe(AUDIENCE)
    expect(seen[0]).toBe(`${endpoint.url}&audience=${encodeURIComponent(AUDIENCE)}`)
  })

  it.each([
    [
      'the call option first',
      { audience: 'https://call.example.com/' },
      { audience: 'https://init.example.com' },
      {},
      'https://call.example.com',
    ],
    [
      'then init',
      {},
      { audience: 'https://init.example.com/api/' },
      { HIVEMIND_AUDIENCE: 'https://env.example.com' },
      'https://init.example.com/api',
    ],
    [
      'then HIVEMIND_AUDIENCE',
      {},
      { audience: undefined },
      { HIVEMIND_AUDIENCE: 'HTTPS://Env.Example.com:443/' },
      'https://env.example.com',
    ],
  ])('takes the audience from %s, normalised', async (_name, call, init, env, expected) => {
    await github({ ...init, env: runnerEnv(env) })(call)
    expect(endpoint.requests.map((r) => r.audience)).toEqual([expected])
  })

  it('fails with a configuration error when there is no audience at all', async () => {
    await expect(github({ audience: undefined })()).rejects.toMatchObject({
      code: 'ERR_CONFIGURATION',
      message: expect.stringContaining('HIVEMIND_AUDIENCE'),
    })
    expect(endpoint.requests).toHaveLength(0)
  })

  it('mints a fresh token on every call', async () => {
    const provider = github()
    const tokens = await Promise.all([provider(), provider(), provider()])
    const jtis = tokens.map((c) => (c.kind === 'id-token' ? decodeJwt(c.token).jti : undefined))
    expect(new Set(jtis).size).toBe(3)
    expect(endpoint.requests).toHaveLength(3)
  })

  it.each([
    ['unset', {}],
    ['only the URL', { ACTIONS_ID_TOKEN_REQUEST_URL: 'https://x.invalid/?api-version=2.0' }],
    ['only the token', { ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'ghs_x' }],
    ['empty', { ACTIONS_ID_TOKEN_REQUEST_URL: '', ACTIONS_ID_TOKEN_REQUEST_TOKEN: '' }],
  ])('says exactly how to fix a missing permission when the env is %s', async (_name, env) => {
    await expect(fromGitHubActions({ audience: AUDIENCE, env })()).rejects.toMatchObject({
      code: 'ERR_CREDENTIAL_UNAVAILABLE',
      provider: 'fromGitHubActions',
      message: GITHUB_MISSING_PERMISSION_MESSAGE,
    })
  })

  it('has the missing-permission message verbatim', () => {
    expect(GITHUB_MISSING_PERMISSION_MESSAGE).toBe(
      'GitHub Actions gave this job no OIDC token (ACTIONS_ID_TOKEN_REQUEST_URL and ' +
        'ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set). Add `permissions: id-token: write` to the ' +
        'job (or the workflow). Pull requests from forks get no OIDC token even with that ' +
        'permission: there, use a static token instead, through the HIVEMIND_TOKEN input or variable.',
    )
  })

  it.each(['Pending', 'Delayed'] as const)(
    "retries GitHub's 403 for a job still '%s', then succeeds",
    async (state) => {
      endpoint.failPendingTimes(2, state)
      await expect(github()()).resolves.toMatchObject({ kind: 'id-token' })
      expect(endpoint.requests).toHaveLength(3)
    },
  )

  it.each([
    ['a 403 denial', 403],
    ['a 401', 401],
    ['a 404', 404],
    ['a 400', 400],
  ])('does not retry %s', async (_name, status) => {
    endpoint.failTimes(5, status)
    await expect(github()()).rejects.toMatchObject({
      code: 'ERR_AUTHENTICATION',
      provider: 'fromGitHubActions',
      message: expect.stringContaining(`failed with status ${status}`),
    })
    expect(endpoint.requests).toHaveLength(1)
  })

  it('does not retry a wrong request token, and never shows it', async () => {
    const env = runnerEnv({ ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'ghs_wrong_secret' })
    const error: unknown = await github({ env })().catch((e: unknown) => e)
    expect(error).toMatchObject({
      code: 'ERR_AUTHENTICATION',
      message: expect.stringContaining('status 401 (HTTP 401: Bad credentials) after 1 attempt(s)'),
      hint: expect.stringContaining('ACTIONS_ID_TOKEN_REQUEST_TOKEN'),
    })
    expect(JSON.stringify(error)).not.toContain('ghs_wrong_secret')
    expect((error as Error).message).not.toContain('ghs_wrong_secret')
    expect(endpoint.requests).toHaveLength(1)
  })

  it.each([
    [500, 2, 3],
    [503, 1, 2],
    [429, 1, 2],
    [408, 1, 2],
  ])('retries a %i (%i times) and succeeds', async (status, failures, requests) => {
    endpoint.failTimes(failures, status)
    await expect(github()()).resolves.toMatchObject({ kind: 'id-token' })
    expect(endpoint.requests).toHaveLength(requests)
  })

  it('retries 5xx up to maxAttempts, then fails with the status', async () => {
    endpoint.failTimes(10, 502)
    await expect(github({ maxAttempts: 3 })()).rejects.toMatchObject({
      code: 'ERR_AUTHENTICATION',
      message: expect.stringContaining(
        'failed with status 502 (HTTP 502: upstream error) after 3 attempt(s)',
      ),
      hint: expect.stringContaining('githubstatus'),
    })
    expect(endpoint.requests).toHaveLength(3)
  })

  it('stops retrying at the overall deadline', async () => {
    endpoint.failTimes(100, 503)
    await expect(
      github({ maxAttempts: 100, baseDelayMs: 40, maxDelayMs: 40, deadlineMs: 150 })(),
    ).rejects.toMatchObject({
      code: 'ERR_AUTHENTICATION',
      message: expect.stringContaining('within the 150 ms deadline'),
    })
    expect(endpoint.requests.length).toBeLessThan(100)
  })

  it('retries network errors and times out each attempt', async () => {
    // A server that accepts and never answers: every attempt must time out.
    const hanging = createServer(() => undefined)
    await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve))
    const { port } = hanging.address() as AddressInfo
    try {
      const env = runnerEnv({
        ACTIONS_ID_TOKEN_REQUEST_URL: `http://127.0.0.1:${port}/idtoken?api-version=2.0`,
      })
      await expect(github({ env, maxAttempts: 2, timeoutMs: 50 })()).rejects.toMatchObject({
        code: 'ERR_AUTHENTICATION',
        message: expect.stringContaining('timed out after 50 ms) after 2 attempt(s)'),
      })
    } finally {
      hanging.closeAllConnections()
      await new Promise((resolve) => hanging.close(resolve))
    }
    const closed = `http://127.0.0.1:${port}/idtoken?api-version=2.0`
    await expect(
      github({ env: runnerEnv({ ACTIONS_ID_TOKEN_REQUEST_URL: closed }), maxAttempts: 2 })(),
    ).rejects.toMatchObject({
      message: expect.stringContaining('network error'),
    })
  })

  it('stops at once when the caller aborts', async () => {
    endpoint.failTimes(100, 503)
    const controller = new AbortController()
    const pending = github({ baseDelayMs: 10_000, maxDelayMs: 10_000 })({
      signal: controller.signal,
    })
    setTimeout(() => controller.abort(new Error('caller gave up')), 50)
    await expect(pending).rejects.toThrow('caller gave up')
  })

  it.each([
    ['is not a JWT', () => Promise.resolve('not-a-jwt'), 'returned a value that is not a JWT'],
    [
      'has under 30 s left',
      () => issuer.mint({ sub: 'x' }, { ttlSeconds: 20 }),
      /with (19|20) s left/,
    ],
    ['has no exp', () => issuer.mint({ sub: 'x' }, { omit: ['exp'] }), 'without `exp`'],
  ])('rejects a returned token that %s', async (_name, make, message: string | RegExp) => {
    const value = await make()
    const fakeFetch: typeof fetch = () =>
      Promise.resolve(new Response(JSON.stringify({ count: 1, value }), { status: 200 }))
    const error: unknown = await github({ fetch: fakeFetch })().catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'ERR_AUTHENTICATION' })
    expect((error as Error).message).toMatch(message)
    expect((error as Error).message).not.toContain(value)
  })

  it('logs a fingerprint, jti and exp, never a token', async () => {
    const logger = { debug: vi.fn(), info: vi.fn(), warn: vi.fn(), error: vi.fn() }
    endpoint.failPendingTimes(1)
    const credential = await github({ logger })()
    const lines = logger.debug.mock.calls.map((c) => String(c[0]))
    expect(lines).toEqual([
      expect.stringMatching(
        /^@hivemind\/sdk - fromGitHubActions: attempt 1\/5 failed \(HTTP 403: Can't issue ID_TOKEN/,
      ),
      expect.stringMatching(
        /^@hivemind\/sdk - fromGitHubActions: got an ID token for audience https:\/\/hivemind\.example\.com \(sha256:[0-9a-f]{12}, jti .+, exp /,
      ),
    ])
    const all = lines.join('\n')
    expect(credential.kind === 'id-token' && all.includes(credential.token)).toBe(false)
    expect(all).not.toContain(endpoint.requestToken)
  })

  describe('proxy', () => {
    let proxy: ForwardProxy
    let proxied: string[]

    beforeEach(async () => {
      proxy = await startForwardProxy()
      proxied = proxy.requests
    })
    afterEach(() => proxy.close())

    const proxyUrl = () => proxy.url

    it('goes through HTTPS_PROXY / HTTP_PROXY from env', async () => {
      const env = runnerEnv({ HTTPS_PROXY: proxyUrl(), HTTP_PROXY: proxyUrl() })
      await expect(github({ env })()).resolves.toMatchObject({ kind: 'id-token' })
      const target = new URL(endpoint.url)
      expect(proxied).toHaveLength(1)
      expect(proxied[0]).toContain(target.host)
      expect(endpoint.requests).toHaveLength(1)
    })

    it('bypasses the proxy for hosts in NO_PROXY', async () => {
      const env = runnerEnv({
        HTTPS_PROXY: proxyUrl(),
        HTTP_PROXY: proxyUrl(),
        NO_PROXY: '127.0.0.1',
      })
      await expect(github({ env })()).resolves.toMatchObject({ kind: 'id-token' })
      expect(proxied).toHaveLength(0)
      expect(endpoint.requests).toHaveLength(1)
    })
  })
})
