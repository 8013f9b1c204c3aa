import { HttpResponse } from 'msw'
import { describe, expect, it } from 'vitest'
import {
  callsTo,
  defaultHandlers,
  exchangeBody,
  oauthError,
  route,
  TEST_ENDPOINT,
  useMswServer,
} from '../../test/msw.js'
import type { CredentialProvider } from '../credentials/types.js'
import { HiveMindClient } from '../http/client.js'
import { TokenManager } from './token-manager.js'

// HTTP retry semantics of the manager's own loop, against msw.
const server = useMswServer(...defaultHandlers)

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')

/** Like GitHub: a new ID token (new jti) on every call. */
function mintingSource(): CredentialProvider & { calls: number } {
  const fn = Object.assign(
    () => {
      fn.calls++
      const token = `${b64({ alg: 'ES256' })}.${b64({ iss: 'https://gh.test', sub: 'repo:o/r', jti: `gh-${fn.calls}` })}.c2ln`
      return Promise.resolve({
        kind: 'id-token' as const,
        token,
        source: 'ACTIONS_ID_TOKEN_REQUEST_URL',
        refreshable: 'always' as const,
      })
    },
    { providerName: 'fromGitHubActions', calls: 0 },
  )
  return fn
}

function manager(provider: CredentialProvider, retries = 3): TokenManager {
  const client = new HiveMindClient({
    endpoint: TEST_ENDPOINT,
    retries,
    retryBaseDelayMs: 1,
    retryMaxDelayMs: 5,
    env: {},
  })
  return new TokenManager({ provider, client, env: {} })
}

describe(`${TokenManager.name} retries`, () => {
  it.each([408, 429, 500, 502, 503])(
    'asks the provider for a fresh ID token on every attempt after %i',
    async (status) => {
      server.use(
        route('post', '/oauth/token', ({ n }) =>
          n < 3
            ? oauthError(status, { error: 'temporarily_unavailable' })
            : HttpResponse.json(exchangeBody()),
        ),
      )
      const source = mintingSource()
      const m = manager(source)
      await expect(m.getToken()).resolves.toMatchObject({ token: exchangeBody().access_token })
      const subjects = callsTo('/oauth/token').map((c) => c.form?.subject_token)
      expect(subjects).toHaveLength(3)
      expect(new Set(subjects).size).toBe(3)
      expect(source.calls).toBe(3)
      m.close()
    },
  )

  it.each([
    [400, 'invalid_grant'],
    [401, 'invalid_client'],
    [403, 'unauthorized_client'],
  ])('does not retry a %i %s denial', async (status, error) => {
    server.use(route('post', '/oauth/token', () => oauthError(status, { error })))
    const source = mintingSource()
    const m = manager(source)
    await expect(m.getToken()).rejects.toMatchObject({
      code: 'ERR_TOKEN_EXCHANGE_REJECTED',
      status,
    })
    expect(callsTo('/oauth/token')).toHaveLength(1)
    expect(source.calls).toBe(1)
    expect(m.state).toBe('failed')
    m.close()
  })

  it('does not multiply its retries by the client: retries + 1 attempts in all', async () => {
    server.use(
      route('post', '/oauth/token', () => oauthError(503, { error: 'temporarily_unavailable' })),
    )
    const m = manager(mintingSource(), 2)
    await expect(m.getToken()).rejects.toMatchObject({ status: 503 })
    expect(callsTo('/oauth/token')).toHaveLength(3)
    m.close()
  })
})
