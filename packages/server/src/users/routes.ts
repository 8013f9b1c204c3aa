import Router from '@koa/router'
import type { Context } from 'koa'
import {
  OrgPolicy,
  PasswordChangeRequest,
  PatCreateRequest,
  UserCreateRequest,
  UserPatchRequest,
  type ApiKeyRotated,
  type PatCreated,
  type PatList,
  type UserList,
} from '@hivemind/sdk/schemas'
import type { AuditEvent } from '../audit/types.js'
import { principalOf } from '../auth/authenticate.js'
import type { Principal } from '../auth/principal.js'
import { requireAdmin, requireUser } from '../auth/require.js'
import type { AppDeps } from '../deps.js'
import { ApiError } from '../errors.js'
import { PageQuery, pageByCreation } from '../http/pagination.js'
import { parseInput } from '../http/validate.js'
import { expiryFor } from '../service-accounts/store.js'
import { hashPassword, verifyPassword } from './password.js'
import {
  PAT_COLUMNS,
  USER_COLUMNS,
  getPatPolicy,
  getUser,
  hashToken,
  insertUser,
  newPat,
  newUserScopedId,
  patPolicyRefusal,
  patToWire,
  pgCode,
  revokeUserCredentials,
  rotateApiKey,
  setPatPolicy,
  toUser,
  userToWire,
  type PatRow,
  type UserRecord,
  type UserRow,
} from './store.js'

type UserPrincipal = Extract<Principal, { kind: 'user' }>

function me(ctx: Context): UserPrincipal {
  return principalOf(ctx) as UserPrincipal
}

/**
 * People: the Admin-only user API (`/api/v1/users`), the org policy, and each
 * user's own password, API key and PATs (`/api/v1/me/*`, `/api/v1/tokens`).
 */
