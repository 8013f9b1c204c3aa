import { AuthenticationError, CredentialUnavailableError } from '../errors.js'
import { ENV } from '../schemas/env.js'
import { describeMalformed, describeToken, envOf, envValue, jwtClaims, provider } from './shared.js'
import type { CredentialProvider, ProviderInit } from './types.js'

/** Set by Modal in every container: the container's OIDC ID token. */
export const ENV_MODAL_IDENTITY_TOKEN = ENV.modalIdentityToken

/** Options of {@link fromModal}. */
export interface FromModalInit extends ProviderInit {
  /** Optional. The ID token. Defaults to `MODAL_IDENTITY_TOKEN`. */
  token?: string | undefined
}

const PROVIDER = 'fromModal'

/**
 * The ID token Modal gives each container in `MODAL_IDENTITY_TOKEN` (audience
 * `https://oidc.modal.com`, about 48 hours). It never changes during the container's
 * life, so the credential says `refreshable: 'never'` and the token manager keeps
 * the exchanged JWT rather than exchanging the same token twice.
 *
 * @example
 * ```ts
 * import { fromModal } from '@hivemind/sdk'
 *
 * const credential = await fromModal()()
 * // { kind: 'id-token', token: 'eyJ…', source: 'modal', refreshable: 'never' }
 * ```
 *
 * @see https://modal.com/docs/guide/oidc-integration
 */
export function fromModal(init: FromModalInit = {}): CredentialProvider {
  return provider(PROVIDER, () => {
    const fromInit = init.token !== undefined
    const name = fromInit ? 'the `token` option' : ENV_MODAL_IDENTITY_TOKEN
    const token = (init.token ?? envValue(envOf(init), ENV_MODAL_IDENTITY_TOKEN))?.trim()
    if (!token) {
      return Promise.reject(
        new CredentialUnavailableError(
          PROVIDER,
          fromInit ? 'the `token` option is empty' : `${ENV_MODAL_IDENTITY_TOKEN} is not set`,
        ),
      )
    }
    const claims = jwtClaims(token)
    if (claims === undefined) {
      return Promise.reject(
        new AuthenticationError(PROVIDER, `${name} is not a JWT (${describeMalformed(token)})`, {
          hint: `Leave ${ENV_MODAL_IDENTITY_TOKEN} as Modal sets it; do not override it with a secret`,
        }),
      )
    }
    init.logger?.debug(
      `@hivemind/sdk - ${PROVIDER}: using the ID token from ${name} (${describeToken(token, claims)})`,
    )
    return Promise.resolve({
      kind: 'id-token' as const,
      token,
      source: 'modal',
      refreshable: 'never' as const,
    })
  })
}
