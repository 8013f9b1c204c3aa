import type { Logger } from 'pino'
import type { AuditLog } from './audit/types.js'
import type { Clock } from './clock.js'
import type { ServerConfig } from './config.js'
import type { Db } from './db/types.js'
import type { ReplayStore } from './exchange/replay-store.js'
import type { KeyStore } from './keys/types.js'
import type { Metrics } from './metrics.js'

/** Everything a route or service needs, built once in `createServer` and passed down. */
export interface AppDeps {
  config: ServerConfig
  db: Db
  clock: Clock
  logger: Logger
  keys: KeyStore
  replay: ReplayStore
  audit: AuditLog
  metrics: Metrics
}
