/**
 * Time source. `now()` is wall time (for `expiresAt` shown to people);
 * `monotonicNow()` never jumps with NTP or a VM resume, so refresh schedules
 * are measured on it and a skewed wall clock cannot make a JWT look fresh.
 */
export interface Clock {
  /** Wall-clock milliseconds since the epoch. */
  now(): number
  /** Monotonic milliseconds from an arbitrary origin. */
  monotonicNow(): number
}

// Looked up at call time, not bound once, so `vi.useFakeTimers()` applies.
export const systemClock: Clock = {
  now: () => Date.now(),
  monotonicNow: () => performance.now(),
}
