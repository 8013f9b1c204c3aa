import type { HiveMindExchangeError, OAuthErrorBody, OAuthErrorCode } from '@hivemind/sdk/schemas'

/**
 * A failed exchange check: the RFC 6749 `error`, the HiveMind check that failed
 * and an HTTP status. The description names the check and the claim values that
 * decided it, never the token.
 */
export class ExchangeFailure extends Error {
  readonly status: number
  readonly error: OAuthErrorCode
  readonly hivemindError: HiveMindExchangeError
  readonly expectedAudience: string | undefined
  readonly headers: Record<string, string> | undefined
  constructor(
    error: OAuthErrorCode,
    hivemindError: HiveMindExchangeError,
    description: string,
    options: { status?: number; expectedAudience?: string; headers?: Record<string, string> } = {},
  ) {
    super(description)
    this.name = 'ExchangeFailure'
    this.error = error
    this.hivemindError = hivemindError
    this.status = options.status ?? (error === 'temporarily_unavailable' ? 503 : 400)
    this.expectedAudience = options.expectedAudience
    this.headers = options.headers
  }

  /** RFC 6749 §5.2 body plus `hivemind_error`. */
  toBody(): OAuthErrorBody {
    return {
      error: this.error,
      error_description: this.message,
      hivemind_error: this.hivemindError,
      ...(this.expectedAudience ? { expected_audience: this.expectedAudience } : {}),
    }
  }
}

/** `invalid_grant` with the given check. */
export const grantFailure = (code: HiveMindExchangeError, description: string) =>
  new ExchangeFailure('invalid_grant', code, description)
