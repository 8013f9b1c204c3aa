import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  kubernetesClaims,
  modalClaims,
  startGitHubTokenEndpoint,
  startOidcIssuer,
  type GitHubTokenEndpoint,
  type LocalOidcIssuer,
} from '@hivemind/test-utils'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { AuthenticationError, CredentialUnavailableError } from '../errors.js'
import { chain, defaultChain, type DefaultChainInit } from './chain.js'
import { DEFAULT_OIDC_TOKEN_FILE } from './from-token-file.js'
import { GITHUB_MISSING_PERMISSION_MESSAGE } from './from-github-actions.js'
import type { Credential, CredentialProvider, ProviderCallOptions } from './types.js'

const AUDIENCE = 'https://hivemind.example.com'
const STATIC = `hmsa_${'s'.repeat(43)}`
const API_KEY = `hm-${'k'.repeat(64)}`

let issuer: LocalOidcIssuer
let endpoint: GitHubTokenEndpoint
let home: string
let modalToken: string
let fileToken: string
let tokenFile: string

beforeAll(async () => {
  issuer = await startOidcIssuer()
  endpoint = await startGitHubTokenEndpoint(issuer)
  modalToken = await issuer.mint(modalClaims(), { ttlSeconds: 48 * 3600 })
  fileToken = await issuer.mint(kubernetesClaims(), { ttlSeconds: 3600 })
})
afterAll(async () => {
  await endpoint.close()
  await issuer.close()
})
beforeEach(async () => {
  home = await mkdtemp(join(tmpdir(), 'hivemind-chain-'))
  tokenFile = join(home, 'token')
  await writeFile(tokenFile, fileToken)
})
afterEach(async () => {
  await rm(home, { recursive: true, force: true })
})

const logger = () => ({ debug: vi.fn(), info: vi.fn(), warn: vi.fn(), error: vi.fn() })
const noDefaultTokenFile = !existsSync(DEFAULT_OIDC_TOKEN_FILE)

type Source = 'static' | 'api-key' | 'api-key file' | 'github' | 'modal' | 'file'

function envFor(sources: readonly Source[]): Record<string, string> {
  const env: Record<string, string> = {}
  if (sources.includes('static')) env.HIVEMIND_TOKEN = STATIC
  if (sources.includes('api-key')) env.HIVEMIND_API_KEY = API_KEY
  if (sources.includes('github')) {
    env.GITHUB_ACTIONS = 'true'
    env.ACTIONS_ID_TOKEN_REQUEST_URL = endpoint.url
    env.ACTIONS_ID_TOKEN_REQUEST_TOKEN = endpoint.requestToken
  }
  if (sources.includes('modal')) env.MODAL_IDENTITY_TOKEN = modalToken
  if (sources.includes('file')) env.HIVEMIND_OIDC_TOKEN_FILE = tokenFile
  return env
}

async function initFor(sources: readonly Source[], extra: Partial<DefaultChainInit> = {}) {
  if (sources.includes('api-key file')) {
    const dir = join(home, '.config', 'hivemind')
    await import('node:fs/promises').then((fs) => fs.mkdir(dir, { recursive: true }))
    await writeFile(join(dir, 'env'), `export HIVEMIND_API_KEY=${API_KEY}\n`)
  }
  return {
    env: envFor(sources),
    apiKey: { homeDir: home },
    githubActions: { baseDelayMs: 1 },
    ...extra,
  } satisfies DefaultChainInit
}

function fakeProvider(
  providerName: string,
  result: Credential | Error,
): CredentialProvider & { calls: (ProviderCallOptions | undefined)[] } {
  const calls: (ProviderCallOptions | undefined)[] = []
  const fn = (options?: ProviderCallOptions) => {
    calls.push(options)
    return result instanceof Error ? Promise.reject(result) : Promise.resolve(result)
  }
  return Object.assign(fn, { providerName, calls })
}

