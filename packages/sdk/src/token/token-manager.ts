import { createHash } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { z } from 'zod'
import type { Credential, CredentialProvider, Logger } from '../credentials/types.js'
import {
  ConfigurationError,
  HiveMindApiError,
  SubjectTokenExhaustedError,
  type HiveMindError,
} from '../errors.js'
import { HiveMindClient } from '../http/client.js'
import { systemClock, type Clock } from '../internal/clock.js'
import { fingerprint } from '../internal/fingerprint.js'
import { peekClaims } from '../internal/jwt.js'
import { withRetry } from '../internal/retry.js'
import { normalizeAudience } from '../schemas/audience.js'
import { ENV, TOKEN_TTL_BOUNDS } from '../schemas/env.js'
import type { TokenExchangeResponse } from '../schemas/oauth.js'
import { replayKey } from '../schemas/replay-key.js'

/**
 * Serialisable options of {@link TokenManager} with their defaults: where to exchange,
 * and the refresh schedule. Parsed once in the constructor.
 *
 * The refresh runs at `min(expiry − refreshWindowMs, refreshFraction × TTL)` minus a
 * random jitter up to `jitterMaxMs`, never before `minFraction × TTL`. Callers keep
 * the cached JWT until `expiry − hardExpiryMarginMs`.
 *
 * @example
 * new TokenManager({ provider: defaultChain(), endpoint: 'https://hivemind.example.com', jitterMaxMs: 30_000 })
 * @see https://www.rfc-editor.org/rfc/rfc8693
 */
export const TokenManagerOptions = z.object({
  /** Server URL; ignored when `client` is given. @default process.env.HIVEMIND_ENDPOINT */
  endpoint: z.string().optional(),
  /** Audience the ID token is requested for. @default process.env.HIVEMIND_AUDIENCE, else the endpoint URL (normalised) */
  audience: z.string().min(1).optional(),
  /** Space-separated scopes to request; may only narrow the service account's. */
  scope: z.string().min(1).optional(),
  /** Refresh this long before expiry (milliseconds). @default 300000 */
  refreshWindowMs: z.number().int().min(0).default(300_000),
  /** ...or at this fraction of the TTL, whichever is earlier. @default 0.8 */
  refreshFraction: z.number().gt(0).max(1).default(0.8),
  /** Refresh up to this much earlier, at random, so a fleet does not refresh in step (milliseconds). @default 60000 */
  jitterMaxMs: z.number().int().min(0).default(60_000),
  /** Never refresh before this fraction of the TTL. @default 0.5 */
  minFraction: z.number().min(0).max(1).default(0.5),
  /** Stop serving the cached JWT this long before it expires and wait for the refresh (milliseconds). @default 60000 */
  hardExpiryMarginMs: z.number().int().min(0).default(60_000),
  /** How often to look at a source that returned an already-exchanged ID token again (milliseconds; 0 = only on getToken()). @default 10000 */
  sourcePollMs: z.number().int().min(0).default(10_000),
  /** First delay between failed background refreshes; doubles up to `backgroundRetryMaxMs`. @default 5000 */
  backgroundRetryBaseMs: z.number().int().positive().default(5_000),
  /** Cap on the delay between failed background refreshes (milliseconds). @default 60000 */
  backgroundRetryMaxMs: z.number().int().positive().default(60_000),
  /** How often to re-read a static bearer or API key source (milliseconds). @default 300000 */
  passThroughRecheckMs: z.number().int().positive().default(300_000),
}) satisfies z.ZodType<unknown, TokenManagerOptionsInput>

/**
 * Options of {@link TokenManager} as a caller writes them; every field is optional.
 * Declared as an interface (bound to the schema below) so the field docs survive in
 * the published `.d.ts`, where types inferred from zod lose them (colinhacks/zod#3079).
 */