export function userRoutes(deps: AppDeps): Router {
  const { db, clock } = deps
  const router = new Router()
  const audit = (ctx: Context, event: Omit<AuditEvent, 'actorKind' | 'actorId' | 'address'>) => {
    const p = principalOf(ctx)
    return deps.audit.record({
      ...event,
      actorKind: p?.kind ?? 'anonymous',
      actorId: p?.id,
      address: ctx.ip,
    })
  }
  const mustGet = async (id: string): Promise<UserRecord> => {
    const u = await getUser(db, id)
    if (!u) throw new ApiError(404, 'not_found', `user ${id} not found`)
    return u
  }

  router.get('/api/v1/users', requireAdmin(), async (ctx) => {
    const q = parseInput(PageQuery, ctx.query, 'query')
    const page = await pageByCreation<UserRow>(db, { table: 'users', columns: USER_COLUMNS }, q)
    const body: UserList = {
      items: page.rows.map(toUser).map(userToWire),
      next_cursor: page.nextCursor,
    }
    ctx.body = body
  })

  router.post('/api/v1/users', requireAdmin(), async (ctx) => {
    const input = parseInput(UserCreateRequest, ctx.request.body ?? {})
    const passwordHash = await hashPassword(input.password)
    let user: UserRecord
    try {
      user = await insertUser(
        db,
        {
          username: input.username,
          email: input.email,
          passwordHash,
          role: input.role,
          source: 'local',
        },
        clock.now(),
      )
    } catch (err) {
      if (pgCode(err) === '23505')
        throw new ApiError(409, 'conflict', 'a user with this username or email already exists')
      throw err
    }
    ctx.status = 201
    ctx.body = userToWire(user)
    await audit(ctx, {
      action: 'user.create',
      result: 'success',
      target: user.id,
      details: { username: user.username, role: user.role },
    })
  })

  router.get('/api/v1/users/:id', requireAdmin(), async (ctx) => {
    ctx.body = userToWire(await mustGet(ctx.params.id))
  })

  router.patch('/api/v1/users/:id', requireAdmin(), async (ctx) => {
    const input = parseInput(UserPatchRequest, ctx.request.body ?? {})
    const before = await mustGet(ctx.params.id)
    const losesAdmin =
      before.role === 'Admin' &&
      !before.disabled &&
      ((input.role !== undefined && input.role !== 'Admin') || input.disabled === true)
    if (losesAdmin && !deps.config.adminApiKey) {
      const { rows } = await db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM users WHERE role = 'Admin' AND NOT disabled AND id <> $1",
        [before.id],
      )
      // Without ADMIN_API_KEY nobody could undo this.
      if (Number(rows[0]?.n ?? 0) === 0)
        throw new ApiError(
          409,
          'last_admin',
          'this is the last enabled Admin; promote another user first',
        )
    }
    const nowMs = clock.now()
    const at = new Date(nowMs).toISOString()
    const passwordHash =
      input.password === undefined ? undefined : await hashPassword(input.password)
    await db.transaction(async (tx) => {
      const sets: string[] = ['updated_at = $2']
      const params: unknown[] = [before.id, at]
      const set = (col: string, v: unknown) => {
        params.push(v)
        sets.push(`${col} = $${params.length}`)
      }
      if (input.role !== undefined) set('role', input.role)
      if (input.disabled !== undefined) {
        set('disabled', input.disabled)
        set('disabled_at', input.disabled ? at : null)
      }
      if (passwordHash !== undefined) set('password_hash', passwordHash)
      await tx.query(`UPDATE users SET ${sets.join(', ')} WHERE id = $1`, params)
      // Disabling ends everything the user holds at once; a password reset ends sessions.
      if (input.disabled === true) await revokeUserCredentials(tx, before.id, nowMs)
      else if (passwordHash !== undefined)
        await revokeUserCredentials(tx, before.id, nowMs, { sessions: true })
    })
    const after = await mustGet(before.id)
    ctx.body = userToWire(after)
    if (input.role !== undefined && input.role !== before.role)
      await audit(ctx, {
        action: 'user.role_change',
        result: 'success',
        target: before.id,
        details: { from: before.role, to: input.role },
      })
    if (input.disabled !== undefined && input.disabled !== before.disabled)
      await audit(ctx, {
        action: input.disabled ? 'user.disable' : 'user.enable',
        result: 'success',
        target: before.id,
      })
    if (passwordHash !== undefined)
      await audit(ctx, { action: 'user.password_reset', result: 'success', target: before.id })
  })

  router.get('/api/v1/org/policy', requireAdmin(), async (ctx) => {
    ctx.body = { pats: await getPatPolicy(db) } satisfies OrgPolicy
  })

  router.put('/api/v1/org/policy', requireAdmin(), async (ctx) => {
    const input = parseInput(OrgPolicy, ctx.request.body ?? {})
    const before = await getPatPolicy(db)
    await setPatPolicy(db, input.pats, clock.now())
    ctx.body = input
    await audit(ctx, {
      action: 'org_policy.update',
      result: 'success',
      details: { pats: { from: before, to: input.pats } },
    })
  })

  // Any role may change their own password: it manages access, it does not write data.
  router.post('/api/v1/me/password', requireUser(), async (ctx) => {
    const p = me(ctx)
    const input = parseInput(PasswordChangeRequest, ctx.request.body ?? {})
    const user = await mustGet(p.id)
    if (user.source !== 'local' || user.passwordHash == null)
      throw new ApiError(
        409,
        'no_local_password',
        'this account signs in through the identity provider; change the password there',
      )
    if (!(await verifyPassword(user.passwordHash, input.current_password)))
      throw new ApiError(403, 'invalid_credentials', 'current_password: is not correct')
    const nowMs = clock.now()
    const hash = await hashPassword(input.new_password)
    await db.transaction(async (tx) => {
      await tx.query('UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1', [
        p.id,
        hash,
        new Date(nowMs).toISOString(),
      ])
      // Other browsers signed in with the old password are signed out; this one stays.
      await tx.query(
        `UPDATE user_sessions SET revoked_at = $2
          WHERE user_id = $1 AND revoked_at IS NULL AND id IS DISTINCT FROM $3`,
        [
          p.id,
          new Date(nowMs).toISOString(),
          p.via === 'session' ? (p.credentialId ?? null) : null,
        ],
      )
    })
    ctx.status = 204
    await audit(ctx, { action: 'user.password_change', result: 'success', target: p.id })
  })

  router.post('/api/v1/me/api-key/rotate', requireUser({ write: true }), async (ctx) => {
    const p = me(ctx)
    const { id, key, createdAt } = await rotateApiKey(db, p.id, clock.now())
    const body: ApiKeyRotated = { id, api_key: key, created_at: createdAt.toISOString() }
    ctx.status = 201
    ctx.body = body
    await audit(ctx, { action: 'api_key.rotate', result: 'success', target: id })
  })

  router.get('/api/v1/tokens', requireUser(), async (ctx) => {
    const p = me(ctx)
    const q = parseInput(PageQuery, ctx.query, 'query')
    const page = await pageByCreation<PatRow>(
      db,
      {
        table: 'personal_access_tokens',
        columns: PAT_COLUMNS,
        filter: { column: 'user_id', value: p.id },
      },
      q,
    )
    const body: PatList = { items: page.rows.map(patToWire), next_cursor: page.nextCursor }
    ctx.body = body
  })

  router.post('/api/v1/tokens', requireUser({ write: true }), async (ctx) => {
    const p = me(ctx)
    const input = parseInput(PatCreateRequest, ctx.request.body ?? {})
    const refusal = patPolicyRefusal(await getPatPolicy(db), input.scopes)
    if (refusal) throw new ApiError(403, 'pat_policy', refusal)
    if (p.via === 'pat')
      throw new ApiError(403, 'forbidden', 'a personal access token cannot mint another one')
    const token = newPat()
    const id = newUserScopedId('pat')
    const nowMs = clock.now()
    const expiresAt = expiryFor(input.expires_in, nowMs)
    const { rows } = await db.query<PatRow>(
      `INSERT INTO personal_access_tokens (id, user_id, name, token_hash, scopes, expires_at, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${PAT_COLUMNS}`,
      [
        id,
        p.id,
        input.name,
        hashToken(token),
        input.scopes,
        expiresAt?.toISOString() ?? null,
        new Date(nowMs).toISOString(),
      ],
    )
    const body: PatCreated = { ...patToWire(rows[0]), token }
    ctx.status = 201
    ctx.body = body
    await audit(ctx, {
      action: 'pat.create',
      result: 'success',
      target: id,
      details: { name: input.name, scopes: input.scopes, expires_in: input.expires_in },
    })
  })

  router.delete('/api/v1/tokens/:id', requireUser(), async (ctx) => {
    const p = me(ctx)
    const { affectedRows } = await db.query(
      `UPDATE personal_access_tokens SET revoked_at = COALESCE(revoked_at, $3)
        WHERE id = $1 AND user_id = $2`,
      [ctx.params.id, p.id, new Date(clock.now()).toISOString()],
    )
    if (!affectedRows) throw new ApiError(404, 'not_found', `token ${ctx.params.id} not found`)
    ctx.status = 204
    await audit(ctx, { action: 'pat.revoke', result: 'success', target: ctx.params.id })
  })

  return router
}
