import ky, { isNetworkError, isTimeoutError, type KyInstance } from 'ky'
import { z } from 'zod'
import type { CredentialProvider, Logger } from '../credentials/types.js'
import {
  ConfigurationError,
  HiveMindApiError,
  HiveMindNetworkError,
  ResponseValidationError,
} from '../errors.js'
import { systemClock, type Clock } from '../internal/clock.js'
import { proxyAwareFetch } from '../internal/fetch.js'
import { redact, safeUrl } from '../internal/redact.js'
import { parseRetryAfter, withRetry, type RetryPolicy } from '../internal/retry.js'
import { ApiErrorBody, HealthResponse, MeResponse } from '../schemas/api.js'
import { ENV } from '../schemas/env.js'
import {
  BatchUploadResponse,
  EventList,
  SearchResponse,
  SessionList,
  SessionRecord,
  StatsResponse,
  type BatchUploadRequest,
  type EventListQuery,
  type SearchQuery,
  type SessionListQuery,
  type StatsQuery,
} from '../schemas/sessions-api.js'
import {
  GRANT_TYPE_TOKEN_EXCHANGE,
  OAuthErrorBody,
  TOKEN_TYPE_ID_TOKEN,
  TokenExchangeResponse,
  type TokenExchangeRequest,
} from '../schemas/oauth.js'
import { TokenManager, type AccessToken } from '../token/token-manager.js'

/**
 * Serialisable options of {@link HiveMindClient}, with their defaults. Parsed once in
 * the constructor; hooks that are functions (`fetch`, `logger`, `auth`) sit beside them
 * in {@link HiveMindClientInit}.
 *
 * @example
 * const client = new HiveMindClient({ endpoint: 'https://hivemind.example.com', retries: 5 })
 * @see https://www.rfc-editor.org/rfc/rfc8693 (token exchange)
 */
/** One encoder for request bodies (Node's Buffer is not in every runtime). */
const ENCODER = new TextEncoder()

export const HiveMindClientOptions = z.object({
  /** Server URL, e.g. `https://hivemind.example.com`. @default process.env.HIVEMIND_ENDPOINT */
  endpoint: z.string().optional(),
  /** Timeout of one HTTP attempt (milliseconds). @default 10000 */
  timeoutMs: z.number().int().positive().default(10_000),
  /** Budget of a whole call, retries and backoff included (milliseconds). @default 30000 */
  deadlineMs: z.number().int().positive().default(30_000),
  /** Retries after the first attempt, for network errors, timeouts, 408, 429 and 5xx. @default 3 */
  retries: z.number().int().min(0).default(3),
  /** Backoff base: attempt n sleeps a random time in [0, min(max, base·2ⁿ)]. @default 250 */
  retryBaseDelayMs: z.number().int().min(0).default(250),
  /** Backoff cap per sleep (milliseconds). @default 5000 */
  retryMaxDelayMs: z.number().int().min(0).default(5_000),
  /** Cap on a server's `Retry-After` (milliseconds). @default 30000 */
  maxRetryAfterMs: z.number().int().min(0).default(30_000),
  /** `User-Agent` header. @default '@hivemind/sdk' */
  userAgent: z.string().min(1).default('@hivemind/sdk'),
})

/** Options as a caller writes them (every field optional). */
export type HiveMindClientOptionsInput = z.input<typeof HiveMindClientOptions>
type ResolvedClientOptions = z.output<typeof HiveMindClientOptions>

/**
 * How the client authenticates API calls (`/oauth/token` never needs it):
 * a {@link TokenManager}, a static bearer (`hmsa_…`, `hmpat_…`, a JWT), a person's
 * `hm-…` API key sent as `X-API-Key`, or any credential provider (ID tokens from it
 * are exchanged through an internal token manager).
 *
 * @example
 * new HiveMindClient({ auth: { apiKey: process.env.HIVEMIND_API_KEY! } })
 */
