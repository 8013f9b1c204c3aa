import { execFileSync, spawnSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { createServer } from 'node:net'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  githubClaims,
  modalClaims,
  MODAL_TOKEN_TTL_SECONDS,
  requireService,
  startOidcIssuer,
  testRedisUrl,
  type LocalOidcIssuer,
} from '@hivemind/test-utils'
import { migrate } from '../../db/migrate.js'
import { openPostgres } from '../../db/postgres.js'
import type { Db } from '../../db/types.js'
import { ReplayStoreUnavailableError } from '../../errors.js'
import { freshPostgresDatabase } from '../../../test/helpers.js'
import { startExchangeHarness } from '../../../test/exchange-harness.js'
import type { ReplayStore } from '../replay-store.js'
import { createPostgresReplayStore } from './postgres-replay-store.js'
import { createRedisReplayStore } from './redis-replay-store.js'

const hasPostgres = requireService('postgres')
const hasRedis = requireService('redis')
const prefix = () => `test:${randomUUID()}:`

let gh: LocalOidcIssuer
let modal: LocalOidcIssuer
let pgDb: Db | undefined
let dropDb: (() => Promise<void>) | undefined

beforeAll(async () => {
  gh = await startOidcIssuer()
  modal = await startOidcIssuer()
  if (hasPostgres) {
    const fresh = await freshPostgresDatabase()
    dropDb = () => fresh.drop()
    pgDb = await openPostgres(fresh.url, { max: 20 })
    await migrate(pgDb)
  }
})
afterAll(async () => {
  await gh?.close()
  await modal?.close()
  await pgDb?.close()
  await dropDb?.()
})

const stores: [string, boolean, () => Promise<ReplayStore>][] = [
  ['postgres', hasPostgres, () => Promise.resolve(createPostgresReplayStore(pgDb!))],
  ['redis', hasRedis, () => createRedisReplayStore(testRedisUrl()!, { keyPrefix: prefix() })],
]

describe.each(stores)('%s replay store', (_kind, available, open) => {
  it.skipIf(!available)('claims once, atomically, and answers has() without claiming', async () => {
    const store = await open()
    try {
      const key = `k-${randomUUID()}`
      const exp = Math.floor(Date.now() / 1000) + 600
      expect(await store.has(key)).toBe(false)
      const results = await Promise.all(Array.from({ length: 50 }, () => store.claim(key, exp)))
      expect(results.filter(Boolean)).toHaveLength(1)
      expect(await store.has(key)).toBe(true)
      await store.ping()
    } finally {
      await store.close()
    }
  })

  it.skipIf(!available)(
    '50 concurrent identical exchanges over HTTP → exactly one 200',
    async () => {
      const store = await open()
      const h = await startExchangeHarness({
        ...(_kind === 'postgres' ? { db: pgDb! } : {}),
        replay: () => store,
        env: { HIVEMIND_RATE_LIMIT_EXCHANGE_PER_MIN: '0' },
      })
      try {
        const sa = await h.serviceAccount(`concurrent-${_kind}`)
        await h.provider(sa, {
          preset: 'github',
          issuer: gh.issuer,
          selector: `repo:octo-org/${_kind}`,
        })
        const token = await gh.mint(githubClaims(`octo-org/${_kind}`), { now: h.clock.now() })
        const results = await Promise.all(Array.from({ length: 50 }, () => h.exchange(token)))
        expect(results.filter((r) => r.status === 200)).toHaveLength(1)
        expect(results.filter((r) => r.body.hivemind_error === 'replayed_token')).toHaveLength(49)
        // Same jti from another issuer is not a replay.
        const sa2 = await h.serviceAccount(`modal-${_kind}`)
        await h.provider(sa2, {
          preset: 'modal',
          issuer: modal.issuer,
          selector: `modal:workspace_id:ws-${_kind}`,
        })
        const jti = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString())
          .jti as string
        const m = await modal.mint(modalClaims(`ws-${_kind}`, { jti }), {
          now: h.clock.now(),
          ttlSeconds: MODAL_TOKEN_TTL_SECONDS,
        })
        expect((await h.exchange(m)).status).toBe(200)
      } finally {
        await h.close()
      }
    },
    60_000,
  )
})

