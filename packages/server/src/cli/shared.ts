import { loadConfig, type ServerConfig } from '../config.js'
import type { Db } from '../db/types.js'
import { openDatabase } from '../server.js'

/** Where data lives, for messages. */
export function describeStorage(config: ServerConfig): string {
  return config.databaseUrl ? 'PostgreSQL (DATABASE_URL)' : `PGlite data in ${config.dataDir}`
}

/** Config + database for one-shot commands; always closes the database. */
export async function withDatabase<T>(
  env: Readonly<Record<string, string | undefined>>,
  fn: (db: Db, config: ServerConfig) => Promise<T>,
): Promise<T> {
  const config = loadConfig(env)
  const db = await openDatabase(config)
  try {
    return await fn(db, config)
  } finally {
    await db.close()
  }
}

export const migrationLine = (name: string, i: number, n: number) =>
  `hivemind-server: applied migration ${name} (${i}/${n})`
