import type { Middleware } from 'koa'
import type { Scope } from '@hivemind/sdk/schemas'
import { ApiError } from '../errors.js'
import type { AuthState } from './authenticate.js'
import type { Principal } from './principal.js'

function authenticated(state: AuthState): Principal {
  if (state.authError) throw state.authError
  if (!state.principal) {
    // Body quoted by the product docs; keep the string exact (a bearer works too, as
    // the challenge header says).
    throw new ApiError(401, 'missing_credentials', 'missing X-API-Key header', {
      headers: { 'WWW-Authenticate': 'Bearer realm="hivemind"' },
    })
  }
  return state.principal
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/**
 * Any valid credential (admin key, user session/key/PAT/forward-auth, static token, HiveMind JWT).
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
 * An administrator: the bootstrap ADMIN_API_KEY, or a user with the Admin role. A
 * user's credential must also carry `write` for anything but reads, so an Admin's
 * read-only PAT can look but not change (role ∩ token scopes). 401 without a valid
 * credential, 403 `forbidden` for every other role and for service accounts.
 *
 * @example
 * router.post('/api/v1/exchange/explain', requireAdmin(), handler)
 */
export function requireAdmin(): Middleware {
  return async (ctx, next) => {
    const p = authenticated(ctx.state)
    if (p.kind === 'admin') {
      await next()
      return
    }
    if (p.kind !== 'user' || p.role !== 'Admin')
      throw new ApiError(403, 'forbidden', 'this endpoint needs the Admin role')
    if (!SAFE_METHODS.has(ctx.method) && !p.scopes.includes('write'))
      throw new ApiError(403, 'insufficient_scope', 'this credential lacks the write scope', {
        headers: { 'WWW-Authenticate': 'Bearer error="insufficient_scope", scope="write"' },
      })
    await next()
  }
}

/**
 * A person (session, API key, PAT or forward-auth): routes about "my" account. With
 * `write`, the credential must also carry the write scope (so ReadOnly users, and
 * read-only PATs, are refused).
 *
 * @example
 * router.post('/api/v1/tokens', requireUser({ write: true }), handler)
 */
export function requireUser(options: { write?: boolean } = {}): Middleware {
  return async (ctx, next) => {
    const p = authenticated(ctx.state)
    if (p.kind !== 'user')
      throw new ApiError(403, 'forbidden', 'this endpoint is for user accounts')
    if (options.write && !p.scopes.includes('write'))
      throw new ApiError(
        403,
        'insufficient_scope',
        p.role === 'ReadOnly'
          ? 'the ReadOnly role can only read'
          : 'this credential lacks the write scope',
      )
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
