import { grantFailure, ExchangeFailure } from './failure.js'
import { parseJsonObjectStrict } from './strict-json.js'

/** Header and payload of a compact JWS, decoded but NOT verified. */
export interface UnverifiedJwt {
  header: Record<string, unknown>
  payload: Record<string, unknown>
  /** The decoded payload bytes, so a verifier can tell whether it verified exactly these. */
  payloadBytes: Buffer
}

// base64url, optionally padded: jose accepts a padded signature segment, and a
// padded or otherwise re-encoded token must reach the replay check (whose key is
// over the claims) rather than slip through as a "different" token.
const SEGMENT = /^[A-Za-z0-9_-]+={0,2}$/
// The signature may be empty (`alg: none`); the algorithm check rejects that with its own error.
const SIGNATURE = /^[A-Za-z0-9_-]*={0,2}$/

/**
 * Splits and decodes a compact JWS. Rejects (as `malformed_token`) anything that
 * is not exactly three base64url segments with JSON-object header and payload,
 * the JSON serialisation, JWE (five parts), and duplicate JSON keys.
 */
export function parseUnverified(token: string): UnverifiedJwt {
  const t = token.trim()
  if (t.startsWith('{')) {
    throw grantFailure(
      'malformed_token',
      'the JWS JSON serialization is not accepted; send a compact JWT',
    )
  }
  const parts = t.split('.')
  if (parts.length === 5) {
    throw grantFailure('malformed_token', 'encrypted (JWE) tokens are not accepted')
  }
  if (parts.length !== 3) {
    throw grantFailure(
      'malformed_token',
      `a JWT has 3 dot-separated parts; this token has ${parts.length}`,
    )
  }
  if (!SEGMENT.test(parts[0]) || !SEGMENT.test(parts[1]) || !SIGNATURE.test(parts[2])) {
    throw grantFailure('malformed_token', 'a token part is empty or not base64url')
  }
  const decode = (bytes: Buffer, what: string) => {
    try {
      return parseJsonObjectStrict(bytes.toString('utf8'))
    } catch (err) {
      throw grantFailure(
        'malformed_token',
        `the ${what} is not a JSON object (${(err as Error).message})`,
      )
    }
  }
  const payloadBytes = Buffer.from(parts[1], 'base64url')
  return {
    header: decode(Buffer.from(parts[0], 'base64url'), 'header'),
    payload: decode(payloadBytes, 'payload'),
    payloadBytes,
  }
}

/** A token that is too large is an invalid request rather than a bad grant. */
export function tooLarge(bytes: number, limit: number): ExchangeFailure {
  return new ExchangeFailure(
    'invalid_request',
    'malformed_token',
    `subject_token is ${bytes} bytes; the limit is ${limit} (HIVEMIND_MAX_SUBJECT_TOKEN_BYTES)`,
  )
}
