import type { AppDeps } from '../deps.js'
import { ApiError } from '../errors.js'
import { FailureLimiter } from '../exchange/rate-limit.js'

/**
 * The failed-authentication limiters of one app (DESIGN.md, "Rate limits"). Keys
 * always include the client address, so failing on someone else's behalf only
 * slows down the failing address: nobody can lock an account out from elsewhere.
 */
export interface AuthLimits {
  /** Failed credentials (keys, tokens, sessions, forward-auth injections, logins) per address. */
  byAddress: FailureLimiter
  /** Failed logins per (account, address). */
  byLogin: FailureLimiter
}

const limits = new WeakMap<AppDeps, AuthLimits>()

/** The limiters shared by the auth middleware and the login route of one app. */
export function authLimitsFor(deps: AppDeps): AuthLimits {
  let l = limits.get(deps)
  if (!l) {
    l = {
      byAddress: new FailureLimiter(deps.config.rateLimitAuthFailuresPerMin, deps.clock),
      byLogin: new FailureLimiter(deps.config.rateLimitLoginFailuresPerMin, deps.clock),
    }
    limits.set(deps, l)
  }
  return l
}

/** 429 with `Retry-After`, naming what was limited. */
export function tooManyFailures(retryAfter: number, what: string): ApiError {
  return new ApiError(
    429,
    'rate_limited',
    `too many failed authentication attempts from this ${what}; retry in ${retryAfter} s`,
    { headers: { 'Retry-After': String(retryAfter) } },
  )
}
