/** Result of a query: rows typed by the caller, plus affected row count. */
export interface QueryResult<T> {
  rows: T[]
  affectedRows: number
}

/**
 * The one database interface the server codes against. PGlite and node-postgres
 * both implement it; SQL is PostgreSQL dialect with `$1` placeholders and runs
 * unchanged on both.
 */
export interface Db {
  readonly kind: 'pglite' | 'postgres'
  query<T = Record<string, unknown>>(
    sql: string,
    params?: readonly unknown[],
  ): Promise<QueryResult<T>>
  /**
   * Runs a script of several statements (no parameters), e.g. a migration file with
   * dollar-quoted blocks; the database, not a regex, splits it.
   */
  exec(sql: string): Promise<void>
  /**
   * Bulk-loads rows in PostgreSQL's binary COPY format (see `BinaryCopyWriter`) into
   * `target`, a table with an optional column list (`events (a, b)`); returns the rows
   * stored. One statement: a constraint violation stores none of them.
   */
  copyIn(target: string, data: readonly Uint8Array[]): Promise<number>
  /** Runs `fn` in one transaction; commits on success, rolls back on throw. */
  transaction<T>(fn: (tx: Db) => Promise<T>): Promise<T>
  /** Cheap liveness check for readiness probes. */
  ping(): Promise<void>
  close(): Promise<void>
}
