import { describe, expect, it, vi } from 'vitest'
import { ENV_TOKEN, fromStatic } from './from-static.js'

const SA = `hmsa_${'a'.repeat(43)}`
const PAT = `hmpat_${'B9_-'.repeat(12)}`
const JWT = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJzYV8xIiwiZXhwIjo0MTAyNDQ0ODAwfQ.c2ln'

describe(`${fromStatic.name}`, () => {
  it('exports the env name', () => {
    expect(ENV_TOKEN).toBe('HIVEMIND_TOKEN')
  })

  it.each([
    ['service-account token from env', {}, { HIVEMIND_TOKEN: SA }, SA],
    ['PAT from env', {}, { HIVEMIND_TOKEN: PAT }, PAT],
    ['JWT from env', {}, { HIVEMIND_TOKEN: JWT }, JWT],
    ['surrounding whitespace trimmed', {}, { HIVEMIND_TOKEN: ` ${SA}\n` }, SA],
    ['init wins over env', { token: PAT }, { HIVEMIND_TOKEN: SA }, PAT],
  ])('%s', async (_name, init, env, expected) => {
    await expect(fromStatic({ ...init, env })()).resolves.toEqual({
      kind: 'bearer',
      token: expected,
      source: 'static',
    })
  })

  it.each([
    ['unset', {}, {}, 'HIVEMIND_TOKEN is not set'],
    ['empty env', {}, { HIVEMIND_TOKEN: '' }, 'HIVEMIND_TOKEN is not set'],
    ['blank env', {}, { HIVEMIND_TOKEN: '  ' }, 'HIVEMIND_TOKEN is not set'],
    ['empty option', { token: '' }, { HIVEMIND_TOKEN: SA }, 'the `token` option is empty'],
  ])('is unavailable when %s', async (_name, init, env, message) => {
    await expect(fromStatic({ ...init, env })()).rejects.toMatchObject({
      code: 'ERR_CREDENTIAL_UNAVAILABLE',
      provider: 'fromStatic',
      message: expect.stringContaining(message),
    })
  })

  it.each([
    ['too short', `hmsa_${'a'.repeat(42)}`, 'hmsa_'],
    ['wrong prefix', `ghp_${'a'.repeat(40)}`, 'ghp_'],
    ['bad characters', `hmpat_${'a'.repeat(42)}+/`, 'hmpat_'],
    ['two-part JWT', 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0', undefined],
    ['JWT with undecodable payload', 'abc.def.ghi', undefined],
  ])('rejects a malformed token (%s) without echoing it', async (_name, token, prefix) => {
    const error: unknown = await fromStatic({ env: { HIVEMIND_TOKEN: token } })().catch(
      (e: unknown) => e,
    )
    expect(error).toMatchObject({
      code: 'ERR_AUTHENTICATION',
      provider: 'fromStatic',
      message: expect.stringContaining('HIVEMIND_TOKEN does not look like a HiveMind token'),
    })
    const message = (error as Error).message
    expect(message).toContain('`hmsa_…`')
    expect(message).toContain('`hmpat_…`')
    expect(message).toContain('JWT')
    expect(message).toContain(`${token.length} characters`)
    expect(message).toMatch(/sha256:[0-9a-f]{12}/)
    expect(message).toContain(
      prefix === undefined ? 'characters, sha256:' : `starting with "${prefix}"`,
    )
    expect(message).not.toContain(token)
  })

  it('names the option when the explicit token is malformed', async () => {
    await expect(fromStatic({ token: 'nope', env: {} })()).rejects.toMatchObject({
      code: 'ERR_AUTHENTICATION',
      message: expect.stringContaining('the `token` option does not look like'),
    })
  })

  it('logs a fingerprint, never the token', async () => {
    const logger = { debug: vi.fn(), info: vi.fn(), warn: vi.fn(), error: vi.fn() }
    await fromStatic({ env: { HIVEMIND_TOKEN: SA }, logger })()
    expect(logger.debug).toHaveBeenCalledWith(
      expect.stringMatching(/^@hivemind\/sdk - fromStatic: .*sha256:[0-9a-f]{12}/),
    )
    expect(JSON.stringify(logger.debug.mock.calls)).not.toContain(SA)
  })

  it('has a provider name', () => {
    expect(fromStatic().providerName).toBe('fromStatic')
  })
})
