import { HiveMindApiError, HiveMindNetworkError } from '../errors.js'
import type { Clock } from './clock.js'
import { fullJitter, sleep } from './sleep.js'

/** Resolved retry settings shared by the client and the token manager. */
export interface RetryPolicy {
  /** Retries after the first attempt. */
  retries: number
  baseDelayMs: number
  maxDelayMs: number
  /** Cap on a server's `Retry-After`, so a hostile or buggy value cannot park us for hours. */
  maxRetryAfterMs: number
  /** Timeout of one attempt. */
  attemptTimeoutMs: number
  /** Budget of the whole operation, retries and sleeps included. */
  deadlineMs: number
}

/** Whether an attempt's error may be retried, and after how long if the server said so. */
export interface RetryDecision {
  retry: boolean
  retryAfterMs?: number | undefined
}

/**
 * 408, 429 and 5xx are transient; 400/401/403 are denials that would fail the same
 * way again (retrying AccessDenied is a known configure-aws-credentials complaint).
 */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500
}

/** Default classification: HiveMind network errors and retryable statuses. */
export function classifyError(error: unknown): RetryDecision {
  if (error instanceof HiveMindNetworkError) return { retry: true }
  if (error instanceof HiveMindApiError && isRetryableStatus(error.status)) {
    return { retry: true, retryAfterMs: error.retryAfterMs }
  }
  return { retry: false }
}

/** One attempt: gets its 0-based index and the time it may take. */
export type Attempt<T> = (attempt: number, timeoutMs: number) => Promise<T>

export interface RetryOptions {
  policy: RetryPolicy
  clock: Clock
  random: () => number
  signal?: AbortSignal | undefined
  classify?: (error: unknown) => RetryDecision
  onRetry?: (info: { attempt: number; delayMs: number; error: unknown }) => void
}

/**
 * Runs `attempt` until it succeeds, fails with a non-retryable error, runs out of
 * retries, or would cross the overall deadline. Full-jitter backoff (AWS), or the
 * server's `Retry-After` (capped) when it sent one. Throws the last attempt's error
 * so callers see the real cause rather than a generic "retries exhausted".
 */
export async function withRetry<T>(attempt: Attempt<T>, options: RetryOptions): Promise<T> {
  const { policy, clock, random, signal } = options
  const classify = options.classify ?? classifyError
  const deadline = clock.monotonicNow() + policy.deadlineMs
  for (let i = 0; ; i++) {
    const remaining = deadline - clock.monotonicNow()
    try {
      return await attempt(i, Math.max(1, Math.min(policy.attemptTimeoutMs, remaining)))
    } catch (error) {
      if (signal?.aborted) throw error
      const decision = classify(error)
      if (!decision.retry || i >= policy.retries) throw error
      const delayMs =
        decision.retryAfterMs === undefined
          ? fullJitter(i, policy.baseDelayMs, policy.maxDelayMs, random)
          : Math.min(decision.retryAfterMs, policy.maxRetryAfterMs)
      // Sleeping past the deadline only to give up afterwards would waste the caller's time.
      if (clock.monotonicNow() + delayMs >= deadline) throw error
      options.onRetry?.({ attempt: i, delayMs, error })
      await sleep(delayMs, signal)
    }
  }
}

/**
 * `Retry-After` as milliseconds: delta-seconds or an HTTP-date (RFC 9110 §10.2.3).
 * Undefined when absent or unparsable.
 */
export function parseRetryAfter(value: string | null, nowMs: number): number | undefined {
  if (value == null || value.trim() === '') return undefined
  const trimmed = value.trim()
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000
  const date = Date.parse(trimmed)
  if (Number.isNaN(date)) return undefined
  return Math.max(0, date - nowMs)
}
