import { constants } from 'node:fs'
import { open } from 'node:fs/promises'
import { AuthenticationError, CredentialUnavailableError } from '../errors.js'
import { DEFAULTS, ENV } from '../schemas/env.js'
import {
  describeMalformed,
  describeToken,
  envOf,
  envValue,
  errorCode,
  jwtClaims,
  provider,
} from './shared.js'
import type { CredentialProvider, ProviderInit } from './types.js'

/** Environment variable naming the file that holds an OIDC ID token. */
export const ENV_OIDC_TOKEN_FILE = ENV.oidcTokenFile
/** Where the HiveMind operator mounts the projected service-account token. */
export const DEFAULT_OIDC_TOKEN_FILE = DEFAULTS.oidcTokenFile

/** Options of {@link fromTokenFile}. */
export interface FromTokenFileInit extends ProviderInit {
  /**
   * Optional. The token file. Defaults to `HIVEMIND_OIDC_TOKEN_FILE`, then
   * `/var/run/secrets/hivemind/token`.
   */
  path?: string | undefined
}

const PROVIDER = 'fromTokenFile'
/** ID tokens are a few KB; anything far bigger is the wrong file. */
const MAX_BYTES = 1024 * 1024

/**
 * An OIDC ID token read from a file: a Kubernetes projected service-account token
 * (what the HiveMind operator mounts) or any issuer that writes its token to disk.
 *
 * The file is read again on every call, because the kubelet rotates projected tokens
 * in place (at 80 % of their lifetime, by swapping a `..data` symlink), and other
 * issuers rewrite the file. Symlinks are followed; the final target must be a
 * regular file. When only the default path is absent this throws
 * `CredentialUnavailableError`, so a chain moves on; a configured path that is
 * missing, empty, unreadable, a directory or not a JWT throws `AuthenticationError`.
 *
 * @example
 * ```ts
 * import { fromTokenFile } from '@hivemind/sdk'
 *
 * const provider = fromTokenFile({ path: '/var/run/secrets/tokens/hivemind' })
 * const { token } = await provider() // re-read on every call
 * ```
 *
 * @see https://kubernetes.io/docs/concepts/storage/projected-volumes/#serviceaccounttoken
 */
export function fromTokenFile(init: FromTokenFileInit = {}): CredentialProvider {
  return provider(PROVIDER, async () => {
    const fromEnv = envValue(envOf(init), ENV_OIDC_TOKEN_FILE)
    const path = init.path ?? fromEnv ?? DEFAULT_OIDC_TOKEN_FILE
    const explicit = init.path !== undefined || fromEnv !== undefined
    const setBy =
      init.path !== undefined
        ? 'the `path` option'
        : fromEnv !== undefined
          ? ENV_OIDC_TOKEN_FILE
          : `the default (${ENV_OIDC_TOKEN_FILE} is not set)`
    const fail = (what: string, hint: string, cause?: unknown) =>
      new AuthenticationError(PROVIDER, `token file ${path} (set by ${setBy}) ${what}`, {
        hint,
        ...(cause === undefined ? {} : { cause }),
      })

    const text = await readRegularFile(path).catch((error: unknown) => {
      const code = errorCode(error)
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        if (!explicit) {
          return Promise.reject(
            new CredentialUnavailableError(
              PROVIDER,
              `no token file at ${DEFAULT_OIDC_TOKEN_FILE} and ${ENV_OIDC_TOKEN_FILE} is not set`,
            ),
          )
        }
        return Promise.reject(
          fail(
            'does not exist',
            `Mount the token there (a projected serviceAccountToken volume on Kubernetes) or point ${ENV_OIDC_TOKEN_FILE} at the file that holds it`,
            error,
          ),
        )
      }
      if (code === 'EACCES' || code === 'EPERM') {
        return Promise.reject(
          fail(
            `cannot be read by this process (${code}, uid ${process.getuid?.() ?? '?'})`,
            "Make the file readable by this user: on Kubernetes set the projected volume's `defaultMode` (e.g. 0444) or the pod's `fsGroup`",
            error,
          ),
        )
      }
      if (code === 'EISDIR') {
        return Promise.reject(
          fail(
            'is a directory',
            `Point ${ENV_OIDC_TOKEN_FILE} at the token file inside it (e.g. ${path.replace(/\/+$/, '')}/token)`,
            error,
          ),
        )
      }
      if (code === 'ENOTREG') {
        return Promise.reject(
          fail('is not a regular file', 'Point it at the file that holds the token', error),
        )
      }
      if (code === 'EFBIG') {
        return Promise.reject(
          fail(
            `is larger than ${MAX_BYTES} bytes`,
            'Point it at the file that holds only the token',
            error,
          ),
        )
      }
      return Promise.reject(
        fail(`cannot be read (${code ?? String(error)})`, 'Check the file and its mount', error),
      )
    })

    const token = text.trim()
    if (token === '') {
      throw fail(
        'is empty',
        'Check what writes the token (the kubelet, or your issuer): it must hold one compact JWT',
      )
    }
    const claims = jwtClaims(token)
    if (claims === undefined) {
      throw fail(
        `does not hold a JWT (${describeMalformed(token)})`,
        'It must hold exactly one compact JWT (header.payload.signature), e.g. a projected service-account token',
      )
    }
    init.logger?.debug(
      `@hivemind/sdk - ${PROVIDER}: read ${path} (${describeToken(token, claims)})`,
    )
    return { kind: 'id-token', token, source: 'token-file', refreshable: 'maybe' }
  })
}

async function readRegularFile(path: string): Promise<string> {
  // O_NONBLOCK: opening a FIFO for reading would otherwise hang until a writer appears.
  // Reading through the same handle we checked avoids a race with a rotation between
  // the check and the read.
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK)
  try {
    const stat = await handle.stat()
    if (stat.isDirectory())
      throw Object.assign(new Error(`${path} is a directory`), { code: 'EISDIR' })
    if (!stat.isFile()) {
      throw Object.assign(new Error(`${path} is not a regular file`), { code: 'ENOTREG' })
    }
    if (stat.size > MAX_BYTES)
      throw Object.assign(new Error(`${path} is too large`), { code: 'EFBIG' })
    return await handle.readFile('utf8')
  } finally {
    await handle.close()
  }
}
