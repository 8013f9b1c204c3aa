import { decodeJwt, type JWTPayload } from 'jose'

/**
 * Claims of a compact JWT without verifying it (the server verifies). Returns
 * undefined when the input is not a JWT at all.
 */
export function peekClaims(token: string): JWTPayload | undefined {
  try {
    return decodeJwt(token)
  } catch {
    return undefined
  }
}
