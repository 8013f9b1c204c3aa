import { z } from 'zod'
import type { Db } from '../db/types.js'
import { ApiError } from '../errors.js'
import { iso } from './time.js'

/** `limit` and `cursor` query parameters shared by every list endpoint (DESIGN.md, "Query"). */
export const PageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().min(1).max(512).optional(),
})
export type PageQuery = z.output<typeof PageQuery>

/** Opaque cursor: base64url JSON of the last row's sort key. */
export function encodeCursor(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url')
}

/** Decodes a cursor made by `encodeCursor`; a mangled one is a 400, not a 500. */
export function decodeCursor<T>(cursor: string, schema: z.ZodType<T>): T {
  try {
    return schema.parse(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')))
  } catch {
    throw new ApiError(400, 'invalid_request', 'cursor: is not a cursor this server returned')
  }
}

/**
 * A page from a query that fetched `limit + 1` rows: the first `limit`, and the cursor of
 * the last of them (`keyOf` gives its sort key) when the extra row says there is more.
 */
export function pageOf<Row>(
  rows: Row[],
  limit: number,
  keyOf: (row: Row) => unknown,
): { items: Row[]; nextCursor: string | null } {
  const items = rows.slice(0, limit)
  const last = items.at(-1)
  return {
    items,
    nextCursor: rows.length > limit && last !== undefined ? encodeCursor(keyOf(last)) : null,
  }
}

const CreationCursor = z.tuple([z.string(), z.string()])

/**
 * One page of a table in creation order, keyset-paginated on `(created_at, id)`, and
 * optionally restricted to rows whose `filter.column` equals `filter.value`. `table`,
 * `columns` and `filter.column` are code constants, never user input.
 */
export async function pageByCreation<Row extends { created_at: Date | string; id: string }>(
  db: Db,
  source: { table: string; columns: string; filter?: { column: string; value: unknown } },
  page: PageQuery,
): Promise<{ rows: Row[]; nextCursor: string | null }> {
  const params: unknown[] = []
  const where: string[] = []
  if (source.filter) {
    params.push(source.filter.value)
    where.push(`${source.filter.column} = $${params.length}`)
  }
  if (page.cursor) {
    const [at, id] = decodeCursor(page.cursor, CreationCursor)
    params.push(at, id)
    where.push(`(created_at, id) > ($${params.length - 1}::timestamptz, $${params.length})`)
  }
  params.push(page.limit + 1)
  const { rows } = await db.query<Row>(
    `SELECT ${source.columns} FROM ${source.table} ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY created_at, id LIMIT $${params.length}`,
    params,
  )
  const { items, nextCursor } = pageOf(rows, page.limit, (r) => [iso(r.created_at), r.id])
  return { rows: items, nextCursor }
}
