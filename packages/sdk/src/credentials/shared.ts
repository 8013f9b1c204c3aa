// Helpers shared by the credential providers. Not exported from the package.
import { fingerprint } from '../internal/fingerprint.js'
import { peekClaims } from '../internal/jwt.js'
import type { JWTPayload } from 'jose'
import type { Credential, CredentialProvider, ProviderCallOptions, ProviderInit } from './types.js'

export type Env = Readonly<Record<string, string | undefined>>

/** Attach the name logs and chain errors use to a provider thunk. */
export function provider(
  providerName: string,
  resolve: (options?: ProviderCallOptions) => Promise<Credential>,
): CredentialProvider {
  return Object.assign(resolve, { providerName })
}

export function envOf(init: ProviderInit): Env {
  return init.env ?? process.env
}

/**
 * An env value, with `''` treated as unset: CI systems and `docker run -e X=` often
 * define variables as empty strings rather than leaving them out.
 */
export function envValue(env: Env, name: string): string | undefined {
  const value = env[name]
  return value === undefined || value.trim() === '' ? undefined : value
}

const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/

/** Claims of a compact JWS, or undefined when the value is not one. */
export function jwtClaims(token: string): JWTPayload | undefined {
  return COMPACT_JWS.test(token) ? peekClaims(token) : undefined
}

/** What may be logged about a token: a fingerprint, `jti` and `exp`, never the token. */
export function describeToken(
  token: string,
  claims: JWTPayload | undefined = jwtClaims(token),
): string {
  const parts = [fingerprint(token)]
  if (typeof claims?.jti === 'string') parts.push(`jti ${claims.jti}`)
  if (typeof claims?.exp === 'number')
    parts.push(`exp ${new Date(claims.exp * 1000).toISOString()}`)
  return parts.join(', ')
}

/**
 * What an error may say about a value that is not a valid token: its length, a
 * short alphabetic prefix such as `ghp_` (which tells the user what they pasted)
 * and a fingerprint. Never the secret part.
 */
export function describeMalformed(value: string): string {
  const prefix = /^[A-Za-z]{1,8}[_-]/.exec(value)?.[0]
  return [
    `${value.length} characters`,
    ...(prefix === undefined ? [] : [`starting with "${prefix}"`]),
    fingerprint(value),
  ].join(', ')
}

export function errorCode(error: unknown): string | undefined {
  return typeof error === 'object' && error != null && 'code' in error
    ? String(error.code)
    : undefined
}
