import { AuthenticationError, ConfigurationError, CredentialUnavailableError } from '../errors.js'
import { proxyAwareFetch } from '../internal/fetch.js'
import { fullJitter, sleep } from '../internal/sleep.js'
import { normalizeAudience } from '../schemas/audience.js'
import { ENV } from '../schemas/env.js'
import { describeToken, envOf, envValue, jwtClaims, provider } from './shared.js'
import type { CredentialProvider, ProviderCallOptions, ProviderInit } from './types.js'

/** Set by the runner when the job has `permissions: id-token: write`. */
export const ENV_ACTIONS_ID_TOKEN_REQUEST_URL = ENV.actionsIdTokenRequestUrl
/** Bearer token for {@link ENV_ACTIONS_ID_TOKEN_REQUEST_URL}; set alongside it. */
export const ENV_ACTIONS_ID_TOKEN_REQUEST_TOKEN = ENV.actionsIdTokenRequestToken

/**
 * The whole message of the error thrown when the runner gave the job no way to request
 * an ID token: it is the fix, so users do not have to search for it.
 */
export const GITHUB_MISSING_PERMISSION_MESSAGE =
  'GitHub Actions gave this job no OIDC token (ACTIONS_ID_TOKEN_REQUEST_URL and ' +
  'ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set). Add `permissions: id-token: write` to the ' +
  'job (or the workflow). Pull requests from forks get no OIDC token even with that ' +
  'permission: there, use a static token instead, through the HIVEMIND_TOKEN input or variable.'

/** Options of {@link fromGitHubActions}. */
export interface FromGitHubActionsInit extends ProviderInit {
  /**
   * Audience to request. Optional. Precedence: the call's `audience` (the token
   * manager passes the endpoint URL), then this, then `HIVEMIND_AUDIENCE`.
   * Normalised to origin + path, no trailing slash.
   */
  audience?: string | undefined
  /** Optional. Default: `fetch` honouring `HTTPS_PROXY` / `NO_PROXY` from `env`. */
  fetch?: typeof fetch | undefined
  /** Optional. Requests per call, first one included. @default 5 */
  maxAttempts?: number | undefined
  /** Optional. Base of the full-jitter exponential backoff (ms). @default 500 */
  baseDelayMs?: number | undefined
  /** Optional. Longest single backoff (ms). @default 10000 */
  maxDelayMs?: number | undefined
  /** Optional. Overall time budget of one call, retries included (ms). @default 60000 */
  deadlineMs?: number | undefined
  /** Optional. Timeout of one request (ms). @default 10000 */
  timeoutMs?: number | undefined
  /** Optional. Wall clock (ms) used to check the token's `exp`. @default Date.now */
  now?: (() => number) | undefined
}

const PROVIDER = 'fromGitHubActions'
/** A token that expires sooner would likely expire in flight to `/oauth/token`. */
const MIN_REMAINING_S = 30
// GitHub answers 403 while the job is still being scheduled; it clears in seconds
// (aws-actions/configure-aws-credentials#469).
const NOT_YET_READY = /can't issue id_token for job in '?(?:pending|delayed)'? state/i

interface Attempt {
  retryable: boolean
  /** For the final error and logs; never contains a token. */
  reason: string
  status?: number
  retryAfterMs?: number
  cause?: unknown
}

/**
 * Mints a GitHub Actions OIDC ID token for HiveMind's audience, asking the runner
 * afresh on every call (GitHub tokens live about 5 minutes, so nothing is cached).
 *
 * Retries network errors, timeouts, 408, 429, 5xx and GitHub's 403 for jobs still
 * `Pending`/`Delayed`, with full-jitter backoff under an overall deadline; other
 * 4xx answers fail at once. The job needs `permissions: id-token: write`; without
 * it this throws `CredentialUnavailableError` with
 * {@link GITHUB_MISSING_PERMISSION_MESSAGE}.
 *
 * @example
 * ```ts
 * import { fromGitHubActions } from '@hivemind/sdk'
 *
 * const provider = fromGitHubActions({ audience: 'https://hivemind.example.com' })
 * const { token } = await provider() // exchange it at POST /oauth/token
 * ```
 *
 * @see https://docs.github.com/en/actions/security-for-github-actions/security-hardening-your-deployments/about-security-hardening-with-openid-connect
 * @see https://datatracker.ietf.org/doc/html/rfc8693 (token exchange)
 */
