import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chmod, mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { kubernetesClaims, startOidcIssuer, type LocalOidcIssuer } from '@hivemind/test-utils'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { DEFAULT_OIDC_TOKEN_FILE, ENV_OIDC_TOKEN_FILE, fromTokenFile } from './from-token-file.js'

let issuer: LocalOidcIssuer
let dir: string

beforeAll(async () => {
  issuer = await startOidcIssuer()
})
afterAll(() => issuer.close())
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hivemind-token-file-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

const mint = () => issuer.mint(kubernetesClaims(), { ttlSeconds: 3600 })

/** Write a token the way the kubelet's AtomicWriter does: a fresh timestamped dir, then swap `..data`. */
async function kubeletWrite(volume: string, token: string, stamp: string): Promise<void> {
  const dataDir = join(volume, `..${stamp}`)
  await mkdir(dataDir)
  await writeFile(join(dataDir, 'token'), token)
  await symlink(`..${stamp}`, join(volume, '..data_tmp'))
  await rename(join(volume, '..data_tmp'), join(volume, '..data'))
}

describe(`${fromTokenFile.name}`, () => {
  it('exports the env name and default path', () => {
    expect(ENV_OIDC_TOKEN_FILE).toBe('HIVEMIND_OIDC_TOKEN_FILE')
    expect(DEFAULT_OIDC_TOKEN_FILE).toBe('/var/run/secrets/hivemind/token')
  })

  it.each([
    ['the path option', (p: string) => ({ path: p, env: { HIVEMIND_OIDC_TOKEN_FILE: '/nope' } })],
    ['HIVEMIND_OIDC_TOKEN_FILE', (p: string) => ({ env: { HIVEMIND_OIDC_TOKEN_FILE: p } })],
  ])('reads the file named by %s and trims whitespace', async (_name, init) => {
    const token = await mint()
    const path = join(dir, 'token')
    await writeFile(path, `\n  ${token}\n\n`)
    await expect(fromTokenFile(init(path))()).resolves.toEqual({
      kind: 'id-token',
      token,
      source: 'token-file',
      refreshable: 'maybe',
    })
  })

  it('picks up a kubelet-style ..data symlink swap on the next call', async () => {
    const first = await mint()
    const second = await mint()
    await kubeletWrite(dir, first, '2026_01_01_1')
    await symlink(join('..data', 'token'), join(dir, 'token'))
    const provider = fromTokenFile({ path: join(dir, 'token'), env: {} })

    await expect(provider()).resolves.toMatchObject({ token: first })
    await expect(provider()).resolves.toMatchObject({ token: first })

    await kubeletWrite(dir, second, '2026_01_01_2')
    await rm(join(dir, '..2026_01_01_1'), { recursive: true })
    await expect(provider()).resolves.toMatchObject({ token: second })
  })

  it('picks up a file rewritten in place', async () => {
    const path = join(dir, 'token')
    const provider = fromTokenFile({ path, env: {} })
    const [first, second] = [await mint(), await mint()]
    await writeFile(path, first)
    await expect(provider()).resolves.toMatchObject({ token: first })
    await writeFile(path, second)
    await expect(provider()).resolves.toMatchObject({ token: second })
  })

  it.skipIf(existsSync(DEFAULT_OIDC_TOKEN_FILE))(
    'is unavailable when only the default path is absent',
    async () => {
      await expect(fromTokenFile({ env: {} })()).rejects.toMatchObject({
        code: 'ERR_CREDENTIAL_UNAVAILABLE',
        provider: 'fromTokenFile',
        message: expect.stringContaining(
          'no token file at /var/run/secrets/hivemind/token and HIVEMIND_OIDC_TOKEN_FILE is not set',
        ),
      })
    },
  )

  it.each([
    ['the path option', (p: string) => ({ path: p, env: {} }), 'the `path` option'],
    [
      'HIVEMIND_OIDC_TOKEN_FILE',
      (p: string) => ({ env: { HIVEMIND_OIDC_TOKEN_FILE: p } }),
      'HIVEMIND_OIDC_TOKEN_FILE',
    ],
  ])('fails when the file configured by %s is missing', async (_name, init, setBy) => {
    const path = join(dir, 'missing')
    await expect(fromTokenFile(init(path))()).rejects.toMatchObject({
      code: 'ERR_AUTHENTICATION',
      message: `token file ${path} (set by ${setBy}) does not exist`,
      hint: expect.stringContaining('HIVEMIND_OIDC_TOKEN_FILE'),
    })
  })

  it('fails on a dangling symlink (a half-finished rotation or a bad mount)', async () => {
    const path = join(dir, 'token')
    await symlink(join('..data', 'token'), path)
    await expect(fromTokenFile({ path, env: {} })()).rejects.toMatchObject({
      code: 'ERR_AUTHENTICATION',
      message: expect.stringContaining(
        `token file ${path} (set by the \`path\` option) does not exist`,
      ),
    })
  })

  it.each([
    ['empty', async (p: string) => writeFile(p, ''), 'is empty'],
    ['only whitespace', async (p: string) => writeFile(p, ' \n\t\n'), 'is empty'],
    ['a directory', async (p: string) => mkdir(p), 'is a directory'],
    ['a JSON file', async (p: string) => writeFile(p, '{"token":"x"}'), 'does not hold a JWT'],
    [
      'two tokens',
      async (p: string) => writeFile(p, `${await mint()}\n${await mint()}`),
      'does not hold a JWT',
    ],
    [
      'a FIFO',
      (p: string) => Promise.resolve(execFileSync('mkfifo', [p])),
      'is not a regular file',
    ],
  ])('fails when the file is %s', async (_name, make, what) => {
    const path = join(dir, 'token')
    await make(path)
    await expect(fromTokenFile({ path, env: {} })()).rejects.toMatchObject({
      code: 'ERR_AUTHENTICATION',
      provider: 'fromTokenFile',
      message: expect.stringContaining(`token file ${path} (set by the \`path\` option) ${what}`),
    })
  })

  it('fails on a non-JWT default file rather than moving on, without echoing it', async () => {
    const path = join(dir, 'token')
    const secret = 'some-opaque-secret-value'
    await writeFile(path, secret)
    const error: unknown = await fromTokenFile({ path, env: {} })().catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'ERR_AUTHENTICATION' })
    expect((error as Error).message).not.toContain(secret)
  })

  it('names the token file in the hint for a directory', async () => {
    await expect(fromTokenFile({ path: dir, env: {} })()).rejects.toMatchObject({
      hint: expect.stringContaining(`${dir}/token`),
    })
  })

  it.skipIf(process.getuid?.() === 0)('fails when the file is unreadable', async () => {
    const path = join(dir, 'token')
    await writeFile(path, await mint())
    await chmod(path, 0o000)
    await expect(fromTokenFile({ path, env: {} })()).rejects.toMatchObject({
      code: 'ERR_AUTHENTICATION',
      message: expect.stringContaining('cannot be read by this process (EACCES'),
      hint: expect.stringContaining('defaultMode'),
    })
  })

  it('logs the path, jti and exp, never the token', async () => {
    const logger = { debug: vi.fn(), info: vi.fn(), warn: vi.fn(), error: vi.fn() }
    const token = await mint()
    const path = join(dir, 'token')
    await writeFile(path, token)
    await fromTokenFile({ path, env: {}, logger })()
    const line = String(logger.debug.mock.calls[0]?.[0])
    expect(line).toMatch(
      new RegExp(`^@hivemind/sdk - fromTokenFile: read ${path} \\(sha256:[0-9a-f]{12}, jti `),
    )
    expect(line).not.toContain(token)
  })
})
