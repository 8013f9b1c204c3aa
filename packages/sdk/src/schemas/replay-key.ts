import canonicalize from 'canonicalize'
import { createHash } from 'node:crypto'

/**
 * The replay key of an ID token, shared by the server's replay store and the
 * SDK's client-side guard so both agree on "the same token".
 *
 * With a `jti`, the key is (issuer, jti). Without one it is the SHA-256 of the
 * JCS-canonical (RFC 8785) verified claims, keyed by issuer and audience, so a
 * re-encoded token (other base64url padding, other JSON key order) is still the
 * same token while two issuers never collide.
 */
export function replayKey(claims: Readonly<Record<string, unknown>>): string {
  const iss = typeof claims.iss === 'string' ? claims.iss : ''
  if (typeof claims.jti === 'string' && claims.jti.length > 0) {
    return `jti:${sha256(JSON.stringify([iss, claims.jti]))}`
  }
  const aud = Array.isArray(claims.aud)
    ? [...(claims.aud as unknown[])].map(String).sort()
    : claims.aud
  const canonical = canonicalize(claims) ?? ''
  return `claims:${sha256(JSON.stringify([iss, aud ?? null, sha256(canonical)]))}`
}

function sha256(input: string): string {
  return createHash('sha256').update(input).digest('hex')
}
