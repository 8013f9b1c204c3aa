import { CredentialUnavailableError, isHiveMindError } from '../errors.js'
import { ENV } from '../schemas/env.js'
import { fromApiKey, type FromApiKeyInit } from './from-api-key.js'
import {
  fromGitHubActions,
  GITHUB_MISSING_PERMISSION_MESSAGE,
  type FromGitHubActionsInit,
} from './from-github-actions.js'
import { fromModal, type FromModalInit } from './from-modal.js'
import { fromStatic, type FromStaticInit } from './from-static.js'
import { fromTokenFile, type FromTokenFileInit } from './from-token-file.js'
import { envOf, provider } from './shared.js'
import type { Credential, CredentialProvider, Logger, ProviderInit } from './types.js'

type Own<T> = Omit<T, keyof ProviderInit>

/** Options of {@link defaultChain}. `logger` and `env` are passed to every provider. */
export interface DefaultChainInit extends ProviderInit {
  /** Optional. Options of {@link fromStatic} (e.g. `token`). */
  static?: Own<FromStaticInit> | undefined
  /** Optional. Options of {@link fromApiKey} (e.g. `envFile`, `homeDir`). */
  apiKey?: Own<FromApiKeyInit> | undefined
  /** Optional. Options of {@link fromGitHubActions} (e.g. `audience`, retries, `fetch`). */
  githubActions?: Own<FromGitHubActionsInit> | undefined
  /** Optional. Options of {@link fromModal}. */
  modal?: Own<FromModalInit> | undefined
  /** Optional. Options of {@link fromTokenFile} (e.g. `path`). */
  tokenFile?: Own<FromTokenFileInit> | undefined
}

interface Skipped {
  providerName: string
  reason: string
}

interface ChainOptions {
  name: string
  logger?: Logger | undefined
  /** Short reason shown for a skipped provider. */
  describe?: (skipped: Skipped) => string
  /** Message of the error thrown when every provider was skipped. */
  exhausted?: (skipped: readonly Skipped[]) => string
  hint?: string | undefined
}

/**
 * Tries providers in order and returns the first credential found.
 *
 * `CredentialUnavailableError` means "not configured here": the next provider is
 * tried. Any other error (an `AuthenticationError` from a provider that applies but
 * failed) stops the chain, so a broken credential is never silently replaced by
 * another. When every provider is unavailable, the `CredentialUnavailableError`
 * thrown lists each one and why it was skipped.
 *
 * @example
 * ```ts
 * import { chain, fromStatic, fromTokenFile } from '@hivemind/sdk'
 *
 * const credentials = chain(fromStatic(), fromTokenFile({ path: '/run/token' }))
 * const credential = await credentials()
 * ```
 *
 * @see https://github.com/aws/aws-sdk-js-v3/tree/main/packages/property-provider (`chain`, `tryNextLink`)
 */
export function chain(...providers: CredentialProvider[]): CredentialProvider {
  return buildChain(providers, { name: 'chain' })
}

/**
 * The chain every HiveMind client uses, first that applies wins, with no network
 * probing:
 *
 * 1. {@link fromStatic}: `HIVEMIND_TOKEN`
 * 2. {@link fromApiKey}: `HIVEMIND_API_KEY`, or `~/.config/hivemind/env`
 * 3. {@link fromGitHubActions}: `ACTIONS_ID_TOKEN_REQUEST_URL` + `_TOKEN`
 * 4. {@link fromModal}: `MODAL_IDENTITY_TOKEN`
 * 5. {@link fromTokenFile}: `HIVEMIND_OIDC_TOKEN_FILE`, or `/var/run/secrets/hivemind/token`
 *
 * A debug log line says which source was used and why the ones before it were
 * skipped. When nothing applies, the error lists what was looked for; under GitHub
 * Actions (`GITHUB_ACTIONS=true`) it leads with the missing
 * `permissions: id-token: write`.
 *
 * @example
 * ```ts
 * import { defaultChain } from '@hivemind/sdk'
 *
 * const credentials = defaultChain({ logger: console })
 * const credential = await credentials({ audience: 'https://hivemind.example.com' })
 * ```
 *
 * @see https://datatracker.ietf.org/doc/html/rfc8693 (what ID tokens are exchanged for)
 */