export type ClientAuth =
  | { tokenManager: Pick<TokenManager, 'getToken'> }
  | { token: string }
  | { apiKey: string }
  | { provider: CredentialProvider }

/**
 * Everything {@link HiveMindClient} accepts.
 *
 * @example
 * const init: HiveMindClientInit = { endpoint: 'https://hivemind.example.com', auth: { token } }
 */
export type HiveMindClientInit = HiveMindClientOptionsInput & {
  /** Optional. No auth: only public routes (`health`, `exchange`) work. */
  auth?: ClientAuth | undefined
  /** Optional. Default: global fetch, through `HTTPS_PROXY` / `NO_PROXY` when set. */
  fetch?: typeof fetch | undefined
  /** Optional. Retries and failures are logged at debug level, never with a token. */
  logger?: Logger | undefined
  /** Optional. Defaults to `process.env`. */
  env?: Readonly<Record<string, string | undefined>> | undefined
  /** Optional. Injectable time source (tests). */
  clock?: Clock | undefined
  /** Optional. Random source in [0, 1) for backoff jitter (tests). */
  random?: (() => number) | undefined
}

/** Per-call options of {@link HiveMindClient.exchange}. */
export interface ExchangeOptions {
  /** RFC 8693 `audience` of the issued token; only sent when given. */
  audience?: string | undefined
  /** Space-separated scopes; may only narrow the service account's. */
  scope?: string | undefined
  signal?: AbortSignal | undefined
}

type CallKind = 'exchange' | 'api'

interface RequestSpec<S extends z.ZodType> {
  kind: CallKind
  method: 'GET' | 'POST'
  path: string
  schema: S
  /** A form, or JSON already encoded (sent with `content-type: application/json`). */
  body?: URLSearchParams | Uint8Array | undefined
  /** JSON request body. */
  json?: unknown
  /** Query string parameters (undefined values are left out). */
  query?: Readonly<Record<string, string | number | undefined>> | undefined
  auth: boolean
  signal?: AbortSignal | undefined
  /** Statuses whose body is still the answer (health is 503 with the same body). */
  acceptStatus?: number | undefined
  /** Set once an attempt may have reached the server without us seeing the answer. */
  outcome?: { unknown: boolean } | undefined
}

const PATH_TOKEN = 'oauth/token'
const PATH_HEALTH = 'api/v1/health'
const PATH_ME = 'api/v1/me'
const PATH_BATCH = 'api/v1/sessions/batch'
const PATH_SESSIONS = 'api/v1/sessions'
const PATH_SEARCH = 'api/v1/search'
const PATH_STATS = 'api/v1/stats'

/** Per-call options of the API methods. */
export interface CallOptions {
  signal?: AbortSignal | undefined
}

/**
 * Typed client of the HiveMind server: RFC 8693 token exchange, health, whoami, and the
 * sessions API (batch upload, list, events, search, stats).
 * Retries network errors, timeouts, 408, 429 (honouring `Retry-After`) and 5xx with
 * full-jitter backoff inside an overall deadline; never retries 400/401/403 denials.
 * Errors are {@link HiveMindApiError} (status, request, request id, OAuth `error`,
 * `hivemind_error`, hint), `ResponseValidationError` or `HiveMindNetworkError`.
 *
 * @example
 * const client = new HiveMindClient({ endpoint: 'https://hivemind.example.com', auth: { tokenManager } })
 * const me = await client.me()
 * @see https://www.rfc-editor.org/rfc/rfc8693
 */
export class HiveMindClient {
  /** Server URL without a trailing slash. */
  readonly endpoint: string
  readonly #options: ResolvedClientOptions
  readonly #ky: KyInstance
  readonly #logger: Logger | undefined
  readonly #clock: Clock
  readonly #random: () => number
  readonly #auth: ClientAuth | undefined
  #authManager: Pick<TokenManager, 'getToken'> | undefined

