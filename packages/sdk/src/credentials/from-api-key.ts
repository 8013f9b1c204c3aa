import { readFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { AuthenticationError, CredentialUnavailableError } from '../errors.js'
import { fingerprint } from '../internal/fingerprint.js'
import { DEFAULTS, ENV } from '../schemas/env.js'
import { describeMalformed, envOf, envValue, errorCode, provider } from './shared.js'
import type { CredentialProvider, ProviderInit } from './types.js'

/** Environment variable (and env-file key) holding a person's `hm-…` API key. */
export const ENV_API_KEY = ENV.apiKey

/** Options of {@link fromApiKey}. */
export interface FromApiKeyInit extends ProviderInit {
  /** The key itself. Optional. Defaults to `HIVEMIND_API_KEY`, then the env file. */
  apiKey?: string | undefined
  /** Optional. Dotenv-style file to read. Default `~/.config/hivemind/env`. */
  envFile?: string | undefined
  /** Optional. Home directory the default env file is under. Default `os.homedir()`. */
  homeDir?: string | undefined
}

const PROVIDER = 'fromApiKey'
const API_KEY = /^hm-[A-Za-z0-9_-]{64}$/

/**
 * A person's API key (`hm-` + 64 characters), sent as `X-API-Key`: what a person's
 * daemon, TUI or MCP client uses.
 *
 * Looks at the `apiKey` option, then `HIVEMIND_API_KEY`, then a
 * `HIVEMIND_API_KEY=…` line in `~/.config/hivemind/env`. Throws
 * `CredentialUnavailableError` when none has a key, `AuthenticationError` when the
 * key found is malformed or the env file cannot be read.
 *
 * @example
 * ```ts
 * import { fromApiKey } from '@hivemind/sdk'
 *
 * const credential = await fromApiKey()()
 * // { kind: 'api-key', apiKey: 'hm-…', source: 'api-key' }
 * ```
 *
 * @see https://github.com/motdotla/dotenv#what-rules-does-the-parsing-engine-follow (env file syntax)
 */
export function fromApiKey(init: FromApiKeyInit = {}): CredentialProvider {
  return provider(PROVIDER, async () => {
    const env = envOf(init)
    let name: string
    let apiKey: string | undefined
    if (init.apiKey !== undefined) {
      name = 'the `apiKey` option'
      apiKey = init.apiKey.trim()
    } else if (envValue(env, ENV_API_KEY) !== undefined) {
      name = ENV_API_KEY
      apiKey = envValue(env, ENV_API_KEY)?.trim()
    } else {
      const path = init.envFile ?? join(init.homeDir ?? homedir(), DEFAULTS.apiKeyEnvFile)
      name = `${ENV_API_KEY} in ${path}`
      apiKey = (await readKeyFromFile(path, init.envFile !== undefined))?.trim()
      if (apiKey === undefined) {
        throw new CredentialUnavailableError(
          PROVIDER,
          `${ENV_API_KEY} is not set and ${path} has no ${ENV_API_KEY} line`,
        )
      }
    }
    if (!apiKey) throw new CredentialUnavailableError(PROVIDER, `${name} is empty`)
    if (!API_KEY.test(apiKey)) {
      throw new AuthenticationError(
        PROVIDER,
        `${name} does not look like a HiveMind API key (${describeMalformed(apiKey)}): ` +
          'expected `hm-` followed by 64 characters',
        {
          hint: 'Copy the key again from the dashboard, or rotate it (POST /api/v1/me/api-key/rotate)',
        },
      )
    }
    init.logger?.debug(
      `@hivemind/sdk - ${PROVIDER}: using the key from ${name} (${fingerprint(apiKey)})`,
    )
    return { kind: 'api-key', apiKey, source: 'api-key' }
  })
}

async function readKeyFromFile(path: string, explicit: boolean): Promise<string | undefined> {
  try {
    return (await readEnvFile(path))[ENV_API_KEY]
  } catch (error) {
    const code = errorCode(error)
    // The default file is optional: most machines never create it.
    if (!explicit && (code === 'ENOENT' || code === 'ENOTDIR')) return undefined
    throw new AuthenticationError(PROVIDER, `cannot read ${path} (${code ?? String(error)})`, {
      cause: error,
      hint:
        code === 'ENOENT'
          ? `Create ${path} with a line \`${ENV_API_KEY}=hm-…\`, or set ${ENV_API_KEY}`
          : `Make ${path} a file readable by this user (chmod 600), or set ${ENV_API_KEY}`,
    })
  }
}

const LINE = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/

/**
 * Parse a dotenv-style file: `KEY=value` lines, optional `export `, single or
 * double quotes, `#` comments. Later lines win, as in a shell.
 *
 * @internal Not part of the public API.
 */
export async function readEnvFile(path: string): Promise<Record<string, string>> {
  const text = await readFile(path, 'utf8')
  const result: Record<string, string> = {}
  for (const line of text.split(/\r?\n/)) {
    if (/^\s*(?:#|$)/.test(line)) continue
    const match = LINE.exec(line)
    if (!match) continue
    const [, key = '', raw = ''] = match
    result[key] = unquote(raw)
  }
  return result
}

function unquote(raw: string): string {
  const double = /^"((?:[^"\\]|\\.)*)"/.exec(raw)
  if (double) return (double[1] ?? '').replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c))
  const single = /^'([^']*)'/.exec(raw)
  if (single) return single[1] ?? ''
  // Unquoted values end at an inline comment (` # …`), as in dotenv.
  return raw.replace(/\s+#.*$/, '')
}
