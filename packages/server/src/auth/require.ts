import type { Middleware } from 'koa'
import type { Scope } from '@hivemind/sdk/schemas'
import { ApiError } from '../errors.js'
import type { AuthState } from './authenticate.js'
import type { Principal } from './principal.js'

function authenticated(state: AuthState): Principal {
  if (state.authError) throw state.authError
  if (!state.principal) {
    throw new ApiError(
      401,
      'missing_credentials',
      'missing credentials: send Authorization: Bearer <token> or an X-API-Key header',
      { headers: { 'WWW-Authenticate': 'Bearer realm="hivemind"' } },
    )
  }
  return state.principal
}

/**
 * Any valid credential (admin key, static token, HiveMind JWT).
 *
 * @example
 * router.get('/api/v1/me', requireAuth(), handler)
 */
export function requireAuth(): Middleware {
  return async (ctx, next) => {
    authenticated(ctx.state)
    await next()
  }
}

/**
 * The bootstrap admin (ADMIN_API_KEY); 401 without a valid credential, 403 `forbidden` with another one.
 *
 * @example
 * router.post('/api/v1/exchange/explain', requireAdmin(), handler)
 */
export function requireAdmin(): Middleware {
  return async (ctx, next) => {
    const p = authenticated(ctx.state)
    if (p.kind !== 'admin')
      throw new ApiError(403, 'forbidden', 'this endpoint needs an admin credential')
    await next()
  }
}

/**
 * A credential carrying `scope`; 403 `insufficient_scope` naming it otherwise.
 *
 * @example
 * router.post('/api/v1/sessions/batch', requireScope('write'), handler)
 */
export function requireScope(scope: Scope): Middleware {
  return async (ctx, next) => {
    const p = authenticated(ctx.state)
    if (!p.scopes.includes(scope)) {
      throw new ApiError(403, 'insufficient_scope', `this credential lacks the ${scope} scope`, {
        headers: { 'WWW-Authenticate': `Bearer error="insufficient_scope", scope="${scope}"` },
      })
    }
    await next()
  }
}
