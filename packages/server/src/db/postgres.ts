import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import pg from 'pg'
import { from as copyFrom } from 'pg-copy-streams'
import type { Db, QueryResult } from './types.js'

// BIGINT comes back as a string by default; our counters and epoch seconds fit in a double.
pg.types.setTypeParser(20, (v) => Number(v))

/** PostgreSQL through a node-postgres pool (when DATABASE_URL is set). */
export async function openPostgres(url: string, options: { max?: number } = {}): Promise<Db> {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    connectionTimeoutMillis: 5000,
  })
  // An idle client dropping (database restart) must not crash the process.
  pool.on('error', () => {})
  ;(await pool.connect()).release()

  const db: Db = {
    kind: 'postgres',
    query: (sql, params) => run(pool, sql, params),
    // Without parameters node-postgres uses the simple protocol, which takes several statements.
    async exec(sql) {
      await pool.query(sql)
    },
    async copyIn(target, data) {
      const client = await pool.connect()
      try {
        return await copyInto(client, target, data)
      } finally {
        client.release()
      }
    },
    async transaction(fn) {
      const client = await pool.connect()
      try {
        await client.query('BEGIN')
        const out = await fn(clientDb(client))
        await client.query('COMMIT')
        return out
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {})
        throw err
      } finally {
        client.release()
      }
    },
    async ping() {
      await pool.query('select 1')
    },
    close: () => pool.end(),
  }
  return db
}

/** A Db bound to one client inside a transaction; nested transactions reuse it. */
function clientDb(client: pg.PoolClient): Db {
  const db: Db = {
    kind: 'postgres',
    query: (sql, params) => run(client, sql, params),
    async exec(sql) {
      await client.query(sql)
    },
    copyIn: (target, data) => copyInto(client, target, data),
    transaction: (fn) => fn(db),
    async ping() {
      await client.query('select 1')
    },
    async close() {},
  }
  return db
}

async function run<T>(
  q: pg.Pool | pg.PoolClient,
  sql: string,
  params: readonly unknown[] = [],
): Promise<QueryResult<T>> {
  const r = await q.query(sql, params as unknown[])
  return { rows: r.rows as T[], affectedRows: r.rowCount ?? 0 }
}

async function copyInto(
  client: pg.PoolClient,
  target: string,
  data: readonly Uint8Array[],
): Promise<number> {
  const stream = client.query(copyFrom(`COPY ${target} FROM STDIN (FORMAT binary)`))
  await pipeline(Readable.from(data), stream)
  return stream.rowCount ?? 0
}
