/** Injectable time source, so tests move past expiry without waiting. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number
}

export const systemClock: Clock = { now: () => Date.now() }

/** A clock shifted by a fixed offset (the test-only HIVEMIND_TEST_CLOCK_OFFSET_S). */
export function offsetClock(offsetSeconds: number, base: Clock = systemClock): Clock {
  if (offsetSeconds === 0) return base
  return { now: () => base.now() + offsetSeconds * 1000 }
}

/** Seconds since the epoch, floored. */
export function nowSeconds(clock: Clock): number {
  return Math.floor(clock.now() / 1000)
}
