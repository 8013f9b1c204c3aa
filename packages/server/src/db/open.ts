import type { ServerConfig } from '../config.js'
import { openPglite } from './pglite.js'
import { openPostgres } from './postgres.js'
import type { Db } from './types.js'

/** PostgreSQL when DATABASE_URL is set, else embedded PGlite in HIVEMIND_DATA_DIR. */
export async function openDb(config: Pick<ServerConfig, 'databaseUrl' | 'dataDir'>): Promise<Db> {
  return config.databaseUrl ? openPostgres(config.databaseUrl) : openPglite(config.dataDir)
}
