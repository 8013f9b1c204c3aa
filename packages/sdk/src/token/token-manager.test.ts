import { afterEach, beforeEach, describe, expect, it, vi, type Mock } from 'vitest'
import type { Credential, CredentialProvider, Logger } from '../credentials/types.js'
import { HiveMindClient } from '../http/client.js'
import type { Clock } from '../internal/clock.js'
import { TOKEN_TYPE_JWT } from '../schemas/index.js'
import {
  TokenManager,
  type TokenManagerInit,
  type TokenManagerStateChange,
} from './token-manager.js'

// Schedule tests drive a stub fetch (no msw) under fake timers; retries against
// HTTP semantics are in token-manager.retry.test.ts.

const ENDPOINT = 'https://hivemind.test'
const S = 1000
const MIN = 60 * S

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
const fakeJwt = (claims: Record<string, unknown>) =>
  `${b64({ alg: 'ES256', typ: 'JWT' })}.${b64(claims)}.c2ln`

let idSeq = 0
function idToken(overrides: Record<string, unknown> = {}): string {
  idSeq++
  return fakeJwt({
    iss: 'https://issuer.test',
    sub: 'repo:o/r',
    aud: ENDPOINT,
    jti: `id-${idSeq}`,
    iat: Math.floor(Date.now() / 1000),
    exp: Math.floor(Date.now() / 1000) + 300,
    ...overrides,
  })
}

type Responder = (info: {
  form: Record<string, string>
  n: number
  signal: AbortSignal
}) => Response | Promise<Response>

function ok(expiresIn = 3600): Responder {
  return ({ n }) =>
    Response.json({
      access_token: fakeJwt({ sub: 'sa_1', jti: `jwt-${n}` }),
      issued_token_type: TOKEN_TYPE_JWT,
      token_type: 'Bearer',
      expires_in: expiresIn,
      scope: 'write',
    })
}

function fakeHiveMind() {
  const exchanges: Record<string, string>[] = []
  let responder: Responder = ok()
  const fetchFn = (async (input: string | URL | Request, init?: RequestInit) => {
    const request = input instanceof Request ? input : new Request(input, init)
    const form = Object.fromEntries(new URLSearchParams(await request.text()))
    exchanges.push(form)
    return responder({ form, n: exchanges.length, signal: request.signal })
  }) as typeof fetch
  return {
    fetch: fetchFn,
    exchanges,
    respond(r: Responder) {
      responder = r
    },
  }
}

interface TestProvider extends CredentialProvider {
  calls: number
}

function provider(next: () => Credential, providerName = 'inline'): TestProvider {
  const fn = Object.assign(
    () => {
      fn.calls++
      return Promise.resolve(next())
    },
    { providerName, calls: 0 },
  )
  return fn
}

function idTokenSource(token: () => string, source = 'inline'): TestProvider {
  return provider(() => ({ kind: 'id-token', token: token(), source, refreshable: 'maybe' }))
}

let hm: ReturnType<typeof fakeHiveMind>
let logger: { [K in keyof Logger]: Mock<Logger[K]> }
const clock: Clock = { now: () => Date.now(), monotonicNow: () => Date.now() }
let managers: TokenManager[] = []

function manager(source: CredentialProvider, init: Partial<TokenManagerInit> = {}): TokenManager {
  const m = new TokenManager({
    provider: source,
    endpoint: ENDPOINT,
    env: {},
    fetch: hm.fetch,
    clock,
    random: () => 0.5,
    logger,
    ...init,
  })
  managers.push(m)
  return m
}

const unhandled: unknown[] = []
const onUnhandled = (reason: unknown) => unhandled.push(reason)

beforeEach(() => {
  vi.useFakeTimers({ now: new Date('2026-01-01T00:00:00Z') })
  hm = fakeHiveMind()
  logger = { debug: vi.fn(), info: vi.fn(), warn: vi.fn(), error: vi.fn() }
  unhandled.length = 0
  process.on('unhandledRejection', onUnhandled)
})

afterEach(() => {
  for (const m of managers) m.close()
  managers = []
  process.off('unhandledRejection', onUnhandled)
  vi.useRealTimers()
})

