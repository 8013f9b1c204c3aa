// STUB: replaced by the exchange work (PostgreSQL table store, Redis store when REDIS_URL is set).
import type { Logger } from 'pino'
import type { ServerConfig } from '../config.js'
import type { Db } from '../db/types.js'
import type { ReplayStore } from './replay-store.js'

export function createReplayStore(_config: ServerConfig, _db: Db, _logger: Logger): Promise<ReplayStore> {
  throw new Error('not implemented yet')
}
