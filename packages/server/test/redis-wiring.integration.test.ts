import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { describe, expect, it } from 'vitest'
import { requireService, testRedisUrl } from '@hivemind/test-utils'
import { createServer } from '../src/server.js'
import { tempDir } from './helpers.js'

const hasRedis = requireService('redis')

describe('REDIS_URL', () => {
  it.skipIf(!hasRedis)(
    'switches the replay store to Redis, with its key prefix, and health reports it',
    async () => {
      const dir = await tempDir()
      const prefix = `wiring:${randomUUID()}:`
      const server = await createServer({
        env: {
          HIVEMIND_HOST: '127.0.0.1',
          HIVEMIND_PORT: '0',
          HIVEMIND_DATA_DIR: dir.path,
          REDIS_URL: testRedisUrl(),
          HIVEMIND_REDIS_KEY_PREFIX: prefix,
          LOG_LEVEL: 'silent',
        },
      })
      const redis = new Redis(testRedisUrl()!)
      try {
        expect(server.deps.replay.kind).toBe('redis')
        const { url } = await server.listen()
        const health = await fetch(`${url}/api/v1/health`)
        expect(health.status).toBe(200)
        expect(await health.json()).toMatchObject({ checks: { replay_store: 'ok' } })

        const exp = Math.floor(Date.now() / 1000) + 600
        expect(await server.deps.replay.claim('wired', exp)).toBe(true)
        expect(await server.deps.replay.claim('wired', exp)).toBe(false)
        const keys = await redis.keys(`${prefix}*`)
        expect(keys).toHaveLength(1)
        // Kept until the ID token's exp (the store adds no shorter TTL of its own).
        expect(await redis.ttl(keys[0])).toBeGreaterThan(500)
      } finally {
        redis.disconnect()
        await server.close()
        await dir.remove()
      }
    },
    30_000,
  )
})
