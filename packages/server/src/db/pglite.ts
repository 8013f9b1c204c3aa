import { mkdir } from 'node:fs/promises'
import { PGlite } from '@electric-sql/pglite'
import type { Db, QueryResult } from './types.js'

/** Embedded PostgreSQL (PGlite), the default store. `dataDir` undefined = in memory. */
export async function openPglite(dataDir: string | undefined): Promise<Db> {
  if (dataDir) await mkdir(dataDir, { recursive: true })
  const pg = dataDir ? await PGlite.create(dataDir) : await PGlite.create()
  return wrap(pg, pg)
}

type Queryable = Pick<PGlite, 'query' | 'exec'>

function wrap(root: PGlite, q: Queryable): Db {
  const db: Db = {
    kind: 'pglite',
    async query<T>(sql: string, params: readonly unknown[] = []): Promise<QueryResult<T>> {
      const r = await q.query<T>(sql, params as unknown[])
      return { rows: r.rows, affectedRows: r.affectedRows ?? 0 }
    },
    async exec(sql: string) {
      await q.exec(sql)
    },
    // PGlite reads COPY data from a Blob presented as the file /dev/blob.
    async copyIn(target: string, data: readonly Uint8Array[]) {
      const r = await q.query(`COPY ${target} FROM '/dev/blob' (FORMAT binary)`, [], {
        blob: new Blob(data as Uint8Array<ArrayBuffer>[]),
      })
      return r.affectedRows ?? 0
    },
    async transaction<T>(fn: (tx: Db) => Promise<T>): Promise<T> {
      // PGlite serialises transactions itself; nested calls reuse the outer one.
      if (q !== root) return fn(db)
      return root.transaction((tx) => fn(wrap(root, tx)))
    },
    async ping() {
      await q.query('select 1')
    },
    async close() {
      if (q === root) await root.close()
    },
  }
  return db
}
