import { readdir, readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import type { Db } from './types.js'

/**
 * Migrations are plain SQL files `NNN_name.sql`, applied in order, once each,
 * in one transaction per file. The same files run on PGlite and PostgreSQL 15,
 * so they stay to SQL both accept.
 */
export const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url))

export interface MigrationResult {
  applied: string[]
  alreadyApplied: number
}

/** Lists the migration files this build ships, in order. */
export async function migrationNames(dir?: string): Promise<string[]> {
  const files = await readdir(dir ?? (await findMigrationsDir()))
  return files.filter((f) => /^\d{3}_[\w-]+\.sql$/.test(f)).sort()
}

export async function migrate(
  db: Db,
  options: {
    dir?: string
    onProgress?: (name: string, index: number, total: number) => void
    /** Apply only the migrations this accepts (restore replays a backup's schema version first). */
    only?: (name: string) => boolean
  } = {},
): Promise<MigrationResult> {
  const dir = options.dir ?? (await findMigrationsDir())
  const files = (await readdir(dir)).filter((f) => /^\d{3}_[\w-]+\.sql$/.test(f)).sort()
  await db.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
    name text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
  )`)
  // Serialise concurrent starters (several replicas booting at once) on PostgreSQL.
  const lock = db.kind === 'postgres'
  return db.transaction(async (tx) => {
    if (lock) await tx.query('SELECT pg_advisory_xact_lock(8585001)')
    const done = new Set(
      (await tx.query<{ name: string }>('SELECT name FROM schema_migrations')).rows.map(
        (r) => r.name,
      ),
    )
    const pending = files.filter((f) => !done.has(f) && (options.only?.(f) ?? true))
    let i = 0
    for (const file of pending) {
      options.onProgress?.(file, ++i, pending.length)
      const sql = await readFile(`${dir}/${file}`, 'utf8')
      await tx.exec(sql)
      await tx.query('INSERT INTO schema_migrations (name) VALUES ($1)', [file])
    }
    return { applied: pending, alreadyApplied: done.size }
  })
}

/** Source tree (tests, tsx) or bundled dist: migrations sit beside this module or in ../src. */
async function findMigrationsDir(): Promise<string> {
  const candidates = [
    MIGRATIONS_DIR,
    fileURLToPath(new URL('../src/db/migrations/', import.meta.url)),
    fileURLToPath(new URL('./db/migrations/', import.meta.url)),
  ]
  for (const dir of candidates) {
    try {
      await readdir(dir)
      return dir
    } catch {
      // try the next layout
    }
  }
  throw new Error(`migrations folder not found (looked in ${candidates.join(', ')})`)
}
