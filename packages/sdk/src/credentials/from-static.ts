import { AuthenticationError, CredentialUnavailableError } from '../errors.js'
import { fingerprint } from '../internal/fingerprint.js'
import { ENV } from '../schemas/env.js'
import { envOf, envValue, describeMalformed, jwtClaims, provider } from './shared.js'
import type { CredentialProvider, ProviderInit } from './types.js'

/** Environment variable holding a static service-account token or a PAT. */
export const ENV_TOKEN = ENV.token

/** Options of {@link fromStatic}. */
export interface FromStaticInit extends ProviderInit {
  /**
   * The token (`hmsa_…`, `hmpat_…`, or an already-minted HiveMind JWT).
   * Optional. Defaults to `HIVEMIND_TOKEN`.
   */
  token?: string | undefined
}

const PROVIDER = 'fromStatic'
const STATIC_TOKEN = /^(?:hmsa_|hmpat_)[A-Za-z0-9_-]{43,}$/

/**
 * A static bearer token: a service account's `hmsa_…` token, a personal access token
 * `hmpat_…`, or a HiveMind JWT. Sent as `Authorization: Bearer` with no exchange.
 *
 * Throws `CredentialUnavailableError` when no token is set (a chain moves on) and
 * `AuthenticationError` when the value is not shaped like any HiveMind token.
 *
 * @example
 * ```ts
 * import { fromStatic } from '@hivemind/sdk'
 *
 * const credential = await fromStatic()() // reads HIVEMIND_TOKEN
 * const explicit = await fromStatic({ token: process.env.MY_SECRET })()
 * ```
 *
 * @see https://datatracker.ietf.org/doc/html/rfc6750 (bearer tokens)
 */
export function fromStatic(init: FromStaticInit = {}): CredentialProvider {
  return provider(PROVIDER, () => {
    const env = envOf(init)
    const fromInit = init.token !== undefined
    const name = fromInit ? 'the `token` option' : ENV_TOKEN
    const token = (init.token ?? envValue(env, ENV_TOKEN))?.trim()
    if (!token) {
      return Promise.reject(
        new CredentialUnavailableError(
          PROVIDER,
          fromInit ? 'the `token` option is empty' : `${ENV_TOKEN} is not set`,
        ),
      )
    }
    if (!STATIC_TOKEN.test(token) && jwtClaims(token) === undefined) {
      return Promise.reject(
        new AuthenticationError(
          PROVIDER,
          `${name} does not look like a HiveMind token (${describeMalformed(token)}): expected ` +
            '`hmsa_…` (service-account token) or `hmpat_…` (personal access token) followed by ' +
            'at least 43 base64url characters, or a JWT (three base64url parts separated by dots)',
          {
            hint: `Copy the whole token as the server showed it when it was created, into ${name}`,
          },
        ),
      )
    }
    init.logger?.debug(
      `@hivemind/sdk - ${PROVIDER}: using the token from ${name} (${fingerprint(token)})`,
    )
    return Promise.resolve({
      kind: 'bearer' as const,
      token,
      source: 'static',
    })
  })
}