  constructor(init: HiveMindClientInit = {}) {
    const env = init.env ?? process.env
    const parsed = HiveMindClientOptions.safeParse(init)
    if (!parsed.success) {
      throw new ConfigurationError(
        `Invalid HiveMindClient options: ${z.prettifyError(parsed.error)}`,
      )
    }
    this.#options = parsed.data
    this.endpoint = resolveEndpoint(parsed.data.endpoint ?? env[ENV.endpoint])
    this.#logger = init.logger
    this.#clock = init.clock ?? systemClock
    this.#random = init.random ?? Math.random
    this.#auth = init.auth
    const custom = init.fetch
    this.#ky = ky.create({
      prefix: this.endpoint,
      retry: 0,
      throwHttpErrors: false,
      headers: { 'user-agent': parsed.data.userAgent, accept: 'application/json' },
      // Resolved per request so an interceptor installed after construction (msw)
      // and proxy variables changed at runtime both apply.
      fetch: custom ?? ((input, requestInit) => defaultFetch(env, input, requestInit)),
    })
  }

  /**
   * Retry settings the client resolved, for a caller that runs its own retry loop
   * around {@link HiveMindClient.exchangeOnce} (the token manager).
   * @internal
   */
  get retryPolicy(): RetryPolicy {
    const o = this.#options
    return {
      retries: o.retries,
      baseDelayMs: o.retryBaseDelayMs,
      maxDelayMs: o.retryMaxDelayMs,
      maxRetryAfterMs: o.maxRetryAfterMs,
      attemptTimeoutMs: o.timeoutMs,
      deadlineMs: o.deadlineMs,
    }
  }

  /**
   * Swaps an OIDC ID token for a HiveMind JWT (RFC 8693, form-encoded), with retries.
   * Prefer a {@link TokenManager}: it caches, refreshes early, fetches a fresh ID token
   * for every attempt and never replays one whose exchange outcome is unknown.
   *
   * @example
   * const { access_token, expires_in } = await client.exchange(idToken, { scope: 'write' })
   * @see https://www.rfc-editor.org/rfc/rfc8693#section-2.1
   */
  async exchange(
    subjectToken: string,
    options: ExchangeOptions = {},
  ): Promise<TokenExchangeResponse> {
    const spec = this.#exchangeSpec(subjectToken, options)
    spec.outcome = { unknown: false }
    return this.#withRetry(spec)
  }

  /**
   * One exchange attempt, no retries, so a caller with its own loop (the token manager
   * gets a fresh ID token per attempt) never multiplies our retries by its own.
   * @internal
   */
  exchangeOnce(
    subjectToken: string,
    options: ExchangeOptions & { timeoutMs?: number | undefined } = {},
  ): Promise<TokenExchangeResponse> {
    return this.#attempt(
      this.#exchangeSpec(subjectToken, options),
      options.timeoutMs ?? this.#options.timeoutMs,
    )
  }

  /**
   * Readiness of the server: `{status, version, audience, checks}`. A degraded server
   * answers 503 with the same body, which is returned rather than thrown.
   *
   * @example
   * const { status, audience } = await client.health()
   */
  health(options: { signal?: AbortSignal | undefined } = {}): Promise<HealthResponse> {
    return this.#withRetry({
      kind: 'api',
      method: 'GET',
      path: PATH_HEALTH,
      schema: HealthResponse,
      auth: false,
      signal: options.signal,
      acceptStatus: 503,
    })
  }

  /**
   * Who the configured credential acts as.
   *
   * @example
   * const { kind, name, scopes } = await client.me()
   */
  me(options: { signal?: AbortSignal | undefined } = {}): Promise<MeResponse> {
    return this.#withRetry({
      kind: 'api',
      method: 'GET',
      path: PATH_ME,
      schema: MeResponse,
      auth: true,
      signal: options.signal,
    })
  }

  /**
   * Uploads one batch of normalised sessions and events (scope `write`). Idempotent: a
   * retried batch comes back as duplicates, so network failures are retried. Items the
   * server refuses are listed in `rejected`, not thrown; a batch over the server's limits
   * throws {@link HiveMindApiError} with status 413 (split it and send the halves).
   *
   * @example
   * const { accepted, duplicates, rejected } = await client.uploadBatch({ sessions, events })
   * @see DESIGN.md "Batch upload"
   */
  uploadBatch(batch: BatchUploadRequest, options: CallOptions = {}): Promise<BatchUploadResponse> {
    return this.#withRetry({
      kind: 'api',
      method: 'POST',
      path: PATH_BATCH,
      schema: BatchUploadResponse,
      // Encoded once, not once per attempt, and as bytes: a batch is megabytes of JSON, and
      // a string body would be scanned and re-encoded again on its way out.
      body: ENCODER.encode(
        JSON.stringify({ sessions: batch.sessions ?? [], events: batch.events ?? [] }),
      ),
      auth: true,
      signal: options.signal,
    })
  }

  /**
   * One page of sessions, newest first (scope `read`; team-wide, `owner` is a filter).
   * Pass `next_cursor` back as `cursor` for the next page.
   *
   * @example
   * const { items, next_cursor } = await client.listSessions({ agent: 'codex', limit: 100 })
   */
  listSessions(query: SessionListQuery = {}, options: CallOptions = {}): Promise<SessionList> {
    return this.#get(PATH_SESSIONS, SessionList, query, options)
  }

  /**
   * One session by the server's `id` or by its `session_key` (add `owner` when two owners
   * uploaded the same session).
   *
   * @example
   * const session = await client.getSession(sessionKey('codex', id))
   */
  getSession(
    id: string,
    query: { owner?: string | undefined } = {},
    options: CallOptions = {},
  ): Promise<SessionRecord> {
    return this.#get(`${PATH_SESSIONS}/${encodeURIComponent(id)}`, SessionRecord, query, options)
  }

  /**
   * One page of a session's events in source order (`seq`, then `thread`), each with its
   * `event_key`.
   *
   * @example
   * const { items } = await client.listEvents(session.id, { thread: 'main' })
   */
  listEvents(
    id: string,
    query: EventListQuery & { owner?: string | undefined } = {},
    options: CallOptions = {},
  ): Promise<EventList> {
    return this.#get(`${PATH_SESSIONS}/${encodeURIComponent(id)}/events`, EventList, query, options)
  }

  /**
   * Full-text search over event text (web-search syntax: `"a phrase" -word or`), best
   * first, with HTML-escaped snippets whose matches are wrapped in `<mark>`.
   *
   * @example
   * const { items } = await client.search({ q: '"broke the migration"', agent: 'claude-code' })
   */
  search(query: SearchQuery, options: CallOptions = {}): Promise<SearchResponse> {
    return this.#get(PATH_SEARCH, SearchResponse, query, options)
  }

  /**
   * Sessions, events and tokens in total and by agent, owner and day.
   *
   * @example
   * const { totals, by_day } = await client.stats({ since: '2026-01-01' })
   */
  stats(query: StatsQuery = {}, options: CallOptions = {}): Promise<StatsResponse> {
    return this.#get(PATH_STATS, StatsResponse, query, options)
  }

  #get<S extends z.ZodType>(
    path: string,
    schema: S,
    query: object,
    options: CallOptions,
  ): Promise<z.output<S>> {
    return this.#withRetry({
      kind: 'api',
      method: 'GET',
      path,
      schema,
      query: query as Record<string, string | number | undefined>,
      auth: true,
      signal: options.signal,
    })
  }

  #exchangeSpec(
    subjectToken: string,
    options: ExchangeOptions,
  ): RequestSpec<typeof TokenExchangeResponse> {
    const form: TokenExchangeRequest & Record<string, string> = {
      grant_type: GRANT_TYPE_TOKEN_EXCHANGE,
      subject_token: subjectToken,
      subject_token_type: TOKEN_TYPE_ID_TOKEN,
      ...(options.scope === undefined ? {} : { scope: options.scope }),
      ...(options.audience === undefined ? {} : { audience: options.audience }),
    }
    return {
      kind: 'exchange',
      method: 'POST',
      path: PATH_TOKEN,
      schema: TokenExchangeResponse,
      body: new URLSearchParams(form),
      auth: false,
      signal: options.signal,
    }
  }

  #withRetry<S extends z.ZodType>(spec: RequestSpec<S>): Promise<z.output<S>> {
    return withRetry((_attempt, timeoutMs) => this.#attempt(spec, timeoutMs), {
      policy: this.retryPolicy,
      clock: this.#clock,
      random: this.#random,
      signal: spec.signal,
      onRetry: ({ attempt, delayMs, error }) => {
        this.#logger?.debug('@hivemind/sdk - HiveMindClient retry', {
          request: `${spec.method} ${this.#url(spec.path)}`,
          attempt: attempt + 1,
          delayMs,
          code: (error as { code?: unknown }).code,
          status: (error as { status?: unknown }).status,
        })
      },
    })
  }

  async #attempt<S extends z.ZodType>(
    spec: RequestSpec<S>,
    timeoutMs: number,
  ): Promise<z.output<S>> {
    const request = { method: spec.method, url: this.#url(spec.path) }
    const headers: Record<string, string> = spec.auth ? await this.#authHeaders(spec.signal) : {}
    if (spec.body instanceof Uint8Array) headers['content-type'] = 'application/json'
    let response: Response
    try {
      response = await this.#ky(spec.path, {
        method: spec.method,
        headers,
        timeout: timeoutMs,
        ...(spec.body === undefined ? {} : { body: spec.body }),
        ...(spec.json === undefined ? {} : { json: spec.json }),
        ...(spec.query === undefined ? {} : { searchParams: searchParams(spec.query) }),
        ...(spec.signal === undefined ? {} : { signal: spec.signal }),
      })
    } catch (error) {
      if (spec.signal?.aborted) throw error
      if (spec.outcome) spec.outcome.unknown = true
      if (isTimeoutError(error)) {
        throw new HiveMindNetworkError(
          'ERR_TIMEOUT',
          request,
          `Timed out after ${timeoutMs} ms: ${request.method} ${request.url}`,
          {
            cause: error,
            hint: 'Check that the server is reachable (and HTTPS_PROXY / NO_PROXY).',
          },
        )
      }
      if (isNetworkError(error) || error instanceof TypeError) {
        const cause = (error as { cause?: { cause?: { code?: unknown }; code?: unknown } }).cause
        const sysCode = cause?.cause?.code ?? cause?.code
        throw new HiveMindNetworkError(
          'ERR_NETWORK',
          request,
          `Network error${typeof sysCode === 'string' ? ` (${sysCode})` : ''}: ${request.method} ${request.url}`,
          {
            cause: error,
            hint: `Check ${ENV.endpoint} and that the server is reachable (and HTTPS_PROXY / NO_PROXY).`,
          },
        )
      }
      throw error
    }
    const text = await response.text()
    let data: unknown
    try {
      data = text === '' ? undefined : JSON.parse(text)
    } catch {
      data = undefined
    }
    const result = spec.schema.safeParse(data)
    // A 503 health body is an answer; a bodyless 503 from a load balancer is not.
    if (!response.ok && !(response.status === spec.acceptStatus && result.success)) {
      throw this.#httpError(spec, request, response, data)
    }
    if (!result.success) {
      throw new ResponseValidationError(
        request,
        result.error.issues.map((i) => ({ path: i.path, message: i.message })),
      )
    }
    return result.data
  }

  #httpError(
    spec: RequestSpec<z.ZodType>,
    request: { method: string; url: string },
    response: Response,
    data: unknown,
  ): HiveMindApiError {
    const status = response.status
    const requestId = response.headers.get('x-request-id') ?? undefined
    const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'), this.#clock.now())
    // 500/502/504 may come after the server claimed the replay key: outcome unknown.
    if (spec.outcome && status >= 500 && status !== 503) spec.outcome.unknown = true
    const where = `${request.method} ${request.url}`
    if (spec.kind === 'exchange') {
      const body = OAuthErrorBody.safeParse(data)
      const oauth = body.success ? body.data : undefined
      const detail = oauth
        ? ` ${oauth.error}${oauth.hivemind_error ? ` (${oauth.hivemind_error})` : ''}`
        : ''
      const hint = exchangeHint(status, oauth, spec.outcome?.unknown === true)
      return new HiveMindApiError(
        `Token exchange failed with status ${status}${detail}: ${where}`,
        {
          status,
          method: request.method,
          url: request.url,
          requestId,
          oauthError: oauth?.error,
          hivemindError: oauth?.hivemind_error,
          data,
          hint,
          retryAfterMs,
        },
        'ERR_TOKEN_EXCHANGE_REJECTED',
      )
    }
    const body = ApiErrorBody.safeParse(data)
    const api = body.success ? body.data : undefined
    const serverMessage = api ? ` - ${redact(api.error)}` : ''
    return new HiveMindApiError(
      `HiveMind API request failed with status ${status}${api?.code ? ` ${api.code}` : ''}: ${where}${serverMessage}`,
      {
        status,
        method: request.method,
        url: request.url,
        requestId,
        apiCode: api?.code,
        data,
        hint: apiHint(status),
        retryAfterMs,
      },
    )
  }

  async #authHeaders(signal: AbortSignal | undefined): Promise<Record<string, string>> {
    const auth = this.#auth
    if (auth === undefined) return {}
    if ('token' in auth) return { authorization: `Bearer ${auth.token}` }
    if ('apiKey' in auth) return { 'x-api-key': auth.apiKey }
    if ('tokenManager' in auth) return headersFor(await auth.tokenManager.getToken())
    if (signal?.aborted) throw signal.reason
    this.#authManager ??= new TokenManager({ provider: auth.provider, client: this })
    return headersFor(await this.#authManager.getToken())
  }

  #url(path: string): string {
    return safeUrl(`${this.endpoint}/${path}`)
  }
}

