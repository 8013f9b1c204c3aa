import Router from '@koa/router'
import { z } from 'zod'
import type { AuditList, AuditRecord } from '@hivemind/sdk/schemas'
import type { AppDeps } from '../deps.js'
import { requireAdmin } from '../auth/require.js'
import { PageQuery, decodeCursor, encodeCursor } from '../http/pagination.js'
import { parseInput } from '../http/validate.js'
import { iso } from '../http/time.js'

const AuditQuery = PageQuery.extend({
  action: z.string().min(1).max(200).optional(),
  actor: z.string().min(1).max(200).optional(),
  result: z.enum(['success', 'failure']).optional(),
})

interface Row {
  id: string
  at: Date | string
  action: string
  result: 'success' | 'failure'
  actor_kind: string | null
  actor_id: string | null
  target: string | null
  address: string | null
  details: Record<string, unknown> | string
}

/** `GET /api/v1/audit`: newest first, cursor-paginated, filtered by action/actor/result. */
export function auditRoutes(deps: AppDeps): Router {
  const router = new Router()
  router.get('/api/v1/audit', requireAdmin(), async (ctx) => {
    const q = parseInput(AuditQuery, ctx.query, 'query')
    const where: string[] = []
    const params: unknown[] = []
    const add = (sql: string, v: unknown) => {
      params.push(v)
      where.push(sql.replace('?', `$${params.length}`))
    }
    if (q.cursor) add('id < ?::bigint', decodeCursor(q.cursor, z.string().regex(/^\d+$/)))
    // A trailing `*` filters by prefix: `service_account.*`.
    if (q.action?.endsWith('*'))
      add("action LIKE ? || '%'", q.action.slice(0, -1).replace(/[\\%_]/g, '\\$&'))
    else if (q.action) add('action = ?', q.action)
    if (q.actor) add('actor_id = ?', q.actor)
    if (q.result) add('result = ?', q.result)
    params.push(q.limit + 1)
    const { rows } = await deps.db.query<Row>(
      `SELECT id::text AS id, at, action, result, actor_kind, actor_id, target, address, details
         FROM audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
        ORDER BY audit_log.id DESC LIMIT $${params.length}`,
      params,
    )
    const page = rows.slice(0, q.limit)
    const body: AuditList = {
      items: page.map((r): AuditRecord => ({
        id: r.id,
        at: iso(r.at),
        action: r.action,
        result: r.result,
        actor_kind: r.actor_kind,
        actor_id: r.actor_id,
        target: r.target,
        address: r.address,
        details: (typeof r.details === 'string' ? JSON.parse(r.details) : r.details) as Record<
          string,
          unknown
        >,
      })),
      next_cursor: rows.length > q.limit ? encodeCursor(page.at(-1)!.id) : null,
    }
    ctx.body = body
  })
  return router
}