describe(`${chain.name}`, () => {
  const bearer: Credential = { kind: 'bearer', token: 't', source: 'a' }
  const other: Credential = { kind: 'bearer', token: 'u', source: 'b' }

  it('returns the first credential found and passes call options through', async () => {
    const a = fakeProvider('a', new CredentialUnavailableError('a', 'A is not set'))
    const b = fakeProvider('b', bearer)
    const c = fakeProvider('c', other)
    await expect(chain(a, b, c)({ audience: AUDIENCE })).resolves.toBe(bearer)
    expect(a.calls).toEqual([{ audience: AUDIENCE }])
    expect(b.calls).toEqual([{ audience: AUDIENCE }])
    expect(c.calls).toEqual([])
  })

  it.each([
    ['an AuthenticationError', new AuthenticationError('b', 'broken token'), 'ERR_AUTHENTICATION'],
    [
      'an unexpected error',
      Object.assign(new TypeError('boom'), { code: 'ERR_OTHER' }),
      'ERR_OTHER',
    ],
  ])('stops at %s', async (_name, error, code) => {
    const a = fakeProvider('a', new CredentialUnavailableError('a', 'A is not set'))
    const b = fakeProvider('b', error)
    const c = fakeProvider('c', bearer)
    await expect(chain(a, b, c)()).rejects.toMatchObject({ code, message: error.message })
    expect(c.calls).toHaveLength(0)
  })

  it('lists every source and why it was skipped when none applies', async () => {
    const error: unknown = await chain(
      fakeProvider('a', new CredentialUnavailableError('a', 'A is not set')),
      fakeProvider('b', new CredentialUnavailableError('b', 'no file at /b')),
    )().catch((e: unknown) => e)
    expect(error).toMatchObject({
      code: 'ERR_CREDENTIAL_UNAVAILABLE',
      provider: 'chain',
      message: 'No credentials found. Looked for:\n- a: A is not set\n- b: no file at /b',
    })
  })

  it('is itself a named provider', () => {
    expect(chain().providerName).toBe('chain')
  })
})

