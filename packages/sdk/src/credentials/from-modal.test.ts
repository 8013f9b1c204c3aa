import { modalClaims, startOidcIssuer, type LocalOidcIssuer } from '@hivemind/test-utils'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { ENV_MODAL_IDENTITY_TOKEN, fromModal } from './from-modal.js'

let issuer: LocalOidcIssuer
let token: string

beforeAll(async () => {
  issuer = await startOidcIssuer()
  token = await issuer.mint(modalClaims(), { ttlSeconds: 48 * 3600 })
})
afterAll(() => issuer.close())

describe(`${fromModal.name}`, () => {
  it('exports the env name', () => {
    expect(ENV_MODAL_IDENTITY_TOKEN).toBe('MODAL_IDENTITY_TOKEN')
  })

  it('returns the container token as a never-refreshable ID token', async () => {
    const provider = fromModal({ env: { MODAL_IDENTITY_TOKEN: `${token}\n` } })
    const expected = { kind: 'id-token', token, source: 'modal', refreshable: 'never' }
    await expect(provider()).resolves.toEqual(expected)
    await expect(provider()).resolves.toEqual(expected)
  })

  it('prefers the token option over the env', async () => {
    await expect(
      fromModal({ token, env: { MODAL_IDENTITY_TOKEN: 'other' } })(),
    ).resolves.toMatchObject({ token })
  })

  it.each([
    ['unset', {}],
    ['empty', { MODAL_IDENTITY_TOKEN: '' }],
  ])('is unavailable when the env var is %s', async (_name, env) => {
    await expect(fromModal({ env })()).rejects.toMatchObject({
      code: 'ERR_CREDENTIAL_UNAVAILABLE',
      provider: 'fromModal',
      message: expect.stringContaining('MODAL_IDENTITY_TOKEN is not set'),
    })
  })

  it('rejects a value that is not a JWT, without echoing it', async () => {
    const secret = 'not-a-jwt-secret-value'
    const error: unknown = await fromModal({ env: { MODAL_IDENTITY_TOKEN: secret } })().catch(
      (e: unknown) => e,
    )
    expect(error).toMatchObject({
      code: 'ERR_AUTHENTICATION',
      message: expect.stringContaining('MODAL_IDENTITY_TOKEN is not a JWT'),
    })
    expect((error as Error).message).not.toContain(secret)
  })

  it('logs jti and exp, never the token', async () => {
    const logger = { debug: vi.fn(), info: vi.fn(), warn: vi.fn(), error: vi.fn() }
    await fromModal({ env: { MODAL_IDENTITY_TOKEN: token }, logger })()
    const line = String(logger.debug.mock.calls[0]?.[0])
    expect(line).toMatch(
      /^@hivemind\/sdk - fromModal: .*sha256:[0-9a-f]{12}, jti [0-9a-f-]+, exp \d{4}-/,
    )
    expect(line).not.toContain(token)
  })
})
