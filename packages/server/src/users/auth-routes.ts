import Router from '@koa/router'
import type { Context } from 'koa'
import { LoginRequest, RegisterRequest } from '@hivemind/sdk/schemas'
import { CSRF_COOKIE, SESSION_COOKIE, principalOf } from '../auth/authenticate.js'
import { authLimitsFor, tooManyFailures } from '../auth/limits.js'
import type { AppDeps } from '../deps.js'
import { ApiError } from '../errors.js'
import { parseInput } from '../http/validate.js'
import { cookie } from '../middleware/csrf.js'
import { hashPassword, verifyPassword } from './password.js'
import {
  createSession,
  findUserByEmail,
  hashToken,
  registerFirstUser,
  userToWire,
} from './store.js'

/**
 * Local accounts: `POST /auth/register` (first user only, becomes Admin),
 * `POST /auth/login` (sets `hm_session` and `hm_csrf`) and `POST /auth/logout`.
 * With forward-auth on, register and login answer 404 pointing to the IdP.
 */
export function authRoutes(deps: AppDeps): Router {
  const { db, clock, config } = deps
  const router = new Router()
  const secure = config.publicUrl.startsWith('https:')
  const limits = authLimitsFor(deps)
  const localOnly = async (_ctx: Context, next: () => Promise<unknown>) => {
    if (config.forwardAuth.enabled) {
      throw new ApiError(
        404,
        'local_accounts_disabled',
        'local accounts are disabled because forward-auth is on: sign in through your identity provider (single sign-on)',
      )
    }
    await next()
  }

  router.post('/auth/register', localOnly, async (ctx) => {
    const input = parseInput(RegisterRequest, ctx.request.body ?? {})
    // Hash outside the transaction: Argon2 takes tens of milliseconds.
    const passwordHash = await hashPassword(input.password)
    const user = await registerFirstUser(
      db,
      { username: input.username, email: input.email, passwordHash },
      clock.now(),
    )
    if (!user) {
      await deps.audit.record({
        action: 'auth.register',
        result: 'failure',
        actorKind: 'anonymous',
        address: ctx.ip,
        details: { username: input.username, reason: 'already_bootstrapped' },
      })
      throw new ApiError(
        409,
        'already_registered',
        'registration is closed: the first account already exists; ask an admin to create yours',
      )
    }
    ctx.status = 201
    const { id, username, email, role } = userToWire(user)
    ctx.body = { id, username, email, role }
    await deps.audit.record({
      action: 'auth.register',
      result: 'success',
      actorKind: 'user',
      actorId: user.id,
      target: user.id,
      address: ctx.ip,
      details: { username: user.username, role: user.role },
    })
  })

  router.post('/auth/login', localOnly, async (ctx) => {
    const input = parseInput(LoginRequest, ctx.request.body ?? {})
    const account = `${input.email.toLowerCase()}|${ctx.ip}`
    const wait = Math.max(limits.byAddress.retryAfter(ctx.ip), limits.byLogin.retryAfter(account))
    if (wait > 0) throw tooManyFailures(wait, 'address')
    const user = await findUserByEmail(db, input.email)
    // Always one Argon2 verification, also for unknown or disabled users: same time, same answer.
    const ok = await verifyPassword(user?.passwordHash ?? null, input.password)
    if (!ok || !user || user.disabled) {
      limits.byAddress.fail(ctx.ip)
      limits.byLogin.fail(account)
      await deps.audit.record({
        action: 'auth.login',
        result: 'failure',
        actorKind: 'anonymous',
        target: user?.id,
        address: ctx.ip,
        details: { email: input.email },
      })
      throw new ApiError(401, 'invalid_credentials', 'invalid email or password')
    }
    const nowMs = clock.now()
    const session = await createSession(db, user.id, {
      nowMs,
      ttlS: config.sessionTtlS,
      address: ctx.ip,
    })
    await db.query('UPDATE users SET last_login_at = $2 WHERE id = $1', [
      user.id,
      new Date(nowMs).toISOString(),
    ])
    ctx.append(
      'Set-Cookie',
      cookie(SESSION_COOKIE, session.token, {
        secure,
        httpOnly: true,
        maxAgeS: config.sessionTtlS,
      }),
    )
    // Readable by the page's script, which echoes it in X-CSRF-Token.
    ctx.append(
      'Set-Cookie',
      cookie(CSRF_COOKIE, session.csrf, { secure, httpOnly: false, maxAgeS: config.sessionTtlS }),
    )
    ctx.body = {
      user: userToWire(user),
      expires_at: session.expiresAt.toISOString(),
      csrf_token: session.csrf,
    }
    await deps.audit.record({
      action: 'auth.login',
      result: 'success',
      actorKind: 'user',
      actorId: user.id,
      target: user.id,
      address: ctx.ip,
      details: { session_id: session.id },
    })
  })

  router.post('/auth/logout', async (ctx) => {
    const token = ctx.cookies.get(SESSION_COOKIE)
    const p = principalOf(ctx)
    if (token && p?.kind === 'user' && p.via === 'session') {
      await db.query(
        'UPDATE user_sessions SET revoked_at = $2 WHERE token_hash = $1 AND revoked_at IS NULL',
        [hashToken(token), new Date(clock.now()).toISOString()],
      )
      await deps.audit.record({
        action: 'auth.logout',
        result: 'success',
        actorKind: 'user',
        actorId: p.id,
        target: p.id,
        address: ctx.ip,
        details: { session_id: p.credentialId },
      })
    }
    ctx.append('Set-Cookie', cookie(SESSION_COOKIE, '', { secure, httpOnly: true, maxAgeS: 0 }))
    ctx.append('Set-Cookie', cookie(CSRF_COOKIE, '', { secure, httpOnly: false, maxAgeS: 0 }))
    ctx.status = 204
  })

  return router
}