export function defaultChain(init: DefaultChainInit = {}): CredentialProvider {
  const shared: ProviderInit = { logger: init.logger, env: init.env }
  const env = envOf(init)
  const github = fromGitHubActions({ ...init.githubActions, ...shared })
  const inActions = () => env[ENV.githubActions] === 'true'
  // Outside Actions the permission advice is noise: the job simply is not one.
  const describe = (skipped: Skipped) =>
    skipped.providerName !== github.providerName ||
    skipped.reason !== GITHUB_MISSING_PERMISSION_MESSAGE
      ? skipped.reason
      : inActions()
        ? `${ENV.actionsIdTokenRequestUrl} and ${ENV.actionsIdTokenRequestToken} are not set: the job lacks \`permissions: id-token: write\`, or runs for a pull request from a fork`
        : `not a GitHub Actions job (${ENV.actionsIdTokenRequestUrl} is not set)`
  return buildChain(
    [
      fromStatic({ ...init.static, ...shared }),
      fromApiKey({ ...init.apiKey, ...shared }),
      github,
      fromModal({ ...init.modal, ...shared }),
      fromTokenFile({ ...init.tokenFile, ...shared }),
    ],
    {
      name: 'defaultChain',
      logger: init.logger,
      describe,
      exhausted: (skipped) => {
        const lead = inActions() ? `${GITHUB_MISSING_PERMISSION_MESSAGE}\n\n` : ''
        return `${lead}No HiveMind credentials found. Looked for:\n${listSkipped(skipped, describe)}`
      },
      hint: `Set ${ENV.token} (a service-account token or PAT) or ${ENV.apiKey}, or run where an OIDC token is available: GitHub Actions with \`permissions: id-token: write\`, Modal, or a token file at ${ENV.oidcTokenFile}`,
    },
  )
}

function buildChain(
  providers: readonly CredentialProvider[],
  options: ChainOptions,
): CredentialProvider {
  const describe = options.describe ?? ((s: Skipped) => s.reason)
  const log = (message: string) =>
    options.logger?.debug(`@hivemind/sdk - ${options.name}: ${message}`)
  return provider(options.name, async (callOptions) => {
    const skipped: Skipped[] = []
    for (const next of providers) {
      let credential: Credential
      try {
        credential = await next(callOptions)
      } catch (error) {
        if (isHiveMindError(error) && error.code === 'ERR_CREDENTIAL_UNAVAILABLE') {
          skipped.push({ providerName: next.providerName, reason: error.message })
          continue
        }
        log(
          `${next.providerName} failed, stopping (${errorName(error)})${skippedSuffix(skipped, describe)}`,
        )
        throw error
      }
      log(
        `using ${next.providerName} (${credential.kind} from ${credential.source})${skippedSuffix(skipped, describe)}`,
      )
      return credential
    }
    const message =
      options.exhausted?.(skipped) ??
      `No credentials found. Looked for:\n${listSkipped(skipped, describe)}`
    log(`no provider applied${skippedSuffix(skipped, describe)}`)
    throw new CredentialUnavailableError(
      options.name,
      message,
      options.hint === undefined ? undefined : { hint: options.hint },
    )
  })
}

function listSkipped(skipped: readonly Skipped[], describe: (s: Skipped) => string): string {
  return skipped.map((s) => `- ${s.providerName}: ${describe(s)}`).join('\n')
}

function skippedSuffix(skipped: readonly Skipped[], describe: (s: Skipped) => string): string {
  return skipped.map((s) => `; skipped ${s.providerName}: ${describe(s)}`).join('')
}

function errorName(error: unknown): string {
  return isHiveMindError(error) ? error.code : error instanceof Error ? error.name : typeof error
}
