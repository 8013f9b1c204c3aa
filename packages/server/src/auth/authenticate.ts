import { createHash, timingSafeEqual } from 'node:crypto'
import type { Context, Middleware } from 'koa'
import type { Scope } from '@hivemind/sdk/schemas'
import type { AppDeps } from '../deps.js'
import { ApiError, InvalidTokenError } from '../errors.js'
import { cachedServiceAccount } from '../service-accounts/status-cache.js'
import { SA_TOKEN_PREFIX, hashToken } from '../service-accounts/store.js'
import {
  API_KEY_PREFIX,
  PAT_PREFIX,
  patPolicyRefusal,
  roleScopes,
  type UserRow,
} from '../users/store.js'
import type { PatPolicy } from '@hivemind/sdk/schemas'
import { createForwardAuth } from './forward-auth.js'
import { authLimitsFor, tooManyFailures } from './limits.js'
import type { Principal } from './principal.js'

/** Name of the browser session cookie (`hms-…`). */
export const SESSION_COOKIE = 'hm_session'
/** Name of the double-submit CSRF cookie; its value goes in `X-CSRF-Token`. */
export const CSRF_COOKIE = 'hm_csrf'

/** What the auth middleware leaves on `ctx.state`. */
export interface AuthState {
  principal?: Principal
  /** Set when a credential was sent but is not valid; `require*` throws it. */
  authError?: ApiError
  /** SHA-256 of the CSRF token bound to the session that authenticated this request. */
  sessionCsrfHash?: string
}

/** The principal of this request, if one was authenticated. */
export function principalOf(ctx: Context): Principal | undefined {
  return (ctx.state as AuthState).principal
}

const ADMIN_SCOPES: Scope[] = ['read', 'write']
// Update last_used_at at most this often per token: a write per request would dominate.
const LAST_USED_RESOLUTION_MS = 60_000
const STATIC_TOKEN_RE = /^hmsa_[A-Za-z0-9_-]{43,128}$/
const API_KEY_RE = /^hm-[A-Za-z0-9]{64}$/
const PAT_RE = /^hmpat_[A-Za-z0-9_-]{43,128}$/
const SESSION_RE = /^hms-[A-Za-z0-9_-]{43,128}$/

/** Body quoted by the product docs; keep the string exact. */
export function invalidApiKey(): ApiError {
  return new ApiError(401, 'invalid_api_key', 'invalid or inactive API key')
}

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
 * Resolves `ctx.state.principal`, in the documented order: forward-auth headers
 * (trusted proxies only) → `hm_session` cookie → `X-API-Key` / `Authorization: Bearer`
 * (ADMIN_API_KEY, user `hm-` key, `hmpat_` PAT, `hmsa_` static token, HiveMind JWT).
 * The first that yields a principal wins. An invalid credential is kept in
 * `ctx.state.authError` for `requireAuth()` and friends to throw (public routes
 * ignore junk headers), and counted against the client address: over the limit,
 * credentialed requests from that address get 429 until the window ends.
 * Forward-auth headers from an untrusted peer are refused outright (403).
 */
export function authenticate(deps: AppDeps): Middleware {
  const forwardAuth = createForwardAuth(deps)
  const limits = authLimitsFor(deps)
  return async (ctx, next) => {
    const state = ctx.state as AuthState
    const sessionCookie = ctx.cookies.get(SESSION_COOKIE)
    const credentialed =
      Boolean(sessionCookie) || Boolean(ctx.get('x-api-key')) || Boolean(ctx.get('authorization'))
    if (credentialed) {
      const wait = limits.byAddress.retryAfter(ctx.ip)
      if (wait > 0) throw tooManyFailures(wait, 'address')
    }
    let principal = await forwardAuth.resolve(ctx)
    let sessionError: ApiError | undefined
    if (!principal && sessionCookie) {
      try {
        principal = await sessionPrincipal(deps, ctx, sessionCookie)
      } catch (err) {
        if (!(err instanceof ApiError)) throw err
        sessionError = err
      }
    }
    if (!principal) {
      try {
        principal = await resolve(deps, ctx)
      } catch (err) {
        if (!(err instanceof ApiError)) throw err
        state.authError = err
        // A policy refusal is not a guess; everything else counts as a failure.
        if (err.status === 401) limits.byAddress.fail(ctx.ip)
      }
    }
    if (principal) state.principal = principal
    else if (sessionError && !state.authError) state.authError = sessionError
    await next()
  }
}

