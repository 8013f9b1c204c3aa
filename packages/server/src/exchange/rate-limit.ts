import type { Clock } from '../clock.js'

/**
 * Counts failures per key in fixed one-minute windows. In memory, per replica:
 * it slows down guessing and floods, it is not a correctness boundary.
 */
export class FailureLimiter {
  readonly #windows = new Map<string, { count: number; resetAt: number }>()
  constructor(
    private readonly limitPerMinute: number,
    private readonly clock: Clock,
    private readonly maxKeys = 100_000,
  ) {}

  /** Seconds until `key` may try again, or 0 when it is under the limit. */
  retryAfter(key: string): number {
    if (this.limitPerMinute <= 0) return 0
    const w = this.#windows.get(key)
    const now = this.clock.now()
    if (!w || now >= w.resetAt || w.count < this.limitPerMinute) return 0
    return Math.max(1, Math.ceil((w.resetAt - now) / 1000))
  }

  /** Records one failure of `key`. */
  fail(key: string): void {
    if (this.limitPerMinute <= 0) return
    const now = this.clock.now()
    const w = this.#windows.get(key)
    if (w && now < w.resetAt) {
      w.count++
      return
    }
    if (this.#windows.size >= this.maxKeys) this.#prune(now)
    this.#windows.set(key, { count: 1, resetAt: now + 60_000 })
  }

  #prune(now: number): void {
    for (const [k, w] of this.#windows) if (now >= w.resetAt) this.#windows.delete(k)
    // Still full of live windows (a flood of distinct keys): start over rather than grow.
    if (this.#windows.size >= this.maxKeys) this.#windows.clear()
  }
}
