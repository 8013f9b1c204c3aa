import { randomUUID } from 'node:crypto'
import { bodyParser } from '@koa/bodyparser'
import type Router from '@koa/router'
import Koa, { type Context, type Middleware } from 'koa'
import { auditRoutes } from './audit/routes.js'
import { authenticate, principalOf } from './auth/authenticate.js'
import type { AppDeps } from './deps.js'
import { ApiError } from './errors.js'
import { exchangeRoutes } from './exchange/routes.js'
import { identityProviderRoutes } from './identity-providers/routes.js'
import { clientAddress } from './middleware/client-address.js'
import { csrfProtection } from './middleware/csrf.js'
import { securityHeaders } from './middleware/security-headers.js'
import { platformRoutes } from './platform/routes.js'
import { serviceAccountRoutes } from './service-accounts/routes.js'
import { authRoutes } from './users/auth-routes.js'
import { userRoutes } from './users/routes.js'
import { sessionRoutes } from './sessions/routes.js'
import { sessionsBatchBody } from './sessions/body.js'

/** Options of `createApp` beyond its dependencies. */
export interface AppOptions {
  /** Largest JSON body accepted. @default '1mb' */
  jsonLimit?: string
  /** Largest form body accepted (the token endpoint). @default '64kb' */
  formLimit?: string
  /** Extra routers, mounted after the built-in ones (tests, later features). */
  routers?: Router[]
}

const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/
// Probes and scrapes are frequent and boring; log them at debug.
const QUIET_PATHS = new Set(['/api/v1/health', '/api/v1/health/live', '/metrics'])

/**
 * Builds the Koa application: client address, request ids, JSON request logs, security headers,
 * one error middleware, body parsing, authentication and all routers. It does not
 * listen; `createServer` (or a test) does.
 *
 * @example
 * const app = createApp(deps)
 * app.listen(0)
 */
export function createApp(deps: AppDeps, options: AppOptions = {}): Koa {
  const app = new Koa()
  // Koa's own error printing would leak stacks to stderr; errors are logged once below.
  app.silent = true

  const https = deps.config.publicUrl.startsWith('https:')
  // First, so logs, audit and rate limits all see the real client address.
  app.use(clientAddress(deps.config.trustedProxies))
  app.use(requestContext(deps))
  app.use(securityHeaders({ https }))
  app.use(errorHandler(deps))
  app.use(sessionsBatchBody())
  app.use(
    bodyParser({
      enableTypes: ['json', 'form'],
      jsonLimit: options.jsonLimit ?? '1mb',
      formLimit: options.formLimit ?? '64kb',
    }),
  )
  // forward-auth → session → API key / bearer, inside one middleware; then CSRF for cookies.
  app.use(authenticate(deps))
  app.use(csrfProtection({ secure: https }))
  const routers = [
    authRoutes(deps),
    userRoutes(deps),
    platformRoutes(deps),
    serviceAccountRoutes(deps),
    auditRoutes(deps),
    exchangeRoutes(deps),
    identityProviderRoutes(deps),
    sessionRoutes(deps),
    ...(options.routers ?? []),
  ]
  for (const router of routers) app.use(router.routes())
  return app
}

/** Request id, one log line and metrics per request. */
function requestContext(deps: AppDeps): Middleware {
  return async (ctx, next) => {
    const started = process.hrtime.bigint()
    const incoming = ctx.get('x-request-id')
    const requestId = REQUEST_ID_RE.test(incoming) ? incoming : randomUUID()
    ctx.state.requestId = requestId
    ctx.set('X-Request-Id', requestId)
    if (ctx.path.startsWith('/api/') || ctx.path.startsWith('/oauth/'))
      ctx.set('Cache-Control', 'no-store')
    try {
      await next()
    } finally {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9
      const route = routeOf(ctx)
      deps.metrics.httpRequests.inc({ method: ctx.method, route, status: String(ctx.status) })
      deps.metrics.httpDuration.observe({ method: ctx.method, route }, seconds)
      const p = principalOf(ctx)
      const line = {
        req_id: requestId,
        method: ctx.method,
        // Path only: a query string may carry something that should not be logged.
        path: ctx.path,
        route,
        status: ctx.status,
        duration_ms: Math.round(seconds * 1e4) / 10,
        ...(p ? { actor: `${p.kind}:${p.id}` } : {}),
        address: ctx.ip,
      }
      if (QUIET_PATHS.has(ctx.path)) deps.logger.debug(line, 'request')
      else deps.logger.info(line, 'request')
    }
  }
}

/** The route pattern (`/api/v1/service-accounts/:id`), so metrics labels stay bounded. */
function routeOf(ctx: Context): string {
  const matched = (ctx as Context & { _matchedRoute?: string | RegExp })._matchedRoute
  return matched === undefined ? 'unmatched' : String(matched)
}

const STATUS_CODES: Record<number, string> = {
  400: 'invalid_request',
  401: 'unauthenticated',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  429: 'rate_limited',
}

/**
 * Maps every failure to `{"error", "code", "details"?}`: ApiError as given,
 * http-errors (body parser, ctx.throw) by status, anything else to a 500 without
 * internals. `/oauth/token` gets RFC 6749 bodies instead.
 */
function errorHandler(deps: AppDeps): Middleware {
  return async (ctx, next) => {
    try {
      await next()
      if (ctx.status === 404 && ctx.body == null) {
        throw new ApiError(404, 'not_found', `no route for ${ctx.method} ${ctx.path}`)
      }
    } catch (err) {
      const oauth = ctx.path === '/oauth/token'
      if (err instanceof ApiError) {
        ctx.status = err.status
        for (const [k, v] of Object.entries(err.headers ?? {})) ctx.set(k, v)
        ctx.body = oauth
          ? {
              error: err.status >= 500 ? 'server_error' : 'invalid_request',
              error_description: err.message,
            }
          : {
              error: err.message,
              code: err.code,
              ...(err.details === undefined ? {} : { details: err.details }),
            }
        return
      }
      const status = httpStatus(err)
      if (status !== undefined && status < 500 && (err as { expose?: boolean }).expose !== false) {
        const message = (err as Error).message
        ctx.status = status
        ctx.body = oauth
          ? { error: 'invalid_request', error_description: message }
          : { error: message, code: STATUS_CODES[status] ?? 'invalid_request' }
        return
      }
      deps.logger.error({ err, req_id: ctx.state.requestId as string }, 'unhandled error')
      ctx.status = 500
      ctx.body = oauth
        ? { error: 'server_error', error_description: 'internal error' }
        : { error: 'internal error', code: 'internal' }
    }
  }
}

function httpStatus(err: unknown): number | undefined {
  const s = (err as { status?: unknown; statusCode?: unknown } | null)?.status
  return typeof s === 'number' && s >= 400 && s < 600 ? s : undefined
}
