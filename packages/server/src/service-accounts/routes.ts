import Router from '@koa/router'
import type { Context } from 'koa'
import type { MeResponse } from '@hivemind/sdk/schemas'
import {
  ServiceAccountCreateRequest,
  ServiceAccountPatchRequest,
  ServiceAccountTokenCreateRequest,
  type ServiceAccountList,
  type ServiceAccountTokenCreated,
  type ServiceAccountTokenList,
} from '@hivemind/sdk/schemas'
import type { AuditEvent } from '../audit/types.js'
import { principalOf } from '../auth/authenticate.js'
import { requireAdmin, requireAuth } from '../auth/require.js'
import type { Db } from '../db/types.js'
import type { AppDeps } from '../deps.js'
import { ApiError } from '../errors.js'
import { PageQuery, pageByCreation } from '../http/pagination.js'
import { iso } from '../http/time.js'
import { parseInput } from '../http/validate.js'
import { invalidateServiceAccount } from './status-cache.js'
import {
  SA_COLUMNS,
  TOKEN_COLUMNS,
  expiryFor,
  getServiceAccount,
  hashToken,
  newId,
  newStaticToken,
  toRecord,
  toWire,
  tokenToWire,
  type ServiceAccountRecord,
  type TokenRow,
} from './store.js'

const UNIQUE_VIOLATION = '23505'
const FK_VIOLATION = '23503'

function pgCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}

async function mustGet(db: Db, id: string): Promise<ServiceAccountRecord> {
  const sa = await getServiceAccount(db, id)
  if (!sa) throw new ApiError(404, 'not_found', `service account ${id} not found`)
  return sa
}

function nameTaken(name: string): ApiError {
  return new ApiError(409, 'conflict', `name: a service account named "${name}" already exists`)
}

/**
 * Admin API for service accounts and their static tokens, plus `GET /api/v1/me`.
 * Changing or deleting an account drops it from this process's status cache at once.
 */