export interface TokenManagerOptionsInput {
  /** Server URL; ignored when `client` is given. @default process.env.HIVEMIND_ENDPOINT */
  endpoint?: string | undefined
  /** Audience the ID token is requested for. @default process.env.HIVEMIND_AUDIENCE, else the endpoint URL (normalised) */
  audience?: string | undefined
  /** Space-separated scopes to request; may only narrow the service account's. */
  scope?: string | undefined
  /** Refresh this long before expiry (milliseconds). @default 300000 */
  refreshWindowMs?: number | undefined
  /** ...or at this fraction of the TTL, whichever is earlier. @default 0.8 */
  refreshFraction?: number | undefined
  /** Refresh up to this much earlier, at random, so a fleet does not refresh in step (milliseconds). @default 60000 */
  jitterMaxMs?: number | undefined
  /** Never refresh before this fraction of the TTL. @default 0.5 */
  minFraction?: number | undefined
  /** Stop serving the cached JWT this long before it expires and wait for the refresh (milliseconds). @default 60000 */
  hardExpiryMarginMs?: number | undefined
  /** How often to look at a source that returned an already-exchanged ID token again (milliseconds; 0 = only on getToken()). @default 10000 */
  sourcePollMs?: number | undefined
  /** First delay between failed background refreshes; doubles up to `backgroundRetryMaxMs`. @default 5000 */
  backgroundRetryBaseMs?: number | undefined
  /** Cap on the delay between failed background refreshes (milliseconds). @default 60000 */
  backgroundRetryMaxMs?: number | undefined
  /** How often to re-read a static bearer or API key source (milliseconds). @default 300000 */
  passThroughRecheckMs?: number | undefined
}

type ResolvedOptions = z.output<typeof TokenManagerOptions>

/**
 * Where the manager is in its life:
 * - `idle`: nothing fetched yet;
 * - `valid`: a usable token is cached;
 * - `refreshing`: an exchange is on the wire;
 * - `exhausted`: the source keeps returning an ID token that was already exchanged and
 *   the JWT bought with it expired; resumes by itself when a fresh ID token appears;
 * - `failed`: the last refresh failed (a still-valid JWT is served until its hard expiry;
 *   the next `getToken()` tries again).
 */
export type TokenManagerState = 'idle' | 'valid' | 'refreshing' | 'exhausted' | 'failed'

/** Payload of the `state` event. */
export interface TokenManagerStateChange {
  state: TokenManagerState
  previous: TokenManagerState
  /** Why, for `failed` and `exhausted`. */
  error: Error | undefined
}

/**
 * Events of {@link TokenManager}, in the node:events map shape.
 *
 * @example
 * manager.on('state', ({ state, error }) => { if (state === 'exhausted') pauseSync(error) })
 */
export interface TokenManagerEvents {
  state: [change: TokenManagerStateChange]
}

/**
 * A credential ready to send. `kind: 'bearer'` goes in `Authorization: Bearer`,
 * `kind: 'api-key'` in `X-API-Key`.
 */
export interface AccessToken {
  readonly token: string
  readonly kind: 'bearer' | 'api-key'
  /** Wall-clock expiry, when known (exchanged JWTs, JWT bearers). */
  readonly expiresAt: Date | undefined
  /** Granted scopes (space-separated), when the server said. */
  readonly scope: string | undefined
  /** `jti` of the JWT, when it has one. */
  readonly jti: string | undefined
  /** Where the credential came from (the provider's `source`). */
  readonly source: string
}

/**
 * Everything {@link TokenManager} accepts.
 *
 * @example
 * const init: TokenManagerInit = { provider: fromTokenFile(), endpoint: 'https://hivemind.example.com' }
 */
export type TokenManagerInit = TokenManagerOptionsInput & {
  /** Required. Where ID tokens (or static credentials) come from, e.g. `defaultChain()`. */
  provider: CredentialProvider
  /** Optional. Client to exchange with; default one built from `endpoint`, `fetch`, `logger`. */
  client?: HiveMindClient | undefined
  /** Optional. Injectable time source; default `Date.now` / `performance.now`. */
  clock?: Clock | undefined
  /** Optional. Random source in [0, 1) for jitter; default `Math.random`. */
  random?: (() => number) | undefined
  /** Optional. Logs fingerprints, `jti` and `exp` only, never a token. */
  logger?: Logger | undefined
  /** Optional. Called on every state change (same as `on('state', …)`). */
  onStateChange?: ((change: TokenManagerStateChange) => void) | undefined
  /** Optional. Defaults to `process.env`. */
  env?: Readonly<Record<string, string | undefined>> | undefined
  /** Optional. fetch for the default client. */
  fetch?: typeof fetch | undefined
}

