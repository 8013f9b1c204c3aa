import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { ENV_API_KEY, fromApiKey, readEnvFile } from './from-api-key.js'

const KEY = `hm-${'k'.repeat(64)}`
const KEY2 = `hm-${'Z9_-'.repeat(16)}`

let home: string
const envFile = () => join(home, '.config', 'hivemind', 'env')

async function writeEnvFile(text: string): Promise<string> {
  await mkdir(join(home, '.config', 'hivemind'), { recursive: true })
  await writeFile(envFile(), text)
  return envFile()
}

beforeEach(async () => {
  home = await mkdtemp(join(tmpdir(), 'hivemind-api-key-'))
})
afterEach(async () => {
  await rm(home, { recursive: true, force: true })
})

describe(`${fromApiKey.name}`, () => {
  it('exports the env name', () => {
    expect(ENV_API_KEY).toBe('HIVEMIND_API_KEY')
  })

  it.each([
    ['the option first', { apiKey: KEY2 }, { HIVEMIND_API_KEY: KEY }, KEY, KEY2],
    ['then the env', {}, { HIVEMIND_API_KEY: KEY2 }, KEY, KEY2],
    ['then the env file', {}, {}, KEY2, KEY2],
    ['then the env file, when the env var is empty', {}, { HIVEMIND_API_KEY: '' }, KEY2, KEY2],
  ])('reads %s', async (_name, init, env, inFile, expected) => {
    await writeEnvFile(`HIVEMIND_API_KEY=${inFile}\n`)
    await expect(fromApiKey({ ...init, env, homeDir: home })()).resolves.toEqual({
      kind: 'api-key',
      apiKey: expected,
      source: 'api-key',
    })
  })

  it.each([
    ['plain', `HIVEMIND_API_KEY=${KEY}`],
    ['export and double quotes', `export HIVEMIND_API_KEY="${KEY}"`],
    ['single quotes and spaces', `  HIVEMIND_API_KEY = '${KEY}'  `],
    ['comments and other keys', `# my key\nOTHER=1\n\nHIVEMIND_API_KEY=${KEY} # rotated in May\n`],
    ['CRLF line ends', `OTHER=1\r\nHIVEMIND_API_KEY=${KEY}\r\n`],
    ['the last line wins', `HIVEMIND_API_KEY=${KEY2}\nHIVEMIND_API_KEY=${KEY}`],
  ])('parses an env file: %s', async (_name, text) => {
    await writeEnvFile(text)
    await expect(fromApiKey({ env: {}, homeDir: home })()).resolves.toMatchObject({ apiKey: KEY })
  })

  it('reads an explicit env file', async () => {
    const path = join(home, 'custom.env')
    await writeFile(path, `HIVEMIND_API_KEY=${KEY}`)
    await expect(fromApiKey({ env: {}, envFile: path })()).resolves.toMatchObject({ apiKey: KEY })
  })

  it.each([
    ['no env var and no file', undefined, 'HIVEMIND_API_KEY is not set and'],
    [
      'a file without the key',
      'OTHER=1\n# HIVEMIND_API_KEY=hm-x\n',
      'has no HIVEMIND_API_KEY line',
    ],
    ['an empty key in the file', 'HIVEMIND_API_KEY=\n', 'is empty'],
  ])('is unavailable with %s', async (_name, text, message) => {
    if (text !== undefined) await writeEnvFile(text)
    await expect(fromApiKey({ env: {}, homeDir: home })()).rejects.toMatchObject({
      code: 'ERR_CREDENTIAL_UNAVAILABLE',
      provider: 'fromApiKey',
      message: expect.stringContaining(message),
    })
  })

  it.each([
    ['too short', `hm-${'a'.repeat(63)}`],
    ['too long', `hm-${'a'.repeat(65)}`],
    ['wrong prefix', `hmsa_${'a'.repeat(64)}`],
  ])('rejects a malformed key (%s) without echoing it', async (_name, key) => {
    const error: unknown = await fromApiKey({ env: { HIVEMIND_API_KEY: key } })().catch(
      (e: unknown) => e,
    )
    expect(error).toMatchObject({
      code: 'ERR_AUTHENTICATION',
      message: expect.stringContaining('HIVEMIND_API_KEY does not look like a HiveMind API key'),
    })
    expect((error as Error).message).toContain('`hm-` followed by 64 characters')
    expect((error as Error).message).not.toContain(key)
  })

  it('names the file when its key is malformed', async () => {
    const path = await writeEnvFile('HIVEMIND_API_KEY=hm-short\n')
    await expect(fromApiKey({ env: {}, homeDir: home })()).rejects.toMatchObject({
      code: 'ERR_AUTHENTICATION',
      message: expect.stringContaining(`HIVEMIND_API_KEY in ${path}`),
    })
  })

  it.each([
    ['an explicit file that is missing', () => join(home, 'missing.env'), 'ENOENT'],
    ['an explicit path that is a directory', () => home, 'EISDIR'],
  ])('fails on %s', async (_name, path, code) => {
    await expect(fromApiKey({ env: {}, envFile: path() })()).rejects.toMatchObject({
      code: 'ERR_AUTHENTICATION',
      message: expect.stringContaining(`cannot read ${path()} (${code})`),
    })
  })

  it.skipIf(process.getuid?.() === 0)('fails when the default file is unreadable', async () => {
    const path = await writeEnvFile(`HIVEMIND_API_KEY=${KEY}`)
    await chmod(path, 0o000)
    await expect(fromApiKey({ env: {}, homeDir: home })()).rejects.toMatchObject({
      code: 'ERR_AUTHENTICATION',
      message: expect.stringContaining(`cannot read ${path} (EACCES)`),
    })
  })

  it('logs a fingerprint, never the key', async () => {
    const logger = { debug: vi.fn(), info: vi.fn(), warn: vi.fn(), error: vi.fn() }
    await fromApiKey({ env: { HIVEMIND_API_KEY: KEY }, logger })()
    expect(logger.debug).toHaveBeenCalledWith(
      expect.stringMatching(
        /^@hivemind\/sdk - fromApiKey: .*HIVEMIND_API_KEY \(sha256:[0-9a-f]{12}\)/,
      ),
    )
    expect(JSON.stringify(logger.debug.mock.calls)).not.toContain(KEY)
  })
})

describe(`${readEnvFile.name}`, () => {
  it('parses dotenv-style lines', async () => {
    const path = join(home, 'env')
    await writeFile(
      path,
      [
        '# comment',
        'A=1',
        'export B="two words"',
        "C='single # not a comment'",
        'D=unquoted # comment',
        'E="escaped \\" quote\\nnewline"',
        'not a line',
        'F=',
      ].join('\n'),
    )
    await expect(readEnvFile(path)).resolves.toEqual({
      A: '1',
      B: 'two words',
      C: 'single # not a comment',
      D: 'unquoted',
      E: 'escaped " quote\nnewline',
      F: '',
    })
  })
})
