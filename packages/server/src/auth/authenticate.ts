import { createHash, timingSafeEqual } from 'node:crypto'
import type { Context, Middleware } from 'koa'
import type { Scope } from '@hivemind/sdk/schemas'
import type { AppDeps } from '../deps.js'
import { ApiError, InvalidTokenError } from '../errors.js'
import { cachedServiceAccount } from '../service-accounts/status-cache.js'
import { SA_TOKEN_PREFIX, hashToken } from '../service-accounts/store.js'
import type { Principal } from './principal.js'

/** What the auth middleware leaves on `ctx.state`. */
export interface AuthState {
  principal?: Principal
  /** Set when a credential was sent but is not valid; `require*` throws it. */
  authError?: ApiError
}

/** The principal of this request, if one was authenticated. */
export function principalOf(ctx: Context): Principal | undefined {
  return (ctx.state as AuthState).principal
}

const ADMIN_SCOPES: Scope[] = ['read', 'write']
// Update last_used_at at most this often per token: a write per request would dominate.
const LAST_USED_RESOLUTION_MS = 60_000
const STATIC_TOKEN_RE = /^hmsa_[A-Za-z0-9_-]{43,128}$/

/** 401 with the RFC 6750 challenge. */
export function invalidToken(message: string): ApiError {
  return new ApiError(401, 'invalid_token', message, {
    headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' },
  })
}

/** Equal-length digests make the comparison constant-time whatever the input lengths. */
function safeEqual(a: string, b: string): boolean {
  const da = createHash('sha256').update(a).digest()
  const db = createHash('sha256').update(b).digest()
  return timingSafeEqual(da, db)
}

/**
 * Resolves `ctx.state.principal` from `X-API-Key` or `Authorization: Bearer`:
 * the ADMIN_API_KEY, a `hmsa_` static token or a HiveMind JWT. It never rejects
 * by itself (public routes ignore junk headers); an invalid credential is kept in
 * `ctx.state.authError` for `requireAuth()` and friends to throw.
 */
export function authenticate(deps: AppDeps): Middleware {
  return async (ctx, next) => {
    const state = ctx.state as AuthState
    try {
      const principal = await resolve(deps, ctx)
      if (principal) state.principal = principal
    } catch (err) {
      if (!(err instanceof ApiError)) throw err
      state.authError = err
    }
    await next()
  }
}

async function resolve(deps: AppDeps, ctx: Context): Promise<Principal | undefined> {
  const apiKey = ctx.get('x-api-key')
  const authorization = ctx.get('authorization')
  if (apiKey) {
    if (deps.config.adminApiKey && safeEqual(apiKey, deps.config.adminApiKey))
      return adminPrincipal()
    // Body quoted by the product docs; keep the string exact.
    throw new ApiError(401, 'invalid_api_key', 'invalid or inactive API key')
  }
  if (!authorization) return undefined
  const match = /^Bearer[ ]+([^\s]+)\s*$/i.exec(authorization)
  if (!match) throw invalidToken('Authorization header must be "Bearer <token>"')
  const token = match[1]
  // Compared with the configured value on every request; rotating ADMIN_API_KEY is a
  // restart with a new value (a running process never sees its environment change).
  if (deps.config.adminApiKey && safeEqual(token, deps.config.adminApiKey)) return adminPrincipal()
  if (token.startsWith(SA_TOKEN_PREFIX)) return staticTokenPrincipal(deps, token)
  return jwtPrincipal(deps, token)
}

function adminPrincipal(): Principal {
  return {
    kind: 'admin',
    id: 'admin',
    name: 'admin',
    scopes: [...ADMIN_SCOPES],
    via: 'admin_api_key',
  }
}

interface StaticTokenRow {
  id: string
  service_account_id: string
  token_hash: string
  scopes: Scope[]
  expires_at: Date | string | null
  last_used_at: Date | string | null
  revoked_at: Date | string | null
}

async function staticTokenPrincipal(deps: AppDeps, token: string): Promise<Principal> {
  if (!STATIC_TOKEN_RE.test(token)) throw invalidToken('malformed service-account token')
  const hash = hashToken(token)
  const { rows } = await deps.db.query<StaticTokenRow>(
    `SELECT id, service_account_id, token_hash, scopes, expires_at, last_used_at, revoked_at
       FROM service_account_tokens WHERE token_hash = $1`,
    [hash],
  )
  const row = rows[0]
  // The index lookup already matched; the constant-time compare guards against a
  // collation or prefix-match surprise ever making it looser than equality.
  if (!row || !timingSafeEqual(Buffer.from(row.token_hash, 'hex'), Buffer.from(hash, 'hex'))) {
    throw invalidToken('unknown service-account token')
  }
  if (row.revoked_at != null) throw invalidToken('service-account token has been revoked')
  const now = deps.clock.now()
  const expiresAt = row.expires_at == null ? null : new Date(row.expires_at)
  if (expiresAt && expiresAt.getTime() <= now)
    throw invalidToken('service-account token has expired')
  const sa = await cachedServiceAccount(deps.db, deps.clock, row.service_account_id)
  if (!sa) throw invalidToken('service account no longer exists')
  if (sa.disabled) throw invalidToken('service account is disabled')
  const lastUsed = row.last_used_at == null ? 0 : new Date(row.last_used_at).getTime()
  if (now - lastUsed > LAST_USED_RESOLUTION_MS) {
    await deps.db.query('UPDATE service_account_tokens SET last_used_at = $1 WHERE id = $2', [
      new Date(now).toISOString(),
      row.id,
    ])
  }
  return {
    kind: 'service_account',
    id: sa.id,
    name: sa.name,
    // Narrowing the account later narrows its existing tokens too.
    scopes: row.scopes.filter((s) => sa.scopes.includes(s)),
    via: 'static_token',
    credentialId: row.id,
    expiresAt,
  }
}

async function jwtPrincipal(deps: AppDeps, token: string): Promise<Principal> {
  let claims
  try {
    claims = await deps.keys.verify(token)
  } catch (err) {
    if (err instanceof InvalidTokenError) throw invalidToken(err.message)
    throw err
  }
  const sa = await cachedServiceAccount(deps.db, deps.clock, claims.sub)
  if (!sa) throw invalidToken('service account no longer exists')
  if (sa.disabled) throw invalidToken('service account is disabled')
  const granted = claims.scope.split(' ').filter((s): s is Scope => s === 'read' || s === 'write')
  return {
    kind: 'service_account',
    id: sa.id,
    name: sa.name,
    scopes: granted.filter((s) => sa.scopes.includes(s)),
    via: 'jwt',
    credentialId: claims.jti ?? '',
    expiresAt: claims.exp === undefined ? null : new Date(claims.exp * 1000),
  }
}