function searchParams(
  query: Readonly<Record<string, string | number | undefined>>,
): URLSearchParams {
  const params = new URLSearchParams()
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v))
  return params
}

function headersFor(token: AccessToken): Record<string, string> {
  return token.kind === 'api-key'
    ? { 'x-api-key': token.token }
    : { authorization: `Bearer ${token.token}` }
}

function resolveEndpoint(value: string | undefined): string {
  if (value === undefined || value.trim() === '') {
    throw new ConfigurationError(
      `No HiveMind endpoint: pass \`endpoint\` or set ${ENV.endpoint} (e.g. https://hivemind.example.com).`,
      { hint: `Set ${ENV.endpoint} to the server URL.` },
    )
  }
  let url: URL
  try {
    url = new URL(value.trim())
  } catch (cause) {
    throw new ConfigurationError(`${ENV.endpoint} is not a URL: ${safeUrl(value)}`, { cause })
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ConfigurationError(`${ENV.endpoint} must be an http(s) URL, got ${url.protocol}`)
  }
  // Query and fragment would be glued onto every path; credentials in the URL would leak.
  if (url.username || url.password || url.search || url.hash) {
    throw new ConfigurationError(
      `${ENV.endpoint} must not carry credentials, a query or a fragment: ${safeUrl(value)}`,
    )
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`
}

/**
 * The global fetch, or undici's through the proxy when proxy variables are set. ky
 * passes a global `Request`, which undici's own fetch does not recognise, so it is
 * unpacked into URL and init first.
 */
async function defaultFetch(
  env: Readonly<Record<string, string | undefined>>,
  input: string | URL | Request,
  init?: RequestInit,
): Promise<Response> {
  const f = proxyAwareFetch(env)
  if (f === globalThis.fetch || !(input instanceof Request)) return f(input, init)
  const body =
    input.method === 'GET' || input.method === 'HEAD' ? undefined : await input.arrayBuffer()
  return f(input.url, {
    method: input.method,
    headers: input.headers,
    signal: input.signal,
    redirect: input.redirect,
    ...(body === undefined ? {} : { body }),
  })
}

const EXCHANGE_HINTS: Readonly<Record<string, string>> = {
  unknown_issuer:
    "No identity provider on the server trusts this issuer: add one for the token's `iss` to a service account.",
  bad_signature:
    "The signature does not verify against the issuer's JWKS: check the identity provider's jwks_uri / CA.",
  unknown_key:
    "The token's `kid` is not in the issuer's JWKS: the issuer may have rotated keys; check the identity provider's jwks_uri.",
  jwks_unavailable:
    "The server could not fetch the issuer's JWKS; it will retry. Check its network access to the issuer.",
  expired:
    'The ID token expired before the exchange: fetch a fresh one (GitHub tokens live ~5 minutes) and check the clocks.',
  not_yet_valid:
    'The ID token is not valid yet: check the clocks of the issuer, this host and the server.',
  missing_claim: 'Exchanged ID tokens must carry `iat`, `sub` and `exp`.',
  replayed_token:
    'This ID token was already exchanged: every exchange needs a fresh ID token (a TokenManager caches the JWT instead of replaying).',
  no_matching_service_account:
    "No service account matches this token: check the identity provider's issuer and selector (e.g. repo:OWNER/REPO, system:serviceaccount:NS:NAME), and run `hivemind-server explain` with the token.",
  service_account_disabled: 'The service account is disabled: an admin must re-enable it.',
  policy_denied:
    "The identity provider's CEL policy returned false for these claims: run `hivemind-server explain` to see which claim failed.",
  invalid_scope:
    'The requested scope is not granted to the service account: scope may only narrow.',
  rate_limited:
    'Too many failed exchanges from this identity or address: wait, then fix the failing exchange.',
  replay_store_unavailable: "The server's replay store is down, so it fails closed; retry later.",
  unsupported_token_type: `Send subject_token_type ${TOKEN_TYPE_ID_TOKEN}.`,
  malformed_token: 'The subject token is not a compact JWT: check the credential source.',
}

function exchangeHint(
  status: number,
  body: OAuthErrorBody | undefined,
  earlierOutcomeUnknown: boolean,
): string | undefined {
  const check = body?.hivemind_error
  if (check === 'audience_mismatch') {
    const expected = body?.expected_audience
    return expected
      ? `The server expects audience "${expected}": set ${ENV.audience}=${expected} so the ID token is minted for it.`
      : `The ID token's audience is not one the server accepts: set ${ENV.audience} to the audience GET /api/v1/health reports.`
  }
  if (check === 'replayed_token' && earlierOutcomeUnknown) {
    return 'An earlier attempt with this ID token got no answer, and the server had already claimed it: fetch a fresh ID token.'
  }
  if (check !== undefined && EXCHANGE_HINTS[check]) return EXCHANGE_HINTS[check]
  if (body?.error === 'unsupported_grant_type')
    return `Send grant_type ${GRANT_TYPE_TOKEN_EXCHANGE}.`
  if (status === 429) return 'Rate limited: wait for Retry-After, then fix the failing exchanges.'
  if (status === 503)
    return 'The server is temporarily unavailable (replay store down?); retry later.'
  if (status >= 500) return 'The server failed; check its logs with the request id.'
  return undefined
}

function apiHint(status: number): string | undefined {
  if (status === 401) {
    return `The credential is missing, invalid or expired: check ${ENV.token} / ${ENV.apiKey}, or the token source.`
  }
  if (status === 403) return 'The credential is valid but lacks the scope or role this call needs.'
  if (status === 429) return 'Rate limited: wait for Retry-After.'
  if (status >= 500) return 'The server failed; check its logs with the request id.'
  return undefined
}
