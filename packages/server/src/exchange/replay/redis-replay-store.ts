import { Redis } from 'ioredis'
import type { Logger } from 'pino'
import { ReplayStoreUnavailableError } from '../../errors.js'
import type { ReplayStore } from '../replay-store.js'

/** Options of {@link createRedisReplayStore}. */
export interface RedisReplayStoreOptions {
  /** Prepended to every key. @default "hivemind:replay:" */
  keyPrefix?: string
  /** Connect timeout (milliseconds). @default 1000 */
  connectTimeoutMs?: number
  /** Per-command timeout (milliseconds). @default 1000 */
  commandTimeoutMs?: number
  logger?: Logger
}

/**
 * Replay store in Redis: `SET key 1 NX EXAT exp+leeway`, atomic across replicas.
 *
 * Configured to fail fast instead of queueing: no offline queue and no per-request
 * retries, so a stopped Redis turns into ReplayStoreUnavailableError (→ 503, never
 * a mint) within the command timeout. ioredis keeps reconnecting in the background.
 */
export async function createRedisReplayStore(
  url: string,
  options: RedisReplayStoreOptions = {},
): Promise<ReplayStore> {
  const prefix = options.keyPrefix ?? 'hivemind:replay:'
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: options.connectTimeoutMs ?? 1000,
    commandTimeout: options.commandTimeoutMs ?? 1000,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: (times) => Math.min(times * 200, 2000),
  })
  let lastError = ''
  redis.on('error', (err: Error) => {
    // One log line per distinct failure, not one per reconnect attempt.
    if (err.message !== lastError) options.logger?.warn({ err }, 'redis replay store error')
    lastError = err.message
  })
  redis.on('ready', () => {
    lastError = ''
  })
  try {
    await redis.connect()
  } catch (err) {
    // Start anyway: health reports the store down and exchanges answer 503
    // until Redis is back.
    options.logger?.warn({ err }, 'redis replay store not reachable at start; retrying')
  }
  const wrap = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn()
    } catch (err) {
      throw new ReplayStoreUnavailableError(`replay store (redis) failed to ${what}`, {
        cause: err,
      })
    }
  }
  return {
    kind: 'redis',
    async claim(key, expiresAtSeconds) {
      // EXAT must be in the future for the key to survive; a past instant means the
      // token is expired anyway, but keep at least one second so the claim holds.
      const at = Math.max(Math.ceil(expiresAtSeconds), Math.floor(Date.now() / 1000) + 1)
      const r = await wrap('claim', () => redis.set(prefix + key, '1', 'EXAT', at, 'NX'))
      return r === 'OK'
    },
    async has(key) {
      return (await wrap('look up', () => redis.exists(prefix + key))) === 1
    },
    async ping() {
      await wrap('answer', () => redis.ping())
    },
    close() {
      redis.disconnect()
      return Promise.resolve()
    },
  }
}
