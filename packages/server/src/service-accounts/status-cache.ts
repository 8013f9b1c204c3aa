import type { Clock } from '../clock.js'
import type { Db } from '../db/types.js'
import { getServiceAccount, type ServiceAccountRecord } from './store.js'

/**
 * DESIGN.md allows a disabled account's credentials to live on for at most 30 s
 * on other replicas; this process drops its entry at once on PATCH/DELETE.
 */
export const SA_STATUS_TTL_MS = 30_000

interface Entry {
  at: number
  sa: ServiceAccountRecord | undefined
}

// One cache per database handle: tests run several servers in one process.
const caches = new WeakMap<Db, Map<string, Entry>>()

function cacheFor(db: Db): Map<string, Entry> {
  let c = caches.get(db)
  if (!c) caches.set(db, (c = new Map<string, Entry>()))
  return c
}

/** The account behind a credential, cached ≤ 30 s; undefined when it no longer exists. */
export async function cachedServiceAccount(
  db: Db,
  clock: Clock,
  id: string,
): Promise<ServiceAccountRecord | undefined> {
  const cache = cacheFor(db)
  const now = clock.now()
  const hit = cache.get(id)
  if (hit && now - hit.at < SA_STATUS_TTL_MS && now >= hit.at) return hit.sa
  const sa = await getServiceAccount(db, id)
  // Bound memory: a burst of distinct ids should not grow the map forever.
  if (cache.size > 10_000) cache.clear()
  cache.set(id, { at: now, sa })
  return sa
}

/** Forget an account's cached status (after it was changed or deleted here). */
export function invalidateServiceAccount(db: Db, id: string): void {
  cacheFor(db).delete(id)
}
