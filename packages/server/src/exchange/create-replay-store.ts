import type { Logger } from 'pino'
import type { ServerConfig } from '../config.js'
import type { Db } from '../db/types.js'
import { createPostgresReplayStore } from './replay/postgres-replay-store.js'
import { createRedisReplayStore } from './replay/redis-replay-store.js'
import type { ReplayStore } from './replay-store.js'

/**
 * The replay store of this server: Redis when `REDIS_URL` is set, else the
 * `replay_claims` table in the server's database.
 */
export async function createReplayStore(
  config: Pick<ServerConfig, 'redisUrl'> & Partial<Pick<ServerConfig, 'redisKeyPrefix'>>,
  db: Db,
  logger: Logger,
): Promise<ReplayStore> {
  if (config.redisUrl) {
    logger.info('replay store: redis')
    return createRedisReplayStore(config.redisUrl, {
      logger,
      ...(config.redisKeyPrefix ? { keyPrefix: config.redisKeyPrefix } : {}),
    })
  }
  logger.info(`replay store: ${db.kind} table replay_claims`)
  return createPostgresReplayStore(db, logger)
}