export function fromGitHubActions(init: FromGitHubActionsInit = {}): CredentialProvider {
  const maxAttempts = Math.max(1, init.maxAttempts ?? 5)
  const baseDelayMs = init.baseDelayMs ?? 500
  const maxDelayMs = init.maxDelayMs ?? 10_000
  const deadlineMs = init.deadlineMs ?? 60_000
  const timeoutMs = init.timeoutMs ?? 10_000
  const now = init.now ?? Date.now
  const log = (message: string) => init.logger?.debug(`@hivemind/sdk - ${PROVIDER}: ${message}`)

  return provider(PROVIDER, async (options: ProviderCallOptions = {}) => {
    const env = envOf(init)
    const requestUrl = envValue(env, ENV_ACTIONS_ID_TOKEN_REQUEST_URL)
    const requestToken = envValue(env, ENV_ACTIONS_ID_TOKEN_REQUEST_TOKEN)
    if (requestUrl === undefined || requestToken === undefined) {
      throw new CredentialUnavailableError(PROVIDER, GITHUB_MISSING_PERMISSION_MESSAGE)
    }
    const rawAudience = options.audience ?? init.audience ?? envValue(env, ENV.audience)
    if (rawAudience === undefined || rawAudience.trim() === '') {
      throw new ConfigurationError(
        `${PROVIDER}: no audience to request: pass \`audience\`, or set ${ENV.audience} (or ${ENV.endpoint} when using the token manager)`,
      )
    }
    const audience = normalizeAudience(rawAudience)
    let url: URL
    try {
      url = new URL(requestUrl)
    } catch (error) {
      throw new AuthenticationError(
        PROVIDER,
        `${ENV_ACTIONS_ID_TOKEN_REQUEST_URL} is not a valid URL`,
        { cause: error, hint: 'Do not override the variable the runner sets' },
      )
    }
    // The runner's URL already carries `?api-version=2.0`; appending `&audience=` by
    // hand (as @actions/core does) breaks on URLs without a query.
    url.searchParams.set('audience', audience)
    const where = `GET ${url.origin}${url.pathname}`
    const doFetch = init.fetch ?? proxyAwareFetch(env)
    const started = performance.now()
    const remaining = () => deadlineMs - (performance.now() - started)

    let last: Attempt | undefined
    let made = 0
    for (let attempt = 0; attempt < maxAttempts; attempt++) {
      if (attempt > 0) {
        const delay = Math.max(
          fullJitter(attempt - 1, baseDelayMs, maxDelayMs),
          Math.min(last?.retryAfterMs ?? 0, maxDelayMs),
        )
        if (delay >= remaining()) break
        log(`attempt ${attempt}/${maxAttempts} failed (${last?.reason}); retrying in ${delay} ms`)
        await sleep(delay, options.signal)
      }
      const budget = Math.floor(Math.min(timeoutMs, remaining()))
      if (budget <= 0) break
      made++
      const result = await requestOnce(doFetch, url, requestToken, budget, options.signal)
      if ('token' in result) {
        const token = result.token
        const claims = jwtClaims(token)
        if (claims === undefined) {
          throw new AuthenticationError(PROVIDER, `${where} returned a value that is not a JWT`, {
            hint: `Check that ${ENV_ACTIONS_ID_TOKEN_REQUEST_URL} points at the runner's ID-token endpoint`,
          })
        }
        const leftS = typeof claims.exp === 'number' ? claims.exp - now() / 1000 : undefined
        if (leftS === undefined || leftS < MIN_REMAINING_S) {
          throw new AuthenticationError(
            PROVIDER,
            leftS === undefined
              ? `${where} returned an ID token without \`exp\``
              : `${where} returned an ID token with ${Math.round(leftS)} s left (${describeToken(token, claims)}); at least ${MIN_REMAINING_S} s are needed`,
            {
              hint: 'Check the clock of this machine: GitHub mints tokens valid for about 5 minutes',
            },
          )
        }
        log(`got an ID token for audience ${audience} (${describeToken(token, claims)})`)
        return { kind: 'id-token', token, source: 'github-actions', refreshable: 'always' }
      }
      last = result
      if (!result.retryable) break
    }

    const status = last?.status
    throw new AuthenticationError(
      PROVIDER,
      `Could not get a GitHub Actions ID token: ${where} failed` +
        (status === undefined ? '' : ` with status ${status}`) +
        ` (${last?.reason ?? 'deadline exceeded'}) after ${made} attempt(s)` +
        (last?.retryable && made < maxAttempts ? ` within the ${deadlineMs} ms deadline` : ''),
      { cause: last?.cause, hint: hintFor(status) },
    )
  })
}

