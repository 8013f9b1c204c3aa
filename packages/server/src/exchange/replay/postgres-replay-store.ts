import type { Logger } from 'pino'
import type { Db } from '../../db/types.js'
import { ReplayStoreUnavailableError } from '../../errors.js'
import type { ReplayStore } from '../replay-store.js'

/** How often (at most) expired rows are pruned, piggy-backing on claims. */
const PRUNE_EVERY_MS = 60_000

/**
 * Replay store on the `replay_claims` table (PostgreSQL or PGlite).
 *
 * A claim is one `INSERT … ON CONFLICT DO NOTHING`: the primary key makes it
 * atomic across replicas. An expired row still blocks its key, which is safe:
 * rows live until the ID token's `exp` + leeway, so by then the token itself no
 * longer passes the time check. Expired rows are deleted lazily.
 */
export function createPostgresReplayStore(db: Db, logger?: Logger): ReplayStore {
  let lastPrune = 0
  const wrap = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn()
    } catch (err) {
      throw new ReplayStoreUnavailableError(`replay store (database) failed to ${what}`, {
        cause: err,
      })
    }
  }
  const prune = () => {
    const now = Date.now()
    if (now - lastPrune < PRUNE_EVERY_MS) return
    lastPrune = now
    // Database time, not the server clock: a row is only dropped once it is
    // expired in real time, whatever test clock offset the server runs with.
    db.query('DELETE FROM replay_claims WHERE expires_at < now()').catch((err: unknown) =>
      logger?.warn({ err }, 'pruning replay_claims failed'),
    )
  }
  return {
    kind: 'postgres',
    async claim(key, expiresAtSeconds) {
      const r = await wrap('claim', () =>
        db.query(
          'INSERT INTO replay_claims (key, expires_at) VALUES ($1, to_timestamp($2)) ON CONFLICT (key) DO NOTHING',
          [key, expiresAtSeconds],
        ),
      )
      prune()
      return r.affectedRows === 1
    },
    async has(key) {
      const r = await wrap('look up', () =>
        db.query('SELECT 1 FROM replay_claims WHERE key = $1', [key]),
      )
      return r.rows.length > 0
    },
    async ping() {
      await wrap('answer', () => db.ping())
    },
    // The database belongs to the server; closing it is not this store's job.
    async close() {},
  }
}
