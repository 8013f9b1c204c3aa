import {
  type AccessToken,
  type Clock,
  type CredentialProvider,
  type Logger,
  type ProviderCallOptions,
  defaultChain,
  HiveMindApiError,
  HiveMindClient,
  HiveMindNetworkError,
  isHiveMindError,
  TokenManager,
} from '@hivemind/sdk'
import { ENV, type MeResponse } from '@hivemind/sdk/schemas'
import { EXIT, ExitError } from './errors.js'
import type { SendBatch } from './tail/uploader.js'
import { VERSION } from './version.js'

/** An authenticated way to upload batches. */
export interface Connection {
  endpoint: string
  send: SendBatch
}

/** Who the server says the credential belongs to, and the token values to mask. */
export interface Verified {
  me: MeResponse
  /** The ID token exchanged (when there was one) and the credential sent: never log these. */
  secrets: string[]
  /** The credential the server accepted. */
  token: AccessToken
}

/** A client whose credential comes from a {@link TokenManager} the caller can watch. */
export interface UploadClient extends Connection {
  client: HiveMindClient
  tokenManager: TokenManager
  /** Gets a credential and asks the server whose it is (`GET /api/v1/me`). */
  verify(): Promise<Verified>
}

/**
 * Builds the client from the SDK's default credential chain (`HIVEMIND_TOKEN`,
 * `HIVEMIND_API_KEY`, GitHub Actions OIDC, Modal, token file) without contacting the
 * server; the daemon watches the token manager's state to pause and resume.
 */
export function createUploadClient(init: {
  endpoint: string
  env: Readonly<Record<string, string | undefined>>
  clock?: Clock | undefined
  logger?: Logger | undefined
}): UploadClient {
  const common = {
    endpoint: init.endpoint,
    env: init.env,
    userAgent: `@hivemind/cli/${VERSION}`,
    ...(init.logger ? { logger: init.logger } : {}),
  }
  const exchanger = new HiveMindClient(common)
  const chain = defaultChain({ env: init.env, ...(init.logger ? { logger: init.logger } : {}) })
  // Remembers the last ID token, so a CI step can mask it (GitHub's `::add-mask::`).
  let idToken: string | undefined
  const provider: CredentialProvider = Object.assign(
    async (options?: ProviderCallOptions) => {
      const credential = await chain(options)
      if (credential.kind === 'id-token') idToken = credential.token
      return credential
    },
    { providerName: chain.providerName },
  )
  const tokenManager = new TokenManager({
    provider,
    client: exchanger,
    env: init.env,
    ...(init.clock ? { clock: init.clock } : {}),
    ...(init.logger ? { logger: init.logger } : {}),
  })
  const client = new HiveMindClient({ ...common, auth: { tokenManager } })
  return {
    endpoint: client.endpoint,
    client,
    tokenManager,
    send: (batch) => client.uploadBatch(batch),
    async verify() {
      const token = await tokenManager.getToken()
      const me = await client.me()
      return { me, token, secrets: [idToken, token.token].filter((s): s is string => !!s) }
    },
  }
}

/**
 * Under GitHub Actions, `::add-mask::` lines for the tokens this step holds, so the
 * runner hides them should anything ever print them.
 */
export function maskLines(
  env: Readonly<Record<string, string | undefined>>,
  secrets: readonly string[],
): string {
  if (env.GITHUB_ACTIONS !== 'true') return ''
  return secrets.map((s) => `::add-mask::${s}\n`).join('')
}

/** `service account sa_… (name)` or `user u_… (name)`. */
export function describePrincipal(me: Pick<MeResponse, 'kind' | 'id' | 'name'>): string {
  return `${me.kind === 'service_account' ? 'service account' : 'user'} ${me.id} (${me.name})`
}

/** The endpoint from `--endpoint` or `HIVEMIND_ENDPOINT`; a usage error naming both when neither. */
export function requireEndpoint(endpoint: string | undefined, alternative?: string): string {
  if (endpoint === undefined || endpoint.trim() === '') {
    throw new ExitError(EXIT.usage, `no server: set ${ENV.endpoint} or pass --endpoint`, {
      hint: `e.g. ${ENV.endpoint}=https://hivemind.example.com${alternative ? ` (${alternative})` : ''}`,
    })
  }
  return endpoint
}

/**
 * {@link createUploadClient}, then gets a credential and asks the server whose it is, so
 * a missing or refused one fails before any file is read rather than after.
 */
export async function connect(init: {
  endpoint: string | undefined
  env: Readonly<Record<string, string | undefined>>
}): Promise<Connection & Verified> {
  const upload = createUploadClient({
    endpoint: requireEndpoint(init.endpoint, 'or use --dry-run to upload nothing'),
    env: init.env,
  })
  try {
    const verified = await upload.verify()
    return { endpoint: upload.endpoint, send: upload.send, ...verified }
  } catch (err) {
    upload.tokenManager.close()
    const { message, hint } = describeUploadError(err, upload.endpoint)
    // Unreachable says nothing about the credential: no "no credential" in front of it.
    const line = err instanceof HiveMindNetworkError ? message : `no credential: ${message}`
    throw new ExitError(EXIT.failed, line, hint ? { hint } : undefined)
  }
}

/** A 413 from the batch endpoint: the uploader splits the batch and tries again. */
export function isTooLarge(err: unknown): boolean {
  return err instanceof HiveMindApiError && err.status === 413
}

/**
 * One line for an upload or credential failure: the SDK's message and hint, plus what
 * the user most needs (the scope on a 403, the reachability on a network error). An
 * `audience_mismatch` hint from the SDK already names the audience the server expects.
 */
export function describeUploadError(
  err: unknown,
  endpoint: string | undefined,
): { message: string; hint: string | undefined } {
  if (err instanceof HiveMindNetworkError) {
    return {
      message: `server unreachable at ${endpoint ?? 'the endpoint'} (${err.message})`,
      // A timeout's hint from the SDK does not say where the URL came from.
      hint: err.hint?.includes(ENV.endpoint)
        ? err.hint
        : `Check ${ENV.endpoint} (or --endpoint). ${err.hint ?? ''}`.trim(),
    }
  }
  if (err instanceof HiveMindApiError && err.status === 403 && err.code === 'ERR_API') {
    return {
      message: `the server refused the upload (403${err.apiCode ? ` ${err.apiCode}` : ''}): uploading needs a credential with the \`write\` scope. ${err.message}`,
      hint: `Use a token with scope write (${ENV.token}), or a service account whose scopes include write.`,
    }
  }
  if (isHiveMindError(err)) {
    const hidden = err as { hivemindError?: unknown; data?: unknown }
    let hint = err.hint
    const expected = (hidden.data as { expected_audience?: unknown } | undefined)?.expected_audience
    if (
      hidden.hivemindError === 'audience_mismatch' &&
      typeof expected === 'string' &&
      !hint?.includes(expected)
    ) {
      hint = `${hint ? `${hint} ` : ''}The server expects audience "${expected}".`
    }
    return { message: err.message, hint }
  }
  return { message: err instanceof Error ? err.message : String(err), hint: undefined }
}