interface Entry {
  value: AccessToken
  /** Pre-resolved, so the cached path allocates nothing. */
  promise: Promise<AccessToken>
  /** Monotonic milliseconds. */
  refreshAt: number
  hardExpiry: number
}

type AttemptResult = { fresh: Entry } | { same: AccessToken }

const LOG = '@hivemind/sdk - TokenManager'
const noop = (): void => {}

/**
 * Keeps a HiveMind credential ready: exchanges ID tokens from a provider for JWTs
 * (RFC 8693), caches them, refreshes before expiry with jitter, serves the cached JWT
 * while a background refresh runs, runs one exchange at a time however many callers
 * wait, and never sends the same ID token twice. Bearer and API-key credentials pass
 * through unchanged.
 *
 * @example
 * import { TokenManager, defaultChain } from '@hivemind/sdk'
 * const manager = new TokenManager({ provider: defaultChain(), endpoint: 'https://hivemind.example.com' })
 * manager.on('state', ({ state }) => console.log('token state', state))
 * const { token } = await manager.getToken()
 * @see https://www.rfc-editor.org/rfc/rfc8693
 */
export class TokenManager {
  /** Audience ID tokens are requested for (normalised). */
  readonly audience: string
  readonly #options: ResolvedOptions
  readonly #provider: CredentialProvider
  readonly #client: HiveMindClient
  readonly #clock: Clock
  readonly #random: () => number
  readonly #logger: Logger | undefined
  readonly #events = new EventEmitter<TokenManagerEvents>()
  readonly #abort = new AbortController()
  #entry: Entry | undefined
  #inflight: Promise<AccessToken> | undefined
  /** Replay key of the last ID token sent, and the denial it got if any. */
  #used: { key: string; denial?: HiveMindError | undefined } | undefined
  #state: TokenManagerState = 'idle'
  #lastError: Error | undefined
  #failures = 0
  #nextBackgroundAt = 0
  #timer: NodeJS.Timeout | undefined
  #closed = false
  /**
   * True from an install until the refresh timer fires, so the cached path needs no
   * clock read (the benchmark's 2× goal). Timers and `performance.now()` run on the same
   * monotonic clock; only with the system clock, since an injected one may move on its own.
   */
  #fresh = false

  constructor(init: TokenManagerInit) {
    const parsed = TokenManagerOptions.safeParse(init)
    if (!parsed.success) {
      throw new ConfigurationError(`Invalid TokenManager options: ${z.prettifyError(parsed.error)}`)
    }
    if (typeof init.provider !== 'function') {
      throw new ConfigurationError('TokenManager needs a `provider` (e.g. defaultChain()).')
    }
    const env = init.env ?? process.env
    this.#options = parsed.data
    this.#provider = init.provider
    this.#clock = init.clock ?? systemClock
    this.#random = init.random ?? Math.random
    this.#logger = init.logger
    this.#client =
      init.client ??
      new HiveMindClient({
        endpoint: parsed.data.endpoint,
        fetch: init.fetch,
        logger: init.logger,
        env,
        clock: this.#clock,
        random: this.#random,
      })
    this.audience = normalizeAudience(
      parsed.data.audience ?? nonEmpty(env[ENV.audience]) ?? this.#client.endpoint,
    )
    if (init.onStateChange) this.#events.on('state', init.onStateChange)
  }

  /** Current state; see {@link TokenManagerState}. */
  get state(): TokenManagerState {
    return this.#state
  }

  /** The error of the last failed refresh, cleared by the next success. */
  get lastError(): Error | undefined {
    return this.#lastError
  }

