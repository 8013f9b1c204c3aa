import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from './config.js'

describe(loadConfig.name, () => {
  it.each([
    [
      { HIVEMIND_PORT: 'abc' },
      'invalid HIVEMIND_PORT="abc": Invalid input: expected number, received NaN',
    ],
    [
      { HIVEMIND_PORT: '70000' },
      'invalid HIVEMIND_PORT="70000": Too big: expected number to be <=65535',
    ],
    [{ HIVEMIND_PUBLIC_URL: 'ftp://x' }, 'invalid HIVEMIND_PUBLIC_URL="ftp://x": Invalid URL'],
    [{ DATABASE_URL: 'mysql://x' }, 'invalid DATABASE_URL="mysql://x": must be a postgres:// URL'],
    [
      { REDIS_URL: 'http://x' },
      'invalid REDIS_URL="http://x": must be a redis:// or rediss:// URL',
    ],
    [
      { HIVEMIND_SECRET_KEY: 'short' },
      'invalid HIVEMIND_SECRET_KEY="short": must be at least 32 characters',
    ],
    [{ ADMIN_API_KEY: 'short' }, 'invalid ADMIN_API_KEY="short": must be at least 16 characters'],
    [
      { HIVEMIND_SIGNING_ALG: 'HS256' },
      'invalid HIVEMIND_SIGNING_ALG="HS256": Invalid option: expected one of "ES256"|"EdDSA"',
    ],
    [{ LOG_LEVEL: 'loud' }, expect.stringMatching(/^invalid LOG_LEVEL="loud": Invalid option/)],
    [
      { HIVEMIND_METRICS: 'maybe' },
      expect.stringMatching(/^invalid HIVEMIND_METRICS="maybe": Invalid option/),
    ],
  ])('rejects %o with one line', (env, message) => {
    let err: unknown
    try {
      loadConfig(env)
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(ConfigError)
    expect(err).toMatchObject({ code: 'ERR_CONFIG', message })
    expect((err as Error).message).not.toContain('\n')
  })

  it('applies defaults and normalises the public URL', () => {
    const c = loadConfig({ HIVEMIND_PUBLIC_URL: 'https://HiveMind.example.com/' })
    expect(c).toMatchObject({
      host: '127.0.0.1',
      port: 8585,
      publicUrl: 'https://hivemind.example.com',
      audience: 'https://hivemind.example.com',
      signingAlg: 'ES256',
      testClockOffsetS: 0,
    })
    expect(loadConfig({}).publicUrl).toBe('http://127.0.0.1:8585')
  })

  it('honours HIVEMIND_TEST_CLOCK_OFFSET_S only when NODE_ENV=test', () => {
    expect(loadConfig({ HIVEMIND_TEST_CLOCK_OFFSET_S: '3600' }).testClockOffsetS).toBe(0)
    expect(
      loadConfig({ HIVEMIND_TEST_CLOCK_OFFSET_S: '3600', NODE_ENV: 'test' }).testClockOffsetS,
    ).toBe(3600)
  })

  it('treats empty values as unset', () => {
    expect(loadConfig({ HIVEMIND_PORT: '', DATABASE_URL: '' })).toMatchObject({
      port: 8585,
      databaseUrl: undefined,
    })
  })
})