describe(TokenManager.name, () => {
  it('exchanges an ID token once and serves the cached JWT', async () => {
    const subject = idToken()
    const m = manager(
      idTokenSource(() => subject, 'fromTokenFile:/var/run/token'),
      { scope: 'write' },
    )
    const first = await m.getToken()
    expect(first).toMatchObject({
      kind: 'bearer',
      jti: 'jwt-1',
      scope: 'write',
      source: 'fromTokenFile:/var/run/token',
      expiresAt: new Date(Date.now() + 3600 * S),
    })
    expect(await m.getToken()).toBe(first)
    expect(hm.exchanges).toEqual([
      expect.objectContaining({ subject_token: subject, scope: 'write' }),
    ])
    expect(m.state).toBe('valid')
  })

  it('requests the ID token for HIVEMIND_AUDIENCE, else the endpoint, normalised', async () => {
    const seen: (string | undefined)[] = []
    const source = Object.assign(
      (o?: { audience?: string | undefined }) => {
        seen.push(o?.audience)
        return Promise.resolve<Credential>({ kind: 'bearer', token: 'hmsa_x', source: 's' })
      },
      { providerName: 'inline' },
    )
    await manager(source, { endpoint: `${ENDPOINT}/` }).getToken()
    await manager(source, { env: { HIVEMIND_AUDIENCE: 'https://Aud.example/' } }).getToken()
    expect(seen).toEqual([ENDPOINT, 'https://aud.example'])
  })

  it.each([
    [{ kind: 'bearer', token: 'hmsa_static', source: 'HIVEMIND_TOKEN' }, 'bearer', 'hmsa_static'],
    [{ kind: 'api-key', apiKey: 'hm-key', source: 'HIVEMIND_API_KEY' }, 'api-key', 'hm-key'],
  ] as const)('passes %o through without an exchange', async (credential, kind, token) => {
    const m = manager(provider(() => credential))
    await expect(m.getToken()).resolves.toMatchObject({ kind, token, source: credential.source })
    expect(hm.exchanges).toHaveLength(0)
  })

  it('runs exactly one exchange for 1,000 concurrent callers', async () => {
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    hm.respond(async (info) => {
      await gate
      return ok()(info)
    })
    const source = idTokenSource(() => idToken())
    const m = manager(source)
    const all = Promise.all(Array.from({ length: 1000 }, () => m.getToken()))
    await vi.advanceTimersByTimeAsync(0)
    release()
    const tokens = await all
    expect(new Set(tokens.map((t) => t.token)).size).toBe(1)
    expect(hm.exchanges).toHaveLength(1)
    expect(source.calls).toBe(1)
  })

  describe('refresh schedule', () => {
    it.each([0, 0.25, 0.5, 0.75, 0.999])(
      'refreshes at min(exp − 5 min, 80 %% TTL) minus jitter (random %s)',
      async (r) => {
        const m = manager(
          idTokenSource(() => idToken()),
          { random: () => r },
        )
        await m.getToken()
        // TTL 1 h: min(55 min, 48 min) = 48 min, minus up to 60 s of jitter.
        const at = 48 * MIN - r * 60 * S
        expect(at).toBeGreaterThanOrEqual(47 * MIN)
        expect(at).toBeLessThanOrEqual(48 * MIN)
        await vi.advanceTimersByTimeAsync(at - 5)
        expect(hm.exchanges).toHaveLength(1)
        await vi.advanceTimersByTimeAsync(10)
        expect(hm.exchanges).toHaveLength(2)
        expect(m.state).toBe('valid')
      },
    )

    it.each([
      [24 * 3600, 24 * 3600 * 0.8],
      [2 * 3600, 2 * 3600 * 0.8],
      [20 * 60, 15 * 60],
    ])('TTL %is: refresh window ends at %is', async (ttlS, windowEndS) => {
      hm.respond(ok(ttlS))
      const randoms = [0, 0.999]
      for (const r of randoms) {
        const m = manager(
          idTokenSource(() => idToken()),
          { random: () => r },
        )
        const before = hm.exchanges.length
        await m.getToken()
        const at = Math.max(windowEndS * S - r * 60 * S, ttlS * S * 0.5)
        await vi.advanceTimersByTimeAsync(at - 5)
        expect(hm.exchanges.length - before).toBe(1)
        await vi.advanceTimersByTimeAsync(10)
        expect(hm.exchanges.length - before).toBe(2)
        m.close()
      }
    })

    it('never refreshes before half the TTL', async () => {
      hm.respond(ok(600))
      // 10 min TTL: min(5 min, 8 min) − up to 60 s would be ~4 min; the floor is 5 min.
      const m = manager(
        idTokenSource(() => idToken()),
        { random: () => 0.999 },
      )
      await m.getToken()
      await vi.advanceTimersByTimeAsync(5 * MIN - 5)
      expect(hm.exchanges).toHaveLength(1)
      await vi.advanceTimersByTimeAsync(10)
      expect(hm.exchanges).toHaveLength(2)
    })

    it('with the default system clock, the timer ends the cached fast path on time', async () => {
      vi.useFakeTimers({
        now: new Date('2026-01-01T00:00:00Z'),
        toFake: [
          'setTimeout',
          'clearTimeout',
          'setInterval',
          'clearInterval',
          'Date',
          'performance',
        ],
      })
      const m = manager(
        idTokenSource(() => idToken()),
        { clock: undefined },
      )
      const first = await m.getToken()
      await vi.advanceTimersByTimeAsync(47.5 * MIN - 5)
      expect(await m.getToken()).toBe(first)
      expect(hm.exchanges).toHaveLength(1)
      await vi.advanceTimersByTimeAsync(10)
      expect(hm.exchanges).toHaveLength(2)
      expect((await m.getToken()).token).not.toBe(first.token)
      m.close()
      // Closed: the flag is gone, so an expired token is not served from the fast path.
      await vi.advanceTimersByTimeAsync(2 * 3600 * S)
      await expect(m.getToken()).rejects.toMatchObject({ code: 'ERR_CONFIGURATION' })
    })

    it('measures expiry on the monotonic clock, not the wall clock', async () => {
      let skew = 0
      const skewed: Clock = { now: () => Date.now() + skew, monotonicNow: () => Date.now() }
      const m = manager(
        idTokenSource(() => idToken()),
        { clock: skewed },
      )
      const first = await m.getToken()
      skew = 5 * 3600 * S // NTP jump or VM resume
      expect(await m.getToken()).toBe(first)
      expect(hm.exchanges).toHaveLength(1)
    })

    it.each([
      [600, true],
      [3600, false],
      [86_400, false],
      [90_000, true],
    ])('warns when expires_in=%i is outside [1 h, 24 h]: %s', async (ttl, warns) => {
      hm.respond(ok(ttl))
      await manager(idTokenSource(() => idToken())).getToken()
      const warned = logger.warn.mock.calls.some(([msg]) => String(msg).includes('outside'))
      expect(warned).toBe(warns)
    })

    it('close() clears its timers', async () => {
      const m = manager(idTokenSource(() => idToken()))
      await m.getToken()
      expect(vi.getTimerCount()).toBe(1)
      m.close()
      expect(vi.getTimerCount()).toBe(0)
      await expect(
        manager(idTokenSource(() => idToken()))
          .getToken()
          .then(() => undefined),
      ).resolves.toBeUndefined()
    })
  })

  describe('stale-while-revalidate', () => {
    it('serves the cached JWT while a refresh runs, until the hard expiry', async () => {
      // Generous timeouts so the held exchange stays in flight across the hard expiry.
      const client = new HiveMindClient({
        endpoint: ENDPOINT,
        fetch: hm.fetch,
        timeoutMs: 30 * MIN,
        deadlineMs: 60 * MIN,
        env: {},
      })
      const m = manager(
        idTokenSource(() => idToken()),
        { client },
      )
      const first = await m.getToken()
      let release!: () => void
      const gate = new Promise<void>((r) => (release = r))
      hm.respond(async (info) => {
        await gate
        return ok()(info)
      })
      // Past the refresh time (47.5 min with random 0.5): the timer started a refresh.
      await vi.advanceTimersByTimeAsync(48 * MIN)
      expect(m.state).toBe('refreshing')
      expect(await m.getToken()).toBe(first)
      // Past the hard expiry (59 min): callers wait for the refresh.
      await vi.advanceTimersByTimeAsync(11 * MIN + S)
      let settled: string | undefined
      const waiting = m.getToken().then((t) => (settled = t.token))
      await vi.advanceTimersByTimeAsync(0)
      expect(settled).toBeUndefined()
      release()
      await waiting
      expect(settled).not.toBe(first.token)
      expect(hm.exchanges).toHaveLength(2)
    })

    it('records background failures, never caches them, and raises no unhandled rejection', async () => {
      const m = manager(idTokenSource(() => idToken()))
      const first = await m.getToken()
      hm.respond(() =>
        Response.json({ error: 'invalid_grant', hivemind_error: 'policy_denied' }, { status: 400 }),
      )
      await vi.advanceTimersByTimeAsync(50 * MIN)
      expect(m.state).toBe('failed')
      expect(m.lastError).toMatchObject({ code: 'ERR_TOKEN_EXCHANGE_REJECTED', status: 400 })
      expect(logger.warn).toHaveBeenCalledWith(
        expect.stringContaining('refresh failed'),
        expect.objectContaining({ code: 'ERR_TOKEN_EXCHANGE_REJECTED', servingCachedToken: true }),
      )
      expect(await m.getToken()).toBe(first)
      // Past the hard expiry the failure reaches callers...
      await vi.advanceTimersByTimeAsync(10 * MIN)
      await expect(m.getToken()).rejects.toMatchObject({ code: 'ERR_TOKEN_EXCHANGE_REJECTED' })
      // ...but is not cached: the next call tries again.
      hm.respond(ok())
      const again = await m.getToken()
      expect(again.token).not.toBe(first.token)
      expect(m.state).toBe('valid')
      expect(m.lastError).toBeUndefined()
      await vi.advanceTimersByTimeAsync(0)
      expect(unhandled).toEqual([])
    })

    it('backs off between failing background refreshes', async () => {
      const m = manager(
        idTokenSource(() => idToken()),
        {
          backgroundRetryBaseMs: 10 * S,
          backgroundRetryMaxMs: 40 * S,
        },
      )
      await m.getToken()
      hm.respond(() => Response.json({ error: 'invalid_grant' }, { status: 400 }))
      // Refresh at 47.5 min fails; the next try waits 7.5 s (10 s with equal jitter, random 0.5).
      await vi.advanceTimersByTimeAsync(47.5 * MIN + 1)
      expect(hm.exchanges).toHaveLength(2)
      // Many callers in the refresh window do not hammer the server.
      for (let i = 0; i < 100; i++) await m.getToken()
      expect(hm.exchanges).toHaveLength(2)
      await vi.advanceTimersByTimeAsync(7.5 * S)
      expect(hm.exchanges).toHaveLength(3)
      // Then 15 s (20 s base), then 30 s (40 s cap).
      await vi.advanceTimersByTimeAsync(15 * S)
      expect(hm.exchanges).toHaveLength(4)
      await vi.advanceTimersByTimeAsync(29 * S)
      expect(hm.exchanges).toHaveLength(4)
      await vi.advanceTimersByTimeAsync(1 * S)
      expect(hm.exchanges).toHaveLength(5)
      expect(unhandled).toEqual([])
    })
  })

  describe('replay guard', () => {
    it('never resends an ID token: cached JWT → exhausted → resumes on a fresh token', async () => {
      let current = idToken({ exp: Math.floor(Date.now() / 1000) + 48 * 3600 })
      const source = Object.assign(
        provider(() => ({
          kind: 'id-token',
          token: current,
          source: 'MODAL_IDENTITY_TOKEN',
          refreshable: 'never',
        })),
        { providerName: 'fromModal' },
      )
      const changes: TokenManagerStateChange[] = []
      const onStateChange = vi.fn()
      const m = manager(source, { onStateChange, sourcePollMs: 30 * S })
      m.on('state', (c) => changes.push(c))

      const first = await m.getToken()
      // Refresh window: the source yields the same token, the server is not called.
      await vi.advanceTimersByTimeAsync(50 * MIN)
      expect(source.calls).toBeGreaterThan(1)
      expect(hm.exchanges).toHaveLength(1)
      expect(await m.getToken()).toBe(first)
      expect(m.state).toBe('valid')

      // After the hard expiry: typed exhaustion naming the source and the fix.
      await vi.advanceTimersByTimeAsync(10 * MIN)
      const error = await m.getToken().catch((e: unknown) => e)
      expect(error).toMatchObject({
        name: 'SubjectTokenExhaustedError',
        code: 'ERR_SUBJECT_TOKEN_EXHAUSTED',
        source: 'MODAL_IDENTITY_TOKEN',
        message: expect.stringMatching(/MODAL_IDENTITY_TOKEN.*restart/s),
      })
      expect(m.state).toBe('exhausted')
      expect(hm.exchanges).toHaveLength(1)
      await expect(m.getToken()).rejects.toMatchObject({ code: 'ERR_SUBJECT_TOKEN_EXHAUSTED' })
      expect(hm.exchanges).toHaveLength(1)

      // A fresh ID token appears; the poll picks it up without any caller.
      current = idToken()
      await vi.advanceTimersByTimeAsync(30 * S)
      expect(m.state).toBe('valid')
      expect(hm.exchanges).toHaveLength(2)
      expect((await m.getToken()).token).not.toBe(first.token)

      const sequence = changes.map((c) => `${c.previous}→${c.state}`)
      expect(sequence).toEqual([
        'idle→refreshing',
        'refreshing→valid',
        'valid→exhausted',
        'exhausted→refreshing',
        'refreshing→valid',
      ])
      expect(changes[2]?.error).toMatchObject({ code: 'ERR_SUBJECT_TOKEN_EXHAUSTED' })
      expect(onStateChange).toHaveBeenCalledTimes(5)
      expect(unhandled).toEqual([])
    })

    it('treats a token without jti by its claims hash', async () => {
      const subject = idToken({ jti: undefined })
      const m = manager(
        idTokenSource(() => subject),
        { sourcePollMs: 0 },
      )
      await m.getToken()
      await vi.advanceTimersByTimeAsync(61 * MIN)
      await expect(m.getToken()).rejects.toMatchObject({ code: 'ERR_SUBJECT_TOKEN_EXHAUSTED' })
      expect(hm.exchanges).toHaveLength(1)
    })

    it('marks the token used before sending: a timed-out exchange is never replayed', async () => {
      const subject = idToken()
      hm.respond(
        ({ signal }) =>
          new Promise<Response>((_, reject) =>
            signal.addEventListener('abort', () => reject(signal.reason as Error)),
          ),
      )
      const source = idTokenSource(() => subject, '/var/run/secrets/hivemind/token')
      const m = manager(source, { sourcePollMs: 0 })
      const result = m.getToken().catch((e: unknown) => e)
      await vi.advanceTimersByTimeAsync(60 * S)
      expect(await result).toMatchObject({
        code: 'ERR_SUBJECT_TOKEN_EXHAUSTED',
        hint: expect.stringContaining('kubelet'),
      })
      // One send; the retry asked the source again and got the same token.
      expect(hm.exchanges).toHaveLength(1)
      expect(source.calls).toBe(2)
    })

    it('resends the same token after a 503 (the server never claimed it)', async () => {
      const subject = idToken()
      hm.respond((info) =>
        info.n === 1
          ? Response.json({ error: 'temporarily_unavailable' }, { status: 503 })
          : ok()(info),
      )
      const m = manager(idTokenSource(() => subject))
      const result = m.getToken()
      await vi.advanceTimersByTimeAsync(10 * S)
      await expect(result).resolves.toMatchObject({ kind: 'bearer' })
      expect(hm.exchanges.map((f) => f.subject_token)).toEqual([subject, subject])
    })

    it('repeats a denial for the same token without calling the server again', async () => {
      const subject = idToken()
      hm.respond(() =>
        Response.json({ error: 'invalid_grant', hivemind_error: 'policy_denied' }, { status: 400 }),
      )
      const m = manager(idTokenSource(() => subject))
      await expect(m.getToken()).rejects.toMatchObject({ hivemindError: 'policy_denied' })
      await expect(m.getToken()).rejects.toMatchObject({ hivemindError: 'policy_denied' })
      expect(hm.exchanges).toHaveLength(1)
      expect(m.state).toBe('failed')
    })
  })

  it('never logs a token', async () => {
    const subject = idToken()
    const m = manager(idTokenSource(() => subject))
    const { token } = await m.getToken()
    const logged = JSON.stringify([logger.debug.mock.calls, logger.warn.mock.calls])
    expect(logged).not.toContain(subject)
    expect(logged).not.toContain(token)
    expect(logged).toContain('sha256:')
  })
})
