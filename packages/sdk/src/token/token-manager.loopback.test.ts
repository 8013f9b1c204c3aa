// Real parts on loopback (no msw in this file): a local OIDC issuer from test-utils,
// and a tiny /oauth/token server that verifies subject tokens with jose.
import { randomUUID } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  githubClaims,
  kubernetesClaims,
  modalClaims,
  MODAL_TOKEN_TTL_SECONDS,
  startOidcIssuer,
  type LocalOidcIssuer,
} from '@hivemind/test-utils'
import { createRemoteJWKSet, generateKeyPair, jwtVerify, SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Credential, CredentialProvider } from '../credentials/types.js'
import { HiveMindClient } from '../http/client.js'
import type { Clock } from '../internal/clock.js'
import { replayKey, TOKEN_TYPE_JWT, TOKEN_TTL_BOUNDS } from '../schemas/index.js'
import { TokenManager, type TokenManagerState } from './token-manager.js'

const MODAL_AUDIENCE = 'https://oidc.modal.com'

interface ExchangeServer {
  endpoint: string
  exchanges: { sub: string; expiresIn: number }[]
  close(): Promise<void>
}

async function startExchangeServer(issuer: LocalOidcIssuer): Promise<ExchangeServer> {
  const jwks = createRemoteJWKSet(new URL(issuer.jwksUri))
  const { privateKey } = await generateKeyPair('ES256')
  const claimed = new Set<string>()
  const exchanges: ExchangeServer['exchanges'] = []
  let endpoint = ''
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      void (async () => {
        const send = (status: number, body: unknown) =>
          res
            .writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' })
            .end(JSON.stringify(body))
        if (req.method !== 'POST' || req.url !== '/oauth/token') {
          send(404, { error: 'not found' })
          return
        }
        const form = new URLSearchParams(Buffer.concat(chunks).toString())
        let payload
        try {
          ;({ payload } = await jwtVerify(form.get('subject_token') ?? '', jwks, {
            issuer: issuer.issuer,
            audience: [endpoint, MODAL_AUDIENCE],
            requiredClaims: ['iat', 'sub', 'exp'],
          }))
        } catch {
          send(400, { error: 'invalid_grant', hivemind_error: 'bad_signature' })
          return
        }
        const key = replayKey(payload)
        if (claimed.has(key)) {
          send(400, { error: 'invalid_grant', hivemind_error: 'replayed_token' })
          return
        }
        claimed.add(key)
        const left = payload.exp! - Math.floor(Date.now() / 1000)
        const expiresIn = Math.min(
          Math.max(left, TOKEN_TTL_BOUNDS.minSeconds),
          TOKEN_TTL_BOUNDS.maxSeconds,
        )
        exchanges.push({ sub: payload.sub!, expiresIn })
        const jwt = await new SignJWT({ scope: 'write' })
          .setProtectedHeader({ alg: 'ES256' })
          .setSubject('sa_test')
          .setIssuer(endpoint)
          .setJti(randomUUID())
          .setIssuedAt()
          .setExpirationTime(`${expiresIn}s`)
          .sign(privateKey)
        send(200, {
          access_token: jwt,
          issued_token_type: TOKEN_TYPE_JWT,
          token_type: 'Bearer',
          expires_in: expiresIn,
          scope: 'write',
        })
      })()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    endpoint,
    exchanges,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

/** A clock tests move forward by hand; the exchange server keeps real time. */
function manualClock(): Clock & { advance(ms: number): void } {
  let offset = 0
  return {
    now: () => Date.now() + offset,
    monotonicNow: () => performance.now() + offset,
    advance: (ms) => (offset += ms),
  }
}

function source(name: string, read: () => Promise<string>, sourceName = name): CredentialProvider {
  return Object.assign(
    async (): Promise<Credential> => ({
      kind: 'id-token',
      token: await read(),
      source: sourceName,
      refreshable: 'maybe',
    }),
    { providerName: name },
  )
}

function nextState(m: TokenManager, state: TokenManagerState): Promise<void> {
  return new Promise((resolve) => {
    const listener = (c: { state: TokenManagerState }) => {
      if (c.state !== state) return
      m.off('state', listener)
      resolve()
    }
    m.on('state', listener)
  })
}

let issuer: LocalOidcIssuer
let hm: ExchangeServer

beforeAll(async () => {
  issuer = await startOidcIssuer()
  hm = await startExchangeServer(issuer)
})
afterAll(async () => {
  await hm.close()
  await issuer.close()
})

describe(`${TokenManager.name} against a real exchange on loopback`, () => {
  it('GitHub-like: a fresh 5-minute ID token per exchange, JWT clamped to 1 h', async () => {
    const minted: string[] = []
    const gh = source('fromGitHubActions', async () => {
      const t = await issuer.mint(githubClaims('octo-org/octo-repo', { aud: hm.endpoint }), {
        ttlSeconds: 300,
      })
      minted.push(t)
      return t
    })
    const m = new TokenManager({ provider: gh, endpoint: hm.endpoint, env: {} })
    const token = await m.getToken()
    expect(token.kind).toBe('bearer')
    expect(token.jti).toEqual(expect.any(String))
    expect(token.expiresAt!.getTime() - Date.now()).toBeGreaterThan(3590_000)
    expect(hm.exchanges.at(-1)).toEqual({
      sub: 'repo:octo-org/octo-repo:ref:refs/heads/main',
      expiresIn: 3600,
    })
    expect(minted).toHaveLength(1)
    m.close()
  })

  it('Modal-like: a 48 h token without jti is exchanged once; the server and the guard agree on replay', async () => {
    const modal = await issuer.mint(modalClaims(), {
      ttlSeconds: MODAL_TOKEN_TTL_SECONDS,
      noJti: true,
    })
    const clock = manualClock()
    const m = new TokenManager({
      provider: source('fromModal', () => Promise.resolve(modal), 'MODAL_IDENTITY_TOKEN'),
      endpoint: hm.endpoint,
      audience: MODAL_AUDIENCE,
      env: {},
      clock,
      sourcePollMs: 0,
    })
    const before = hm.exchanges.length
    const token = await m.getToken()
    expect(hm.exchanges.length - before).toBe(1)
    expect(hm.exchanges.at(-1)?.expiresIn).toBe(TOKEN_TTL_BOUNDS.maxSeconds)
    expect(token.expiresAt!.getTime() - Date.now()).toBeGreaterThan(86_000_000)
    // The server itself refuses the same token again (same claims-hash replay key).
    await expect(
      new HiveMindClient({ endpoint: hm.endpoint, env: {} }).exchange(modal),
    ).rejects.toMatchObject({
      hivemindError: 'replayed_token',
    })
    clock.advance(24 * 3600_000)
    await expect(m.getToken()).rejects.toMatchObject({
      code: 'ERR_SUBJECT_TOKEN_EXHAUSTED',
      message: expect.stringContaining('MODAL_IDENTITY_TOKEN'),
    })
    expect(m.state).toBe('exhausted')
    m.close()
  })

  describe.each([
    ['with jti', false],
    ['without jti', true],
  ])('Kubernetes-like token file (%s)', (_label, noJti) => {
    let dir: string
    let generation = 0
    let minted = 0
    // Without a jti only the claims tell tokens apart; the kubelet's differ by iat.
    const mintK8s = () =>
      issuer.mint(kubernetesClaims('agents', 'runner', { aud: [hm.endpoint] }), {
        ttlSeconds: 3600,
        noJti,
        iat: Math.floor(Date.now() / 1000) - 60 + ++minted,
      })

    /** The kubelet's atomic writer: a new timestamped dir, then `..data` swapped by rename. */
    async function rotate(token: string): Promise<void> {
      generation++
      const data = `..2026_01_01_00_00_0${generation}`
      await mkdir(join(dir, data))
      await writeFile(join(dir, data, 'token'), `${token}\n`)
      await symlink(data, join(dir, '..data_tmp'))
      await rename(join(dir, '..data_tmp'), join(dir, '..data'))
    }

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'hivemind-token-'))
      await rotate(await mintK8s())
      await symlink('..data/token', join(dir, 'token'))
    })
    afterAll(() => rm(dir, { recursive: true, force: true }))

    it('picks up a rotation on the next refresh; same file → cached → exhausted → resumes', async () => {
      const path = join(dir, 'token')
      const clock = manualClock()
      const states: TokenManagerState[] = []
      const m = new TokenManager({
        provider: source('fromTokenFile', async () => (await readFile(path, 'utf8')).trim(), path),
        endpoint: hm.endpoint,
        env: {},
        clock,
        sourcePollMs: 0,
        onStateChange: ({ state }) => states.push(state),
      })
      const start = hm.exchanges.length
      const first = await m.getToken()

      // The kubelet rotates; the next refresh exchanges the new token.
      await rotate(await mintK8s())
      clock.advance(50 * 60_000)
      const refreshed = nextState(m, 'valid')
      expect(await m.getToken()).toBe(first)
      await refreshed
      const second = await m.getToken()
      expect(second.token).not.toBe(first.token)
      expect(hm.exchanges.length - start).toBe(2)

      // No rotation: the guard keeps the cached JWT without calling the server...
      clock.advance(50 * 60_000)
      expect(await m.getToken()).toBe(second)
      await new Promise((r) => setTimeout(r, 50))
      expect(hm.exchanges.length - start).toBe(2)

      // ...until it expires: exhausted, with the kubelet hint.
      clock.advance(10 * 60_000)
      await expect(m.getToken()).rejects.toMatchObject({
        code: 'ERR_SUBJECT_TOKEN_EXHAUSTED',
        source: path,
        hint: expect.stringContaining('kubelet'),
      })
      expect(hm.exchanges.length - start).toBe(2)

      // The file changes: the next call resumes.
      await rotate(await mintK8s())
      const third = await m.getToken()
      expect(third.token).not.toBe(second.token)
      expect(hm.exchanges.length - start).toBe(3)
      expect(states).toEqual([
        'refreshing',
        'valid',
        'refreshing',
        'valid',
        'exhausted',
        'refreshing',
        'valid',
      ])
      m.close()
    })
  })
})
