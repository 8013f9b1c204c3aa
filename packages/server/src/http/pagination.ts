import { z } from 'zod'
import { ApiError } from '../errors.js'

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
