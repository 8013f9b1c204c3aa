/**
 * An API error with a stable `code`; the error middleware turns it into
 * `{"error": message, "code": code, "details"?: …}` with `status`.
 */
export class ApiError extends Error {
  readonly status: number
  readonly code: string
  readonly details: unknown
  readonly headers: Readonly<Record<string, string>> | undefined
  constructor(
    status: number,
    code: string,
    message: string,
    options?: { details?: unknown; headers?: Record<string, string>; cause?: unknown },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'ApiError'
    this.status = status
    this.code = code
    this.details = options?.details
    this.headers = options?.headers
  }
}

/** The replay store (PostgreSQL table or Redis) could not be reached: fail closed. */
export class ReplayStoreUnavailableError extends Error {
  readonly code = 'ERR_REPLAY_STORE_UNAVAILABLE'
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'ReplayStoreUnavailableError'
  }
}

/**
 * A bearer credential that is not valid (bad signature, expired, unknown key,
 * revoked, disabled account…). The message is safe to show; it never includes the token.
 */
export class InvalidTokenError extends Error {
  readonly code = 'ERR_INVALID_TOKEN'
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'InvalidTokenError'
  }
}

/**
 * The server cannot start for a reason outside the code (port in use, database
 * unreachable, undecryptable keys). `main` prints the message as one line, exit 1.
 */
export class StartupError extends Error {
  readonly code = 'ERR_STARTUP'
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'StartupError'
  }
}