describe(`${defaultChain.name}`, () => {
  it.each<[string, Source[], string, string]>([
    ['static token first', ['static', 'api-key', 'github', 'modal', 'file'], 'bearer', 'static'],
    ['API key from env before OIDC', ['api-key', 'github', 'modal', 'file'], 'api-key', 'api-key'],
    [
      'API key from the env file',
      ['api-key file', 'github', 'modal', 'file'],
      'api-key',
      'api-key',
    ],
    ['GitHub before Modal and file', ['github', 'modal', 'file'], 'id-token', 'github-actions'],
    ['Modal before the token file', ['modal', 'file'], 'id-token', 'modal'],
    ['the token file last', ['file'], 'id-token', 'token-file'],
  ])('precedence: %s', async (_name, sources, kind, source) => {
    const provider = defaultChain(await initFor(sources))
    await expect(provider({ audience: AUDIENCE })).resolves.toMatchObject({ kind, source })
  })

  it('logs which source it used and why the others were skipped, without tokens', async () => {
    const log = logger()
    await defaultChain({ ...(await initFor(['modal'])), logger: log })()
    const lines = log.debug.mock.calls.map((c) => String(c[0]))
    const line = lines.find((l) => l.startsWith('@hivemind/sdk - defaultChain:'))
    expect(line).toBe(
      '@hivemind/sdk - defaultChain: using fromModal (id-token from modal)' +
        '; skipped fromStatic: HIVEMIND_TOKEN is not set' +
        `; skipped fromApiKey: HIVEMIND_API_KEY is not set and ${join(home, '.config/hivemind/env')} has no HIVEMIND_API_KEY line` +
        '; skipped fromGitHubActions: not a GitHub Actions job (ACTIONS_ID_TOKEN_REQUEST_URL is not set)',
    )
    expect(lines.join('\n')).not.toContain(modalToken)
  })

  it.skipIf(!noDefaultTokenFile)(
    'lists everything it looked for when nothing applies',
    async () => {
      const error: unknown = await defaultChain(await initFor([]))().catch((e: unknown) => e)
      expect(error).toMatchObject({
        code: 'ERR_CREDENTIAL_UNAVAILABLE',
        provider: 'defaultChain',
        message: expect.stringMatching(/^No HiveMind credentials found\. Looked for:\n/),
        hint: expect.stringContaining('HIVEMIND_TOKEN'),
      })
      const message = (error as Error).message
      for (const expected of [
        '- fromStatic: HIVEMIND_TOKEN is not set',
        '- fromApiKey: HIVEMIND_API_KEY is not set',
        '- fromGitHubActions: not a GitHub Actions job',
        '- fromModal: MODAL_IDENTITY_TOKEN is not set',
        '- fromTokenFile: no token file at /var/run/secrets/hivemind/token',
      ]) {
        expect(message).toContain(expected)
      }
      expect(message).not.toContain('id-token: write')
    },
  )

  it.skipIf(!noDefaultTokenFile)(
    'leads with the missing id-token permission under GITHUB_ACTIONS=true',
    async () => {
      const init = await initFor([])
      const error: unknown = await defaultChain({
        ...init,
        env: { GITHUB_ACTIONS: 'true' },
      })().catch((e: unknown) => e)
      expect(error).toMatchObject({ code: 'ERR_CREDENTIAL_UNAVAILABLE', provider: 'defaultChain' })
      const message = (error as Error).message
      expect(
        message.startsWith(
          `${GITHUB_MISSING_PERMISSION_MESSAGE}\n\nNo HiveMind credentials found.`,
        ),
      ).toBe(true)
      expect(message).toContain('- fromModal: MODAL_IDENTITY_TOKEN is not set')
      expect(message).toContain(
        '- fromGitHubActions: ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set',
      )
    },
  )

  it('under GITHUB_ACTIONS=true still uses a later source when one applies', async () => {
    const init = await initFor(['file'])
    await expect(
      defaultChain({ ...init, env: { ...init.env, GITHUB_ACTIONS: 'true' } })(),
    ).resolves.toMatchObject({ source: 'token-file' })
  })

  it.each<[string, Record<string, string>, Source[], string]>([
    ['a malformed HIVEMIND_TOKEN', { HIVEMIND_TOKEN: 'oops' }, ['modal', 'file'], 'fromStatic'],
    ['a malformed API key', { HIVEMIND_API_KEY: 'hm-short' }, ['github', 'modal'], 'fromApiKey'],
    [
      'a configured token file that is missing',
      { HIVEMIND_OIDC_TOKEN_FILE: '/nonexistent/token' },
      [],
      'fromTokenFile',
    ],
  ])('stops at %s rather than using another source', async (_name, bad, sources, provider) => {
    const init = await initFor(sources)
    const log = logger()
    const before = endpoint.requests.length
    await expect(
      defaultChain({ ...init, env: { ...init.env, ...bad }, logger: log })(),
    ).rejects.toMatchObject({ code: 'ERR_AUTHENTICATION', provider })
    expect(endpoint.requests.length).toBe(before)
    expect(log.debug).toHaveBeenCalledWith(
      expect.stringContaining(
        `@hivemind/sdk - defaultChain: ${provider} failed, stopping (ERR_AUTHENTICATION)`,
      ),
    )
  })

  it('stops when GitHub applies but fails', async () => {
    endpoint.failTimes(1, 403)
    const init = await initFor(['github', 'modal'])
    await expect(defaultChain(init)({ audience: AUDIENCE })).rejects.toMatchObject({
      code: 'ERR_AUTHENTICATION',
      provider: 'fromGitHubActions',
    })
  })

  it('is a named provider', () => {
    expect(defaultChain().providerName).toBe('defaultChain')
  })
})