async function resolve(deps: AppDeps, ctx: Context): Promise<Principal | undefined> {
  const apiKey = ctx.get('x-api-key')
  const authorization = ctx.get('authorization')
  if (apiKey) {
    if (deps.config.adminApiKey && safeEqual(apiKey, deps.config.adminApiKey))
      return adminPrincipal()
    if (API_KEY_RE.test(apiKey)) return apiKeyPrincipal(deps, apiKey)
    throw invalidApiKey()
  }
  if (!authorization) return undefined
  const match = /^Bearer[ ]+([^\s]+)\s*$/i.exec(authorization)
  if (!match) throw invalidToken('Authorization header must be "Bearer <token>"')
  const token = match[1]
  // Compared with the configured value on every request; rotating ADMIN_API_KEY is a
  // restart with a new value (a running process never sees its environment change).
  if (deps.config.adminApiKey && safeEqual(token, deps.config.adminApiKey)) return adminPrincipal()
  if (token.startsWith(SA_TOKEN_PREFIX)) return staticTokenPrincipal(deps, token)
  if (token.startsWith(PAT_PREFIX)) return patPrincipal(deps, token)
  if (token.startsWith(API_KEY_PREFIX) && API_KEY_RE.test(token))
    return apiKeyPrincipal(deps, token)
  return jwtPrincipal(deps, token)
}

type JoinedUser = Pick<UserRow, 'username' | 'role' | 'disabled'> & { user_id: string }

function userPrincipal(
  row: JoinedUser,
  via: 'session' | 'api_key' | 'pat',
  credentialId: string,
  expiresAt: Date | null,
  tokenScopes?: readonly string[],
): Principal {
  const scopes = roleScopes(row.role).filter((s) => tokenScopes?.includes(s) ?? true)
  return {
    kind: 'user',
    id: row.user_id,
    name: row.username,
    role: row.role,
    scopes,
    via,
    credentialId,
    expiresAt,
  }
}

function invalidSession(message: string): ApiError {
  return new ApiError(401, 'invalid_session', message)
}

async function sessionPrincipal(deps: AppDeps, ctx: Context, token: string): Promise<Principal> {
  if (!SESSION_RE.test(token)) throw invalidSession('the hm_session cookie is not a session')
  const { rows } = await deps.db.query<
    JoinedUser & {
      id: string
      csrf_hash: string
      expires_at: Date | string
      revoked_at: Date | string | null
    }
  >(
    `SELECT s.id, s.user_id, s.csrf_hash, s.expires_at, s.revoked_at, u.username, u.role, u.disabled
       FROM user_sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1`,
    [hashToken(token)],
  )
  const row = rows[0]
  if (!row) {
    authLimitsFor(deps).byAddress.fail(ctx.ip)
    throw invalidSession('session not found; sign in again')
  }
  const expiresAt = new Date(row.expires_at)
  if (row.revoked_at != null || row.disabled) throw invalidSession('session revoked; sign in again')
  if (expiresAt.getTime() <= deps.clock.now())
    throw invalidSession('session expired; sign in again')
  ;(ctx.state as AuthState).sessionCsrfHash = row.csrf_hash
  return userPrincipal(row, 'session', row.id, expiresAt)
}

async function apiKeyPrincipal(deps: AppDeps, key: string): Promise<Principal> {
  const { rows } = await deps.db.query<
    JoinedUser & { id: string; revoked_at: Date | string | null }
  >(
    `SELECT k.id, k.user_id, k.revoked_at, u.username, u.role, u.disabled
       FROM user_api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = $1`,
    [hashToken(key)],
  )
  const row = rows[0]
  // Unknown, rotated away and disabled-user keys look the same from outside.
  if (!row || row.revoked_at != null || row.disabled) throw invalidApiKey()
  return userPrincipal(row, 'api_key', row.id, null)
}

async function patPrincipal(deps: AppDeps, token: string): Promise<Principal> {
  if (!PAT_RE.test(token)) throw invalidToken('malformed personal access token')
  const { rows } = await deps.db.query<
    JoinedUser & {
      id: string
      scopes: Scope[]
      expires_at: Date | string | null
      revoked_at: Date | string | null
      last_used_at: Date | string | null
      policy: PatPolicy | null
    }
  >(
    `SELECT p.id, p.user_id, p.scopes, p.expires_at, p.revoked_at, p.last_used_at,
            u.username, u.role, u.disabled, (SELECT pats FROM org_policy LIMIT 1) AS policy
       FROM personal_access_tokens p JOIN users u ON u.id = p.user_id WHERE p.token_hash = $1`,
    [hashToken(token)],
  )
  const row = rows[0]
  if (!row) throw invalidToken('unknown personal access token')
  if (row.revoked_at != null) throw invalidToken('personal access token has been revoked')
  if (row.disabled) throw invalidToken('the user of this personal access token is disabled')
  const now = deps.clock.now()
  const expiresAt = row.expires_at == null ? null : new Date(row.expires_at)
  if (expiresAt && expiresAt.getTime() <= now)
    throw invalidToken('personal access token has expired')
  const refusal = patPolicyRefusal(row.policy ?? 'enabled', row.scopes)
  if (refusal) throw new ApiError(403, 'pat_policy', refusal)
  const lastUsed = row.last_used_at == null ? 0 : new Date(row.last_used_at).getTime()
  if (now - lastUsed > LAST_USED_RESOLUTION_MS) {
    await deps.db.query('UPDATE personal_access_tokens SET last_used_at = $1 WHERE id = $2', [
      new Date(now).toISOString(),
      row.id,
    ])
  }
  return userPrincipal(row, 'pat', row.id, expiresAt, row.scopes)
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
