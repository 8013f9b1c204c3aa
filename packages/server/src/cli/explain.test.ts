import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { githubClaims, startOidcIssuer, type LocalOidcIssuer } from '@hivemind/test-utils'
import { ADMIN_KEY, tempDir } from '../../test/helpers.js'
import { createServer } from '../server.js'
import { runCli } from './run.js'

let issuer: LocalOidcIssuer
let dir: Awaited<ReturnType<typeof tempDir>>
const env = () => ({
  HIVEMIND_DATA_DIR: join(dir.path, 'data'),
  HIVEMIND_PUBLIC_URL: 'https://hivemind.example.com',
  LOG_LEVEL: 'silent',
})

async function cli(...args: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = []
  const code = await runCli(['node', 'hivemind-server', ...args], {
    env: env(),
    print: (l) => lines.push(l),
    stopSignal: () => new Promise(() => {}),
  })
  return { code, out: lines.join('\n') }
}

async function tokenFile(name: string, claims: Record<string, unknown>): Promise<string> {
  const path = join(dir.path, name)
  await writeFile(path, `${await issuer.mint(claims)}\n`)
  return path
}

beforeAll(async () => {
  issuer = await startOidcIssuer()
  dir = await tempDir()
  const server = await createServer({
    env: { ...env(), ADMIN_API_KEY: ADMIN_KEY, HIVEMIND_PORT: '0' },
  })
  const { url } = await server.listen()
  const call = (path: string, body: unknown) =>
    fetch(url + path, {
      method: 'POST',
      headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    }).then((r) => r.json() as Promise<{ id: string }>)
  const sa = await call('/api/v1/service-accounts', { name: 'cli-explain', scopes: ['write'] })
  await call(`/api/v1/service-accounts/${sa.id}/identity-providers`, {
    preset: 'github',
    issuer: issuer.issuer,
    selector: 'repo:octo-org/octo-repo',
    policy: 'claims.ref == "refs/heads/main"',
  })
  await server.close()
}, 60_000)

afterAll(async () => {
  await issuer?.close()
  await dir?.remove()
})

describe('hivemind-server explain', () => {
  it('exit 0 and every check when the exchange would pass; the replay key is not consumed', async () => {
    const file = await tokenFile('ok.jwt', githubClaims())
    const first = await cli('explain', '--token-file', file)
    expect(first.code).toBe(0)
    expect(first.out).toMatch(/PASS {2}signature: verified/)
    expect(first.out).toMatch(/PASS {2}policy: .*returned true/)
    expect(first.out).toContain('"ref":"refs/heads/main"')
    expect(first.out).toMatch(/result: allow/)
    expect((await cli('explain', '--token-file', file)).code).toBe(0)
  })

  it('exit 1 naming the failed check and the claims that decided it', async () => {
    const file = await tokenFile(
      'dev.jwt',
      githubClaims('octo-org/octo-repo', { ref: 'refs/heads/dev' }),
    )
    const r = await cli('explain', '--token-file', file)
    expect(r.code).toBe(1)
    expect(r.out).toMatch(/FAIL {2}policy: .*returned false \[policy_denied\]/)
    expect(r.out).toContain('"ref":"refs/heads/dev"')
  })

  it('--json prints the explain response', async () => {
    const file = await tokenFile('json.jwt', githubClaims('someone/else'))
    const r = await cli('explain', '--token-file', file, '--json')
    expect(r.code).toBe(1)
    const json = JSON.parse(r.out.slice(0, r.out.lastIndexOf('}') + 1)) as { result: string }
    expect(json.result).toBe('deny')
  })

  it('exit 2 without --token-file', async () => {
    expect((await cli('explain')).code).toBe(2)
  })
})