async function requestOnce(
  doFetch: typeof fetch,
  url: URL,
  requestToken: string,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<{ token: string } | Attempt> {
  const timeout = AbortSignal.timeout(timeoutMs)
  let response: Response
  try {
    response = await doFetch(url, {
      headers: { authorization: `Bearer ${requestToken}`, accept: 'application/json' },
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    })
  } catch (error) {
    // The caller gave up: that is not ours to retry.
    if (signal?.aborted) throw signal.reason
    const timedOut = timeout.aborted
    return {
      retryable: true,
      reason: timedOut ? `timed out after ${timeoutMs} ms` : `network error: ${messageOf(error)}`,
      cause: error,
    }
  }
  const text = await response.text().catch(() => '')
  if (response.ok) {
    const value = parseValue(text)
    if (value !== undefined) return { token: value }
    return { retryable: false, status: response.status, reason: 'response has no `value`' }
  }
  const status = response.status
  const message = bodyMessage(text)
  const notReady = status === 403 && NOT_YET_READY.test(text)
  const retryAfter = parseRetryAfter(response.headers.get('retry-after'))
  return {
    retryable: notReady || status === 408 || status === 429 || status >= 500,
    status,
    reason: message === undefined ? `HTTP ${status}` : `HTTP ${status}: ${message}`,
    ...(retryAfter === undefined ? {} : { retryAfterMs: retryAfter }),
  }
}

function parseValue(text: string): string | undefined {
  try {
    const body: unknown = JSON.parse(text)
    if (typeof body === 'object' && body != null && 'value' in body) {
      const value = body.value
      if (typeof value === 'string' && value !== '') return value
    }
  } catch {
    // Not JSON: handled as a missing value.
  }
  return undefined
}

/** GitHub's error text, shortened; its bodies never carry tokens. */
function bodyMessage(text: string): string | undefined {
  let message = text
  try {
    const body: unknown = JSON.parse(text)
    if (typeof body === 'object' && body != null && 'message' in body) {
      message = String(body.message)
    }
  } catch {
    // Plain text body.
  }
  message = message.replace(/\s+/g, ' ').trim()
  if (message === '') return undefined
  return message.length > 200 ? `${message.slice(0, 200)}…` : message
}

function parseRetryAfter(value: string | null): number | undefined {
  if (value == null) return undefined
  const seconds = Number(value)
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000)
  const date = Date.parse(value)
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now())
}

function hintFor(status: number | undefined): string {
  if (status === 401) {
    return `The runner refused ${ENV_ACTIONS_ID_TOKEN_REQUEST_TOKEN}: it expires about 6 hours after the job starts, and must not be copied between jobs`
  }
  if (status === 403) {
    return "Add `permissions: id-token: write` to the job; GitHub also refuses ID tokens once the job is 'Completed'"
  }
  if (status === 404) return `Check ${ENV_ACTIONS_ID_TOKEN_REQUEST_URL}: the runner did not find it`
  return 'GitHub may be having trouble issuing tokens (https://www.githubstatus.com); re-run the job'
}

function messageOf(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : ''
    return `${error.message}${cause}`
  }
  return String(error)
}
