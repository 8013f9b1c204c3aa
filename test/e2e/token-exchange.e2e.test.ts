import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  HiveMindClient,
  TokenManager,
  fromTokenFile,
  type Clock,
  type TokenManagerState,
} from '@hivemind/sdk'
import { kubernetesClaims, startOidcIssuer, type LocalOidcIssuer } from '@hivemind/test-utils'
import {
  ROOT,
  assertBuilt,
  freePort,
  kubeletTokenDir,
  metric,
  startServerProcess,
  type RunningServer,
} from './helpers.js'

const ADMIN_API_KEY = 'e2e-admin-key-0123456789abcdef'
const HOUR = 3600

/**
 * The SDK's token manager against the real server process and a real local OIDC
 * issuer standing in for a Kubernetes cluster: exchange, refresh before expiry, the
 * client replay guard with an unchanged token file, exhaustion, and recovery.
 * Time moves with the manager's injected clock and the server's test clock
 * (HIVEMIND_TEST_CLOCK_OFFSET_S, honoured only with NODE_ENV=test).
 */
describe('token manager ⇄ hivemind-server (end to end)', () => {
  let issuer: LocalOidcIssuer
  let work: string
  let port: number
  let server: RunningServer
  let serviceAccountId: string

  const startServer = (offsetSeconds: number) =>
    startServerProcess({
      NODE_ENV: 'test',
      HIVEMIND_HOST: '127.0.0.1',
      HIVEMIND_PORT: String(port),
      HIVEMIND_DATA_DIR: join(work, 'data'),
      ADMIN_API_KEY,
      HIVEMIND_TEST_CLOCK_OFFSET_S: String(offsetSeconds),
    })

  const admin = async (path: string, body: unknown) => {
    const res = await fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: { 'x-api-key': ADMIN_API_KEY, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })
    const json = (await res.json()) as Record<string, unknown>
    expect({ status: res.status, json }).toMatchObject({ status: 201 })
    return json
  }

  beforeAll(async () => {
    assertBuilt()
    issuer = await startOidcIssuer()
    work = await mkdtemp(join(tmpdir(), 'hivemind-e2e-'))
    port = await freePort()
    server = await startServer(0)
    const sa = await admin('/api/v1/service-accounts', {
      name: 'k8s-runner',
      scopes: ['read', 'write'],
    })
    serviceAccountId = sa.id as string
    await admin(`/api/v1/service-accounts/${serviceAccountId}/identity-providers`, {
      preset: 'kubernetes',
      issuer: issuer.issuer,
      selector: 'system:serviceaccount:agents:runner',
    })
  }, 60_000)

  afterAll(async () => {
    await server?.stop()
    await issuer?.close()
    if (work) await rm(work, { recursive: true, force: true })
  })

  it('exchanges, refreshes before expiry, guards replays, pauses when exhausted and resumes', async () => {
    const tokenDir = kubeletTokenDir(join(work, 'projected'))
    // Kubernetes tokens without a jti differ only by their times; keep each mint in
    // its own second, as the kubelet's would be, or they would be the same token.
    let generation = 0
    const mint = (serverOffsetS = 0) =>
      issuer.mint(
        { ...kubernetesClaims('agents', 'runner'), aud: [server.url] },
        {
          ttlSeconds: 2 * HOUR,
          noJti: true,
          now: Date.now() + serverOffsetS * 1000 + generation++ * 1000,
        },
      )
    await tokenDir.write(await mint())

    // The client's clock: real time plus an offset the test moves.
    let skewMs = 0
    const clock: Clock = {
      now: () => Date.now() + skewMs,
      monotonicNow: () => performance.now() + skewMs,
    }
    const states: TokenManagerState[] = []
    const manager = new TokenManager({
      provider: fromTokenFile({ path: tokenDir.path }),
      endpoint: server.url,
      clock,
      sourcePollMs: 0,
      logger: process.env.E2E_DEBUG ? console : undefined,
      onStateChange: ({ state }) => states.push(state),
    })
    const exchanges = () => metric(server.url, 'hivemind_token_exchanges_total', 'result="success"')

    try {
      // 1. First exchange; the JWT works on the API and acts as the service account.
      const first = await manager.getToken()
      expect(first.kind).toBe('bearer')
      const client = new HiveMindClient({ endpoint: server.url, auth: { tokenManager: manager } })
      await expect(client.me()).resolves.toMatchObject({
        kind: 'service_account',
        id: serviceAccountId,
        scopes: ['read', 'write'],
      })
      // 2 h ID token → 2 h JWT (inside the [1 h, 24 h] clamp).
      const ttlS = (first.expiresAt!.getTime() - Date.now()) / 1000
      expect(ttlS).toBeGreaterThan(2 * HOUR - 60)
      expect(ttlS).toBeLessThanOrEqual(2 * HOUR)

      // 1,000 concurrent callers share the cached token: still one exchange.
      const many = await Promise.all(Array.from({ length: 1000 }, () => manager.getToken()))
      expect(new Set(many.map((t) => t.token))).toEqual(new Set([first.token]))
      expect(await exchanges()).toBe(1)

      // 2. Past the refresh point (80 % of 2 h = 96 min) with the file unchanged: the
      // client replay guard keeps the cached JWT and does not call the server.
      skewMs = 100 * 60_000
      const stillCached = await manager.getToken()
      expect(stillCached.token).toBe(first.token)
      await new Promise((r) => setTimeout(r, 300))
      expect(await exchanges()).toBe(1)

      // The server refuses the same ID token too (replay key without a jti).
      const sameIdToken = await new HiveMindClient({ endpoint: server.url })
        .exchange((await import('node:fs')).readFileSync(tokenDir.path, 'utf8').trim())
        .catch((e: unknown) => e)
      expect(sameIdToken).toMatchObject({
        code: 'ERR_TOKEN_EXCHANGE_REJECTED',
        status: 400,
        error: 'invalid_grant',
        hivemindError: 'replayed_token',
      })

      // 3. The kubelet rotates the file: the next refresh exchanges the new token.
      await tokenDir.write(await mint())
      await expect
        .poll(async () => (await manager.getToken()).token, { timeout: 10_000 })
        .not.toBe(first.token)
      expect(await exchanges()).toBe(2)
      const second = await manager.getToken()
      await expect(client.me()).resolves.toMatchObject({ id: serviceAccountId })

      // 4. No rotation for longer than the JWT lives: exhausted, typed error naming the source.
      skewMs += 3 * HOUR * 1000
      await expect(manager.getToken()).rejects.toMatchObject({
        code: 'ERR_SUBJECT_TOKEN_EXHAUSTED',
        message: expect.stringContaining('fromTokenFile'),
      })
      expect(manager.state).toBe('exhausted')

      // The server agrees the old JWT is expired once its clock moves as far.
      await server.stop()
      server = await startServer(3 * HOUR + 100 * 60)
      const expired = await fetch(`${server.url}/api/v1/me`, {
        headers: { authorization: `Bearer ${second.token}` },
      })
      expect(expired.status).toBe(401)

      // 5. A fresh ID token appears: the manager resumes by itself.
      await tokenDir.write(await mint(3 * HOUR + 100 * 60))
      const resumed = await manager.getToken()
      expect(resumed.token).not.toBe(second.token)
      expect(manager.state).toBe('valid')
      const me = await fetch(`${server.url}/api/v1/me`, {
        headers: { authorization: `Bearer ${resumed.token}` },
      })
      expect(me.status).toBe(200)
      expect(states).toContain('exhausted')
      expect(states.lastIndexOf('valid')).toBeGreaterThan(states.indexOf('exhausted'))
      // The token never appears in the server's output (logs).
      expect(server.output()).not.toContain(resumed.token)
    } finally {
      manager.close()
    }
  }, 90_000)

  it('runs examples/sdk/exchange-and-call.ts with a static service-account token', async () => {
    const created = await admin(`/api/v1/service-accounts/${serviceAccountId}/tokens`, {
      expires_in: '30d',
      scopes: ['read'],
    })
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        join(ROOT, 'node_modules/tsx/dist/cli.mjs'),
        '--tsconfig',
        join(ROOT, 'examples/tsconfig.json'),
        join(ROOT, 'examples/sdk/exchange-and-call.ts'),
      ],
      {
        env: {
          PATH: process.env.PATH ?? '',
          HIVEMIND_ENDPOINT: server.url,
          HIVEMIND_TOKEN: created.token as string,
        },
      },
    )
    expect(stdout).toContain(`authenticated as service_account k8s-runner (${serviceAccountId})`)
    expect(stdout).not.toContain(created.token as string)
  }, 60_000)
})
