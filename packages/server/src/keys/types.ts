import type { JWK, JWTPayload } from 'jose'

/** Claims HiveMind puts in its own JWTs. */
export interface HiveMindJwtClaims extends JWTPayload {
  sub: string
  scope: string
  /** Name of the service account, for logs and /me. */
  name?: string
  /** Issuer of the ID token that was exchanged. */
  src_iss?: string
  /** Subject of the ID token that was exchanged. */
  src_sub?: string
}

/** Signing keys of this server: stored in the database, private halves encrypted when HIVEMIND_SECRET_KEY is set. */
export interface KeyStore {
  /** Signs with the active key; sets iss, aud (public URL), iat, exp, jti. */
  sign(
    claims: { sub: string; scope: string } & Record<string, unknown>,
    ttlSeconds: number,
  ): Promise<{ token: string; jti: string; exp: number; kid: string }>
  /** Verifies a HiveMind JWT: own keys only, iss, aud, exp. Throws on failure. */
  verify(token: string): Promise<HiveMindJwtClaims>
  /** Public keys still published (active and not yet expired). */
  jwks(): Promise<{ keys: JWK[] }>
  /** Adds a new active key; old ones stay published until their tokens expire. */
  rotate(): Promise<{ kid: string }>
}
