import { createHash, timingSafeEqual } from 'node:crypto'
import type { Context, Middleware } from 'koa'
import { CSRF_COOKIE, principalOf, type AuthState } from '../auth/authenticate.js'
import { ApiError } from '../errors.js'
import { newCsrfToken } from '../users/store.js'

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])
// They authenticate by the body, not by an ambient cookie.
const EXEMPT_PATHS = new Set(['/auth/login', '/auth/register'])

const digest = (v: string) => createHash('sha256').update(v, 'utf8').digest()

/** Serialises a cookie; Secure when the public URL is https (a TLS proxy in front). */
export function cookie(
  name: string,
  value: string,
  options: { secure: boolean; httpOnly: boolean; maxAgeS?: number },
): string {
  return [
    `${name}=${value}`,
    'Path=/',
    ...(options.maxAgeS === undefined ? [] : [`Max-Age=${options.maxAgeS}`]),
    ...(options.httpOnly ? ['HttpOnly'] : []),
    'SameSite=Lax',
    ...(options.secure ? ['Secure'] : []),
  ].join('; ')
}

/**
 * CSRF protection for ambient credentials (DESIGN.md, "Browser security"): a
 * state-changing request authenticated by the `hm_session` cookie or by forward-auth
 * headers needs `X-CSRF-Token` equal to the `hm_csrf` cookie (double submit). For a
 * session the value must also be the one issued with it, so a cookie planted by a
 * sibling subdomain does not pass. API keys and bearer tokens are exempt: a
 * cross-site page cannot attach them.
 *
 * @example
 * app.use(authenticate(deps)); app.use(csrfProtection({ secure: true }))
 */
export function csrfProtection(options: { secure: boolean }): Middleware {
  return async (ctx, next) => {
    const p = principalOf(ctx)
    const ambient = p?.kind === 'user' && (p.via === 'session' || p.via === 'forward_auth')
    if (!ambient) {
      await next()
      return
    }
    const cookieValue = ctx.cookies.get(CSRF_COOKIE)
    if (p.via === 'forward_auth' && !cookieValue) {
      // Forward-auth users never log in here, so they get their CSRF cookie on first sight.
      ctx.append(
        'Set-Cookie',
        cookie(CSRF_COOKIE, newCsrfToken(), { secure: options.secure, httpOnly: false }),
      )
    }
    if (
      !SAFE_METHODS.has(ctx.method) &&
      !EXEMPT_PATHS.has(ctx.path) &&
      !validCsrf(ctx, cookieValue)
    ) {
      throw new ApiError(
        403,
        'csrf_failed',
        'missing or mismatched X-CSRF-Token header: send the value of the hm_csrf cookie',
      )
    }
    await next()
  }
}

function validCsrf(ctx: Context, cookieValue: string | undefined): boolean {
  const header = ctx.get('x-csrf-token')
  if (!header || !cookieValue) return false
  if (!timingSafeEqual(digest(header), digest(cookieValue))) return false
  const bound = (ctx.state as AuthState).sessionCsrfHash
  if (bound === undefined) return true
  return timingSafeEqual(Buffer.from(bound, 'hex'), digest(header))
}