describe('redis replay store', () => {
  it.skipIf(!hasRedis)('keeps a 48 h Modal token claimed past 24 h (exp + leeway)', async () => {
    const keyPrefix = prefix()
    const store = await createRedisReplayStore(testRedisUrl()!, { keyPrefix })
    const h = await startExchangeHarness({ replay: () => store })
    const redis = new Redis(testRedisUrl()!)
    try {
      const sa = await h.serviceAccount('modal-ttl')
      await h.provider(sa, {
        preset: 'modal',
        issuer: modal.issuer,
        selector: 'modal:workspace_id:ws-ttl',
      })
      const token = await modal.mint(modalClaims('ws-ttl'), {
        now: h.clock.now(),
        ttlSeconds: MODAL_TOKEN_TTL_SECONDS,
      })
      const r = await h.exchange(token)
      expect(r.body.expires_in).toBe(86_400)
      const keys = await redis.keys(`${keyPrefix}*`)
      expect(keys).toHaveLength(1)
      expect(await redis.ttl(keys[0])).toBeGreaterThan(47 * 3600)
    } finally {
      redis.disconnect()
      await h.close()
    }
  })

  it('a closed port fails fast with ReplayStoreUnavailableError', async () => {
    const port = await freePort()
    const store = await createRedisReplayStore(`redis://127.0.0.1:${port}`, { keyPrefix: prefix() })
    const started = Date.now()
    await expect(store.claim('k', Math.floor(Date.now() / 1000) + 60)).rejects.toBeInstanceOf(
      ReplayStoreUnavailableError,
    )
    expect(Date.now() - started).toBeLessThan(2000)
    await store.close()
  })

  const haveRedisServer = spawnSync('redis-server', ['--version']).status === 0
  it.skipIf(!haveRedisServer)(
    'Redis stopped mid-flight → 503 temporarily_unavailable, never a mint',
    async () => {
      const port = await freePort()
      execFileSync('redis-server', [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--daemonize',
        'yes',
        '--save',
        '',
        '--appendonly',
        'no',
      ])
      await waitForRedis(port)
      const store = await createRedisReplayStore(`redis://127.0.0.1:${port}`, {
        keyPrefix: prefix(),
      })
      const h = await startExchangeHarness({ replay: () => store })
      try {
        const sa = await h.serviceAccount('redis-stop')
        await h.provider(sa, {
          preset: 'github',
          issuer: gh.issuer,
          selector: 'repo:octo-org/redis-stop',
        })
        const mint = () => gh.mint(githubClaims('octo-org/redis-stop'), { now: h.clock.now() })
        expect((await h.exchange(await mint())).status).toBe(200)
        spawnSync('redis-cli', ['-p', String(port), 'shutdown', 'nosave'])
        const r = await h.exchange(await mint())
        expect(r.status).toBe(503)
        expect(r.body).toMatchObject({
          error: 'temporarily_unavailable',
          hivemind_error: 'replay_store_unavailable',
        })
        expect(r.body.access_token).toBeUndefined()
      } finally {
        spawnSync('redis-cli', ['-p', String(port), 'shutdown', 'nosave'])
        await h.close()
      }
    },
    30_000,
  )
})

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })
}

async function waitForRedis(port: number): Promise<void> {
  for (let i = 0; i < 50; i++) {
    if (
      spawnSync('redis-cli', ['-p', String(port), 'ping'])
        .stdout?.toString()
        .includes('PONG')
    )
      return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error('redis-server did not start')
}

describe('postgres replay store down', () => {
  it.skipIf(!hasPostgres)(
    'answers 503 temporarily_unavailable over HTTP and never mints',
    async () => {
      // The replay store gets its own pool, which is then closed: the database is
      // unreachable for replay claims while the rest of the server still works.
      const fresh = await freshPostgresDatabase()
      const replayDb = await openPostgres(fresh.url, { max: 2 })
      await migrate(replayDb)
      const store = createPostgresReplayStore(replayDb)
      const h = await startExchangeHarness({ db: pgDb!, replay: () => store })
      try {
        const sa = await h.serviceAccount('pg-down')
        await h.provider(sa, {
          preset: 'github',
          issuer: gh.issuer,
          selector: 'repo:octo-org/pg-down',
        })
        await replayDb.close()
        const token = await gh.mint(githubClaims('octo-org/pg-down'), { now: h.clock.now() })
        const r = await h.exchange(token)
        expect(r.status).toBe(503)
        expect(r.body).toMatchObject({
          error: 'temporarily_unavailable',
          hivemind_error: 'replay_store_unavailable',
        })
        expect(r.body).not.toHaveProperty('access_token')
        await expect(store.claim('k', Math.floor(Date.now() / 1000) + 60)).rejects.toBeInstanceOf(
          ReplayStoreUnavailableError,
        )
      } finally {
        await h.close()
        await fresh.drop()
      }
    },
    60_000,
  )
})
