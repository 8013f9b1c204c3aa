import type { Db } from '../db/types.js'
import type { Where } from './where.js'

/** Matches ranked per search: the newest ones when a query matches more. */
export const SEARCH_CANDIDATES = 1000
/** Newest event ids the first pass of a search looks at. */
export const SEARCH_WINDOW = 100_000

/** The newest matches of a search, newest first, and which pass found them. */
export interface Candidates {
  ids: string[]
  scanned: 'window' | 'all'
}

/**
 * Ids of the newest `limit` events matching `where` (over `events e`, joined to
 * `sessions s` when `joinSessions`), newest first.
 *
 * The GIN index yields a word's matches as a bitmap in table order, so finding the
 * newest of a word found in a large share of events means reading the row of every
 * match: tens of thousands for a common word at a million events. The first pass ANDs
 * that bitmap with a bitmap of the newest `window` ids from the primary key and reads
 * only the rows in both; when it finds `limit` matches they are exactly the newest ones.
 * Otherwise the query is selective (a rare word, a narrow filter) and the second pass
 * takes the whole table, which is cheap then because few rows match.
 */
export async function newestMatches(
  db: Db,
  where: Where,
  options: { joinSessions: boolean; limit?: number; window?: number },
): Promise<Candidates> {
  const limit = options.limit ?? SEARCH_CANDIDATES
  const window = options.window ?? SEARCH_WINDOW
  const from = options.joinSessions ? 'events e JOIN sessions s ON s.id = e.session_id' : 'events e'
  const conditions = where.clauses.length ? where.clauses.join(' AND ') : 'true'
  const n = where.params.length
  const ids = (rows: { id: string | number }[]) => rows.map((r) => String(r.id))
  return db.transaction(async (tx) => {
    const { rows: top } = await tx.query<{ hi: string | number | null }>(
      'SELECT max(id) AS hi FROM events',
    )
    const floor = top[0]?.hi == null ? 0 : Number(top[0].hi) - window
    if (floor > 0) {
      // Left to itself the planner may rather walk the primary key backwards from the
      // floor and test every row with @@, or read every match of the GIN bitmap: both read
      // far more rows than the two bitmaps ANDed. Plain index scans are off for this
      // statement only, which leaves it bitmap scans.
      await tx.query('SET LOCAL enable_indexscan = off')
      const { rows } = await tx.query<{ id: string | number }>(
        `SELECT e.id FROM ${from} WHERE ${conditions} AND e.id > $${n + 1}
          ORDER BY e.id DESC LIMIT $${n + 2}`,
        [...where.params, floor, limit],
      )
      if (rows.length >= limit) return { ids: ids(rows), scanned: 'window' }
      await tx.query('SET LOCAL enable_indexscan = on')
    }
    // `e.id + 0` keeps the planner off a backward primary-key walk filtered by @@: fast
    // when matches are dense near the end, but a scan of most of the table when its
    // estimate is off (a word plus a session filter).
    const { rows } = await tx.query<{ id: string | number }>(
      `SELECT e.id FROM ${from} WHERE ${conditions} ORDER BY e.id + 0 DESC LIMIT $${n + 1}`,
      [...where.params, limit],
    )
    return { ids: ids(rows), scanned: 'all' }
  })
}
