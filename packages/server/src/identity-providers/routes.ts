import Router from '@koa/router'
import type { Context } from 'koa'
import {
  IdentityProviderCreateRequest,
  IdentityProviderPatchRequest,
  type IdentityProviderList,
} from '@hivemind/sdk/schemas'
import { principalOf } from '../auth/authenticate.js'
import { requireAdmin } from '../auth/require.js'
import type { AppDeps } from '../deps.js'
import { ApiError } from '../errors.js'
import { parseInput } from '../http/validate.js'
import { getServiceAccount } from '../service-accounts/store.js'
import {
  deleteProvider,
  getProvider,
  insertProvider,
  invalidateProviderCache,
  listProviders,
  toInput,
  toWire,
  updateProvider,
  validateProvider,
  type IdentityProviderRecord,
  type ProviderInput,
} from './store.js'

/**
 * Admin API for the identity providers of a service account:
 * `GET/POST /api/v1/service-accounts/{id}/identity-providers`,
 * `GET/PATCH/DELETE …/{providerId}`. Policies are compiled and type-checked on
 * save; (issuer, selector) is unique across all accounts (409).
 */
export function identityProviderRoutes(deps: AppDeps): Router {
  const { db, clock, config } = deps
  const router = new Router({ prefix: '/api/v1/service-accounts/:id/identity-providers' })
  const now = () => new Date(clock.now()).toISOString()
  const wire = (p: IdentityProviderRecord) => toWire(p, config.audience)

  const account = async (ctx: Context) => {
    const id = String((ctx.params as Record<string, string>).id)
    if (!(await getServiceAccount(db, id))) {
      throw new ApiError(404, 'not_found', `service account ${id} not found`)
    }
    return id
  }
  const provider = async (ctx: Context, saId: string) => {
    const p = await getProvider(db, saId, String((ctx.params as Record<string, string>).providerId))
    if (!p)
      throw new ApiError(
        404,
        'not_found',
        `identity provider ${String((ctx.params as Record<string, string>).providerId)} not found`,
      )
    return p
  }
  const audit = (
    ctx: Context,
    action: string,
    target: string,
    details: Record<string, unknown>,
  ) => {
    const p = principalOf(ctx)
    return deps.audit.record({
      action,
      result: 'success',
      actorKind: p?.kind ?? 'anonymous',
      actorId: p?.id,
      address: ctx.ip,
      target,
      details,
    })
  }

  router.get('/', requireAdmin(), async (ctx) => {
    const saId = await account(ctx)
    const body: IdentityProviderList = { items: (await listProviders(db, saId)).map(wire) }
    ctx.body = body
  })

  router.post('/', requireAdmin(), async (ctx) => {
    const saId = await account(ctx)
    const input = parseInput(IdentityProviderCreateRequest, ctx.request.body ?? {})
    const created = await insertProvider(db, saId, validateProvider(input), now())
    invalidateProviderCache(db)
    ctx.status = 201
    ctx.body = wire(created)
    await audit(ctx, 'identity_provider.create', created.id, {
      service_account: saId,
      issuer: created.issuer,
      selector: created.selector,
    })
  })

  router.get('/:providerId', requireAdmin(), async (ctx) => {
    ctx.body = wire(await provider(ctx, await account(ctx)))
  })

  router.patch('/:providerId', requireAdmin(), async (ctx) => {
    const saId = await account(ctx)
    const current = await provider(ctx, saId)
    const patch = parseInput(IdentityProviderPatchRequest, ctx.request.body ?? {})
    const merged: ProviderInput = {
      ...toInput(current),
      ...(Object.fromEntries(
        Object.entries(patch).filter(([, v]) => v !== undefined),
      ) as Partial<ProviderInput>),
    }
    // Switching to a preset with its own issuer, without naming one, takes the preset's.
    if (patch.preset && patch.issuer === undefined && patch.preset !== current.preset) {
      delete merged.issuer
    }
    const updated = await updateProvider(db, saId, current.id, validateProvider(merged), now())
    invalidateProviderCache(db)
    if (!updated) throw new ApiError(404, 'not_found', `identity provider ${current.id} not found`)
    ctx.body = wire(updated)
    await audit(ctx, 'identity_provider.update', updated.id, {
      service_account: saId,
      fields: Object.keys(patch),
    })
  })

  router.delete('/:providerId', requireAdmin(), async (ctx) => {
    const saId = await account(ctx)
    const id = String(ctx.params.providerId)
    const deleted = await deleteProvider(db, saId, id)
    invalidateProviderCache(db)
    if (!deleted) {
      throw new ApiError(404, 'not_found', `identity provider ${id} not found`)
    }
    ctx.status = 204
    await audit(ctx, 'identity_provider.delete', id, { service_account: saId })
  })

  return router
}
