/**
 * Stable error codes of the SDK. Codes are semver-stable; messages are not.
 */
export type HiveMindErrorCode =
  | 'ERR_CREDENTIAL_UNAVAILABLE'
  | 'ERR_AUTHENTICATION'
  | 'ERR_SUBJECT_TOKEN_EXHAUSTED'
  | 'ERR_TOKEN_EXCHANGE_REJECTED'
  | 'ERR_API'
  | 'ERR_RESPONSE_VALIDATION'
  | 'ERR_TIMEOUT'
  | 'ERR_NETWORK'
  | 'ERR_CONFIGURATION'

/**
 * Base class of every error the SDK throws.
 *
 * @example
 * try { await manager.getToken() } catch (e) { if (isHiveMindError(e)) console.error(e.code) }
 */
export class HiveMindError extends Error {
  readonly code: HiveMindErrorCode
  /** A sentence telling the user how to fix it, when we know. */
  readonly hint: string | undefined

  constructor(
    code: HiveMindErrorCode,
    message: string,
    options?: { cause?: unknown; hint?: string },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = this.constructor.name
    this.code = code
    this.hint = options?.hint
  }
}

/**
 * The provider does not apply here (its env vars are absent): a chain tries the next one.
 * @see https://github.com/aws/aws-sdk-js-v3 `CredentialsProviderError.tryNextLink`
 */
export class CredentialUnavailableError extends HiveMindError {
  /** Which provider gave up, e.g. `fromGitHubActions`. */
  readonly provider: string
  constructor(provider: string, message: string, options?: { cause?: unknown; hint?: string }) {
    super('ERR_CREDENTIAL_UNAVAILABLE', message, options)
    this.provider = provider
  }
}

/** The provider applies but failed: a chain stops here rather than hide the failure. */
export class AuthenticationError extends HiveMindError {
  readonly provider: string
  constructor(provider: string, message: string, options?: { cause?: unknown; hint?: string }) {
    super('ERR_AUTHENTICATION', message, options)
    this.provider = provider
  }
}

/**
 * The source keeps returning an ID token that was already exchanged, and the JWT
 * obtained with it has expired. Sync should pause until the source yields a fresh one.
 */
export class SubjectTokenExhaustedError extends HiveMindError {
  readonly source: string
  constructor(source: string, message: string, options?: { cause?: unknown; hint?: string }) {
    super('ERR_SUBJECT_TOKEN_EXHAUSTED', message, options)
    this.source = source
  }
}

/** What an HTTP error knows about the request, never its credentials. */
export interface ApiErrorInit {
  status: number
  method: string
  url: string
  requestId?: string | undefined
  oauthError?: string | undefined
  hivemindError?: string | undefined
  apiCode?: string | undefined
  data?: unknown
  hint?: string | undefined
  /** Delay the server asked for in `Retry-After`, in milliseconds. */
  retryAfterMs?: number | undefined
  cause?: unknown
}

/**
 * The server answered with an error status.
 *
 * Message shape: `Token exchange failed with status 400 invalid_grant: POST https://…/oauth/token`.
 */
export class HiveMindApiError extends HiveMindError {
  readonly status: number
  readonly request: { method: string; url: string }
  readonly requestId: string | undefined
  /** RFC 6749 `error`, on `/oauth/token`. */
  readonly error: string | undefined
  /** The failed check, e.g. `audience_mismatch`. */
  readonly hivemindError: string | undefined
  /** `code` of an API error body. */
  readonly apiCode: string | undefined
  readonly data: unknown
  /** Delay the server asked for in `Retry-After` (milliseconds), when it sent one. */
  readonly retryAfterMs: number | undefined

  constructor(
    message: string,
    init: ApiErrorInit,
    code: 'ERR_API' | 'ERR_TOKEN_EXCHANGE_REJECTED' = 'ERR_API',
  ) {
    super(code, message, {
      cause: init.cause,
      ...(init.hint === undefined ? {} : { hint: init.hint }),
    })
    this.status = init.status
    this.request = { method: init.method, url: init.url }
    this.requestId = init.requestId
    this.error = init.oauthError
    this.hivemindError = init.hivemindError
    this.apiCode = init.apiCode
    this.data = init.data
    this.retryAfterMs = init.retryAfterMs
  }
}

/** The request worked but the payload did not match the schema. */
export class ResponseValidationError extends HiveMindError {
  readonly issues: readonly { path: readonly PropertyKey[]; message: string }[]
  readonly request: { method: string; url: string }
  constructor(request: { method: string; url: string }, issues: ResponseValidationError['issues']) {
    super(
      'ERR_RESPONSE_VALIDATION',
      `Unexpected response from ${request.method} ${request.url}: ${issues
        .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
        .join('; ')}`,
    )
    this.issues = issues
    this.request = request
  }
}

/** Network failure or timeout after retries were used up. */
export class HiveMindNetworkError extends HiveMindError {
  readonly request: { method: string; url: string }
  constructor(
    code: 'ERR_NETWORK' | 'ERR_TIMEOUT',
    request: { method: string; url: string },
    message: string,
    options?: { cause?: unknown; hint?: string },
  ) {
    super(code, message, options)
    this.request = request
  }
}

/** Bad options or environment (e.g. no endpoint). */
export class ConfigurationError extends HiveMindError {
  constructor(message: string, options?: { cause?: unknown; hint?: string }) {
    super('ERR_CONFIGURATION', message, options)
  }
}

export type AnyHiveMindError =
  | CredentialUnavailableError
  | AuthenticationError
  | SubjectTokenExhaustedError
  | HiveMindApiError
  | ResponseValidationError
  | HiveMindNetworkError
  | ConfigurationError

const CODES = new Set<string>([
  'ERR_CREDENTIAL_UNAVAILABLE',
  'ERR_AUTHENTICATION',
  'ERR_SUBJECT_TOKEN_EXHAUSTED',
  'ERR_TOKEN_EXCHANGE_REJECTED',
  'ERR_API',
  'ERR_RESPONSE_VALIDATION',
  'ERR_TIMEOUT',
  'ERR_NETWORK',
  'ERR_CONFIGURATION',
])

/**
 * True for any SDK error, even one from another copy of the SDK (another realm or
 * a duplicated dependency), where `instanceof` fails.
 */
export function isHiveMindError(error: unknown): error is AnyHiveMindError {
  return (
    typeof error === 'object' &&
    error != null &&
    'code' in error &&
    typeof error.code === 'string' &&
    CODES.has(error.code) &&
    error instanceof Error
  )
}