  /**
   * A credential to send now. Resolves from cache without I/O while the token is fresh,
   * and also after the refresh time (a background refresh starts) until the hard expiry;
   * past it, waits for the one exchange in flight.
   *
   * Rejects with `SubjectTokenExhaustedError` (`ERR_SUBJECT_TOKEN_EXHAUSTED`) when the
   * source only has an already-exchanged ID token and the JWT expired, with
   * `HiveMindApiError` when the server denies the exchange, or with the provider's error.
   * Failures are never cached: the next call tries again.
   *
   * @example
   * const { token } = await manager.getToken()
   * await fetch(url, { headers: { authorization: `Bearer ${token}` } })
   */
  getToken(): Promise<AccessToken> {
    // Hottest path: a flag the refresh timer clears, and a pre-resolved promise.
    if (this.#fresh) return this.#entry!.promise
    const entry = this.#entry
    if (entry !== undefined) {
      const now = this.#clock.monotonicNow()
      if (now < entry.refreshAt) return entry.promise
      if (now < entry.hardExpiry) {
        if (this.#inflight === undefined && now >= this.#nextBackgroundAt) this.#background()
        return entry.promise
      }
    }
    if (this.#closed) {
      return Promise.reject(new ConfigurationError('TokenManager is closed.'))
    }
    return this.#inflight ?? this.#startRefresh()
  }

  /**
   * Listens to state changes.
   *
   * @example
   * manager.on('state', ({ state, previous, error }) => log(previous, '→', state, error?.message))
   */
  on(event: 'state', listener: (...args: TokenManagerEvents['state']) => void): this {
    this.#events.on(event, listener)
    return this
  }

  /** Removes a listener added with {@link TokenManager.on}. */
  off(event: 'state', listener: (...args: TokenManagerEvents['state']) => void): this {
    this.#events.off(event, listener)
    return this
  }

  /**
   * Stops timers and aborts an exchange in flight. A cached token is still returned;
   * anything that would need the network rejects.
   *
   * @example
   * process.on('SIGTERM', () => manager.close())
   */
  close(): void {
    this.#closed = true
    this.#fresh = false
    this.#clearTimer()
    this.#abort.abort(new ConfigurationError('TokenManager is closed.'))
  }

  /** Same as {@link TokenManager.close}. */
  dispose(): void {
    this.close()
  }

  /** `using manager = new TokenManager(…)` closes it at the end of the scope. */
  [Symbol.dispose](): void {
    this.close()
  }

  #background(): void {
    this.#startRefresh().catch(noop)
  }

  #startRefresh(): Promise<AccessToken> {
    const promise = this.#refresh().finally(() => {
      if (this.#inflight === promise) this.#inflight = undefined
    })
    this.#inflight = promise
    // Background callers drop the promise; the error is recorded in state instead.
    promise.catch(noop)
    return promise
  }

  async #refresh(): Promise<AccessToken> {
    const signal = this.#abort.signal
    try {
      const result = await withRetry((_attempt, timeoutMs) => this.#attempt(timeoutMs, signal), {
        policy: this.#client.retryPolicy,
        clock: this.#clock,
        random: this.#random,
        signal,
        onRetry: ({ attempt, delayMs, error }) => {
          this.#logger?.debug(`${LOG} retrying exchange`, {
            attempt: attempt + 1,
            delayMs,
            code: (error as { code?: unknown }).code,
          })
        },
      })
      if ('same' in result) return result.same
      this.#install(result.fresh)
      return result.fresh.value
    } catch (error) {
      if (!signal.aborted) this.#recordFailure(error as Error)
      throw error
    }
  }

  /** One attempt: a fresh provider call every time (GitHub ID tokens live ~5 minutes). */
  async #attempt(timeoutMs: number, signal: AbortSignal): Promise<AttemptResult> {
    const credential = await this.#provider({ audience: this.audience, signal })
    if (credential.kind !== 'id-token') return { fresh: this.#passThrough(credential) }

    const claims = peekClaims(credential.token)
    const key = claims
      ? replayKey(claims)
      : `raw:${createHash('sha256').update(credential.token).digest('hex')}`
    if (this.#used?.key === key) return { same: this.#sameSubjectToken(credential) }

    const previous = this.#used
    // Marked before sending: a request whose outcome we never learn is never replayed.
    this.#used = { key }
    this.#setState('refreshing', undefined)
    const sentAt = this.#clock.monotonicNow()
    const sentWall = this.#clock.now()
    let response: TokenExchangeResponse
    try {
      response = await this.#client.exchangeOnce(credential.token, {
        scope: this.#options.scope,
        signal,
        timeoutMs,
      })
    } catch (error) {
      if (error instanceof HiveMindApiError) {
        // The server answers 408/429/503 before its replay claim, so the token is unspent.
        if (error.status === 408 || error.status === 429 || error.status === 503) {
          this.#used = previous
        } else if (error.status < 500) {
          this.#used = { key, denial: error }
        }
      }
      throw error
    }
    return { fresh: this.#exchanged(response, credential, sentAt, sentWall) }
  }

  #exchanged(
    response: TokenExchangeResponse,
    credential: Extract<Credential, { kind: 'id-token' }>,
    sentAt: number,
    sentWall: number,
  ): Entry {
    const o = this.#options
    const { minSeconds, maxSeconds } = TOKEN_TTL_BOUNDS
    if (response.expires_in < minSeconds || response.expires_in > maxSeconds) {
      this.#logger?.warn(
        `${LOG} server returned expires_in=${response.expires_in}s, outside [${minSeconds}, ${maxSeconds}]s; check the service account's max_ttl_seconds and the server's TTL clamp`,
      )
    }
    // Measured from when we sent the request, on the monotonic clock: conservative,
    // and immune to a skewed or jumping wall clock.
    const expiresInMs = response.expires_in * 1000
    const ttl = Math.min(expiresInMs, maxSeconds * 1000)
    const offset = Math.max(
      Math.min(ttl - o.refreshWindowMs, ttl * o.refreshFraction) - this.#random() * o.jitterMaxMs,
      ttl * o.minFraction,
    )
    const refreshAt = sentAt + offset
    const hardExpiry = Math.max(sentAt + expiresInMs - o.hardExpiryMarginMs, refreshAt)
    const jwtClaims = peekClaims(response.access_token)
    const value: AccessToken = Object.freeze({
      token: response.access_token,
      kind: 'bearer' as const,
      expiresAt: new Date(sentWall + expiresInMs),
      scope: response.scope,
      jti: typeof jwtClaims?.jti === 'string' ? jwtClaims.jti : undefined,
      source: credential.source,
    })
    this.#logger?.debug(`${LOG} exchanged`, {
      source: credential.source,
      subject: fingerprint(credential.token),
      token: fingerprint(response.access_token),
      jti: value.jti,
      exp: value.expiresAt?.toISOString(),
      refreshInMs: Math.round(offset),
    })
    return { value, promise: Promise.resolve(value), refreshAt, hardExpiry }
  }

  #passThrough(credential: Extract<Credential, { kind: 'bearer' | 'api-key' }>): Entry {
    const now = this.#clock.monotonicNow()
    const token = credential.kind === 'bearer' ? credential.token : credential.apiKey
    const exp = credential.kind === 'bearer' ? peekClaims(token)?.exp : undefined
    const jti = credential.kind === 'bearer' ? peekClaims(token)?.jti : undefined
    let hardExpiry = Number.POSITIVE_INFINITY
    if (typeof exp === 'number') {
      hardExpiry = now + exp * 1000 - this.#clock.now() - this.#options.hardExpiryMarginMs
    }
    const value: AccessToken = Object.freeze({
      token,
      kind: credential.kind,
      expiresAt: typeof exp === 'number' ? new Date(exp * 1000) : undefined,
      scope: undefined,
      jti: typeof jti === 'string' ? jti : undefined,
      source: credential.source,
    })
    // A static credential is re-read now and then, so a rotated HIVEMIND_TOKEN is picked up.
    return {
      value,
      promise: Promise.resolve(value),
      refreshAt: Math.min(now + this.#options.passThroughRecheckMs, hardExpiry),
      hardExpiry,
    }
  }

  /** The source gave back the ID token we already sent: never send it again. */
  #sameSubjectToken(credential: Extract<Credential, { kind: 'id-token' }>): AccessToken {
    const now = this.#clock.monotonicNow()
    const entry = this.#entry
    if (entry !== undefined && now < entry.hardExpiry) {
      this.#logger?.debug(
        `${LOG} source returned the already-exchanged ID token; keeping the cached JWT`,
        {
          source: credential.source,
          subject: fingerprint(credential.token),
        },
      )
      const poll = this.#options.sourcePollMs
      this.#nextBackgroundAt = now + poll
      // Look again later; at the latest at the hard expiry, to report exhaustion promptly.
      this.#arm(poll > 0 ? Math.min(now + poll, entry.hardExpiry) : entry.hardExpiry)
      return entry.value
    }
    if (this.#used?.denial) throw this.#used.denial
    throw exhaustedError(this.#provider.providerName, credential)
  }

  #install(entry: Entry): void {
    this.#entry = entry
    this.#failures = 0
    this.#nextBackgroundAt = 0
    this.#setState('valid', undefined)
    this.#arm(entry.refreshAt)
    this.#fresh = this.#clock === systemClock && this.#timer !== undefined
  }

  #recordFailure(error: Error): void {
    const now = this.#clock.monotonicNow()
    const entry =
      this.#entry !== undefined && now < this.#entry.hardExpiry ? this.#entry : undefined
    if (entry === undefined) this.#entry = undefined
    if (error instanceof SubjectTokenExhaustedError) {
      if (this.#state !== 'exhausted') this.#logger?.warn(`${LOG} ${error.message}`)
      this.#setState('exhausted', error)
      if (this.#options.sourcePollMs > 0) this.#arm(now + this.#options.sourcePollMs)
      return
    }
    this.#failures++
    const o = this.#options
    const delay = Math.min(
      o.backgroundRetryMaxMs,
      o.backgroundRetryBaseMs * 2 ** (this.#failures - 1),
    )
    // Equal jitter: at least half the delay, so a failing fleet still spreads out.
    this.#nextBackgroundAt = now + delay / 2 + (this.#random() * delay) / 2
    this.#logger?.warn(`${LOG} refresh failed`, {
      code: (error as { code?: unknown }).code,
      message: error.message,
      failures: this.#failures,
      servingCachedToken: entry !== undefined,
    })
    this.#setState('failed', error)
    if (entry !== undefined) this.#arm(Math.min(this.#nextBackgroundAt, entry.hardExpiry))
  }

  #setState(state: TokenManagerState, error: Error | undefined): void {
    if (state === 'valid') this.#lastError = undefined
    else if (error !== undefined) this.#lastError = error
    if (state === this.#state) return
    const previous = this.#state
    this.#state = state
    try {
      this.#events.emit('state', { state, previous, error })
    } catch (listenerError) {
      // A throwing listener must not break token handling for everybody else.
      this.#logger?.error(`${LOG} state listener threw`, listenerError)
    }
  }

  #arm(atMonotonic: number): void {
    if (this.#closed) return
    this.#clearTimer()
    const delay = Math.max(0, Math.min(atMonotonic - this.#clock.monotonicNow(), 2 ** 31 - 1))
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#fresh = false
      if (!this.#closed && this.#inflight === undefined) this.#background()
    }, delay)
    // A token manager never keeps a process alive on its own.
    this.#timer.unref()
  }

  #clearTimer(): void {
    this.#fresh = false
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value
}

