import type { Context, Middleware } from 'koa'
import { ApiError } from '../errors.js'

/** The one route whose body may exceed the app-wide JSON limit. */
export const BATCH_PATH = '/api/v1/sessions/batch'

/**
 * Keeps the app-wide body parser (1 MB) off `POST /api/v1/sessions/batch`: that route
 * reads its own body with {@link readJsonBody} under `HIVEMIND_SESSIONS_MAX_BODY_BYTES`,
 * and only after the credential was checked, so an anonymous client cannot make the
 * server buffer a large body. Mounted ahead of the body parser in `createApp`.
 */
export function sessionsBatchBody(): Middleware {
  return async (ctx, next) => {
    if (ctx.method === 'POST' && ctx.path === BATCH_PATH) ctx.disableBodyParser = true
    await next()
  }
}

/**
 * Reads and parses a JSON request body of at most `limit` bytes. Over the limit → 413
 * naming it (`envName` says which setting raises it); not JSON → 415/400.
 */
export async function readJsonBody(ctx: Context, limit: number, envName: string): Promise<unknown> {
  const tooLarge = (size: string) =>
    new ApiError(
      413,
      'payload_too_large',
      `batch body is ${size}; the limit is ${limit} bytes (${envName}): send smaller batches`,
      // The rest of the body is never read, so the connection cannot be reused.
      { details: { limit }, headers: { Connection: 'close' } },
    )
  if (!ctx.is('application/json')) {
    throw new ApiError(415, 'unsupported_media_type', 'send the batch as application/json')
  }
  const declared = Number(ctx.get('content-length') || NaN)
  if (declared > limit) throw tooLarge(`${declared} bytes`)
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > limit) throw tooLarge(`over ${limit} bytes`)
    chunks.push(chunk)
  }
  try {
    return JSON.parse(Buffer.concat(chunks, size).toString('utf8')) as unknown
  } catch {
    throw new ApiError(400, 'invalid_request', 'body: is not valid JSON')
  }
}
