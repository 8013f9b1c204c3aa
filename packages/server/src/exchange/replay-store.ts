/**
 * Where exchanged ID tokens are remembered, so each one is exchanged once.
 * PostgreSQL table by default; Redis when REDIS_URL is set.
 */
export interface ReplayStore {
  readonly kind: 'postgres' | 'redis'
  /**
   * Atomically claims `key` until `expiresAtSeconds` (epoch). True when newly
   * claimed; false when already claimed (a replay). Throws
   * ReplayStoreUnavailableError when the store cannot be reached.
   */
  claim(key: string, expiresAtSeconds: number): Promise<boolean>
  /** Whether `key` is claimed, without claiming it (for explain). */
  has(key: string): Promise<boolean>
  ping(): Promise<void>
  close(): Promise<void>
}