function exhaustedError(
  providerName: string,
  credential: Extract<Credential, { kind: 'id-token' }>,
): SubjectTokenExhaustedError {
  const where = `${providerName} ${credential.source}`.toLowerCase()
  let hint: string
  if (where.includes('modal')) {
    hint = `${ENV.modalIdentityToken} is fixed for the container's life and was already exchanged: restart the container (or function) for a fresh identity token, or raise the service account's max_ttl_seconds so one JWT covers the run.`
  } else if (where.includes('github')) {
    hint =
      'GitHub mints a fresh ID token per request, so the same one means something caches it: give the manager fromGitHubActions() itself.'
  } else if (where.includes('file') || credential.source.includes('/')) {
    hint = `The token file was not rotated: check that the projected service-account token volume is mounted and the kubelet refreshes it (expirationSeconds), or that whatever writes ${ENV.oidcTokenFile} rewrites it before the HiveMind JWT expires.`
  } else {
    hint =
      'The source returned the same ID token again: it must supply a fresh one (a new jti) before the HiveMind JWT expires.'
  }
  return new SubjectTokenExhaustedError(
    credential.source,
    `The ID token from ${credential.source} (${providerName}) was already exchanged and the HiveMind JWT bought with it has expired; waiting for a fresh ID token. ${hint}`,
    { hint },
  )
}