export function serviceAccountRoutes(deps: AppDeps): Router {
  const { db, clock } = deps
  const router = new Router()
  const now = () => new Date(clock.now()).toISOString()
  const audit = (ctx: Context, event: Omit<AuditEvent, 'actorKind' | 'actorId' | 'address'>) => {
    const p = principalOf(ctx)
    return deps.audit.record({
      ...event,
      actorKind: p?.kind ?? 'anonymous',
      actorId: p?.id,
      address: ctx.ip,
    })
  }

  router.get('/api/v1/me', requireAuth(), (ctx) => {
    const p = principalOf(ctx)!
    const body: MeResponse = {
      // The bootstrap admin acts as a (virtual) Admin user.
      kind: p.kind === 'service_account' ? 'service_account' : 'user',
      id: p.id,
      name: p.name,
      scopes: p.scopes,
      credential: p.via,
      ...(p.kind === 'admin'
        ? { role: 'Admin' }
        : p.kind === 'user'
          ? { role: p.role, expires_at: p.expiresAt && iso(p.expiresAt) }
          : { expires_at: p.expiresAt && iso(p.expiresAt) }),
    }
    ctx.body = body
  })

  router.get('/api/v1/service-accounts', requireAdmin(), async (ctx) => {
    const q = parseInput(PageQuery, ctx.query, 'query')
    const page = await pageByCreation<Parameters<typeof toRecord>[0]>(
      db,
      { table: 'service_accounts', columns: SA_COLUMNS },
      q,
    )
    const body: ServiceAccountList = {
      items: page.rows.map(toRecord).map(toWire),
      next_cursor: page.nextCursor,
    }
    ctx.body = body
  })

  router.post('/api/v1/service-accounts', requireAdmin(), async (ctx) => {
    const input = parseInput(ServiceAccountCreateRequest, ctx.request.body ?? {})
    const id = newId('sa')
    const at = now()
    try {
      const { rows } = await db.query<Parameters<typeof toRecord>[0]>(
        `INSERT INTO service_accounts (id, name, scopes, max_ttl_seconds, disabled, disabled_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING ${SA_COLUMNS}`,
        [
          id,
          input.name,
          input.scopes,
          input.max_ttl_seconds ?? null,
          input.disabled ?? false,
          input.disabled ? at : null,
          at,
        ],
      )
      ctx.status = 201
      ctx.body = toWire(toRecord(rows[0]))
    } catch (err) {
      if (pgCode(err) === UNIQUE_VIOLATION) throw nameTaken(input.name)
      throw err
    }
    await audit(ctx, {
      action: 'service_account.create',
      result: 'success',
      target: id,
      details: { name: input.name, scopes: input.scopes },
    })
  })

  router.get('/api/v1/service-accounts/:id', requireAdmin(), async (ctx) => {
    ctx.body = toWire(await mustGet(db, ctx.params.id))
  })

  router.patch('/api/v1/service-accounts/:id', requireAdmin(), async (ctx) => {
    const id = ctx.params.id
    const input = parseInput(ServiceAccountPatchRequest, ctx.request.body ?? {})
    const sets: string[] = []
    const params: unknown[] = [id]
    const set = (col: string, v: unknown) => {
      params.push(v)
      sets.push(`${col} = $${params.length}`)
    }
    if (input.name !== undefined) set('name', input.name)
    if (input.scopes !== undefined) set('scopes', input.scopes)
    if (input.max_ttl_seconds !== undefined) set('max_ttl_seconds', input.max_ttl_seconds)
    if (input.disabled !== undefined) {
      set('disabled', input.disabled)
      // Keep the first disable time when disabling twice.
      params.push(input.disabled ? now() : null)
      sets.push(
        `disabled_at = CASE WHEN $${params.length}::timestamptz IS NULL THEN NULL ELSE COALESCE(disabled_at, $${params.length}::timestamptz) END`,
      )
    }
    set('updated_at', now())
    let rows
    try {
      ;({ rows } = await db.query<Parameters<typeof toRecord>[0]>(
        `UPDATE service_accounts SET ${sets.join(', ')} WHERE id = $1 RETURNING ${SA_COLUMNS}`,
        params,
      ))
    } catch (err) {
      if (pgCode(err) === UNIQUE_VIOLATION) throw nameTaken(input.name ?? '')
      throw err
    }
    invalidateServiceAccount(db, id)
    if (!rows[0]) throw new ApiError(404, 'not_found', `service account ${id} not found`)
    ctx.body = toWire(toRecord(rows[0]))
    await audit(ctx, {
      action: 'service_account.update',
      result: 'success',
      target: id,
      details: { fields: Object.keys(input) },
    })
  })

  router.delete('/api/v1/service-accounts/:id', requireAdmin(), async (ctx) => {
    const id = ctx.params.id
    let affected
    try {
      ;({ affectedRows: affected } = await db.query('DELETE FROM service_accounts WHERE id = $1', [
        id,
      ]))
    } catch (err) {
      if (pgCode(err) === FK_VIOLATION) {
        throw new ApiError(
          409,
          'conflict',
          `service account ${id} is still referenced; remove its identity providers first`,
        )
      }
      throw err
    }
    invalidateServiceAccount(db, id)
    if (!affected) throw new ApiError(404, 'not_found', `service account ${id} not found`)
    ctx.status = 204
    await audit(ctx, { action: 'service_account.delete', result: 'success', target: id })
  })

  router.get('/api/v1/service-accounts/:id/tokens', requireAdmin(), async (ctx) => {
    const sa = await mustGet(db, ctx.params.id)
    const q = parseInput(PageQuery, ctx.query, 'query')
    const page = await pageByCreation<TokenRow>(
      db,
      {
        table: 'service_account_tokens',
        columns: TOKEN_COLUMNS,
        filter: { column: 'service_account_id', value: sa.id },
      },
      q,
    )
    const body: ServiceAccountTokenList = {
      items: page.rows.map(tokenToWire),
      next_cursor: page.nextCursor,
    }
    ctx.body = body
  })

  router.post('/api/v1/service-accounts/:id/tokens', requireAdmin(), async (ctx) => {
    const sa = await mustGet(db, ctx.params.id)
    const input = parseInput(ServiceAccountTokenCreateRequest, ctx.request.body ?? {})
    const scopes = input.scopes ?? sa.scopes
    const extra = scopes.filter((s) => !sa.scopes.includes(s))
    if (extra.length) {
      throw new ApiError(
        400,
        'invalid_request',
        `scopes: ${extra.join(', ')} is not granted to service account ${sa.id}`,
      )
    }
    const token = newStaticToken()
    const id = newId('sat')
    const nowMs = clock.now()
    const expiresAt = expiryFor(input.expires_in, nowMs)
    const { rows } = await db.query<TokenRow>(
      `INSERT INTO service_account_tokens (id, service_account_id, token_hash, scopes, expires_at, created_at)
       VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${TOKEN_COLUMNS}`,
      [
        id,
        sa.id,
        hashToken(token),
        scopes,
        expiresAt?.toISOString() ?? null,
        new Date(nowMs).toISOString(),
      ],
    )
    const body: ServiceAccountTokenCreated = { ...tokenToWire(rows[0]), token }
    ctx.status = 201
    ctx.body = body
    await audit(ctx, {
      action: 'service_account_token.create',
      result: 'success',
      target: id,
      details: { service_account_id: sa.id, scopes, expires_in: input.expires_in },
    })
  })

  router.delete('/api/v1/service-accounts/:id/tokens/:tokenId', requireAdmin(), async (ctx) => {
    const { id, tokenId } = ctx.params as { id: string; tokenId: string }
    // Revoke rather than delete: the row keeps the audit trail and the list shows it.
    const { affectedRows } = await db.query(
      `UPDATE service_account_tokens SET revoked_at = COALESCE(revoked_at, $3)
        WHERE id = $1 AND service_account_id = $2`,
      [tokenId, id, now()],
    )
    if (!affectedRows)
      throw new ApiError(404, 'not_found', `token ${tokenId} of service account ${id} not found`)
    ctx.status = 204
    await audit(ctx, {
      action: 'service_account_token.revoke',
      result: 'success',
      target: tokenId,
      details: { service_account_id: id },
    })
  })

  return router
}
