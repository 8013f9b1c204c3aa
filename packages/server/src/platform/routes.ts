import Router from '@koa/router'
import {
  GRANT_TYPE_TOKEN_EXCHANGE,
  type HealthResponse,
  type OpenIdConfiguration,
} from '@hivemind/sdk/schemas'
import type { AppDeps } from '../deps.js'
import { VERSION } from '../version.js'
import { buildOpenApi } from './openapi.js'

// A hung dependency must not hang the readiness probe past the kubelet's timeout.
const PING_TIMEOUT_MS = 2_000

async function check(ping: () => Promise<void>): Promise<'ok' | 'down'> {
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      ping(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('timeout')), PING_TIMEOUT_MS)
      }),
    ])
    return 'ok'
  } catch {
    return 'down'
  } finally {
    clearTimeout(timer)
  }
}

/** Public routes: health, metrics, JWKS, discovery, OpenAPI. */
export function platformRoutes(deps: AppDeps): Router {
  const router = new Router()
  // Read per request: with HIVEMIND_PORT=0 the public URL is known only after listen.
  const base = () => deps.config.publicUrl

  router.get('/api/v1/health', async (ctx) => {
    const [database, replay_store] = await Promise.all([
      check(() => deps.db.ping()),
      check(() => deps.replay.ping()),
    ])
    const ok = database === 'ok' && replay_store === 'ok'
    const body: HealthResponse = {
      status: ok ? 'ok' : 'degraded',
      version: VERSION,
      audience: deps.config.audience,
      checks: { database, replay_store },
    }
    ctx.status = ok ? 200 : 503
    ctx.body = body
  })

  router.get('/api/v1/health/live', (ctx) => {
    ctx.body = { status: 'ok' }
  })

  router.get('/metrics', async (ctx) => {
    if (!deps.config.metrics) {
      ctx.status = 404
      ctx.body = { error: 'metrics are disabled (HIVEMIND_METRICS=false)', code: 'not_found' }
      return
    }
    ctx.type = deps.metrics.registry.contentType
    ctx.body = await deps.metrics.registry.metrics()
  })

  router.get('/.well-known/jwks.json', async (ctx) => {
    // Short cache: verifiers should pick up a rotation within minutes.
    ctx.set('Cache-Control', 'public, max-age=300')
    ctx.body = await deps.keys.jwks()
  })

  router.get('/.well-known/openid-configuration', (ctx) => {
    ctx.set('Cache-Control', 'public, max-age=300')
    const body: OpenIdConfiguration & Record<string, unknown> = {
      issuer: base(),
      jwks_uri: `${base()}/.well-known/jwks.json`,
      token_endpoint: `${base()}/oauth/token`,
      grant_types_supported: [GRANT_TYPE_TOKEN_EXCHANGE],
      token_endpoint_auth_methods_supported: ['none'],
      hivemind_audience: deps.config.audience,
    }
    ctx.body = body
  })

  let openapi: unknown
  router.get('/api/v1/openapi.json', (ctx) => {
    openapi ??= buildOpenApi({ serverUrl: base(), version: VERSION })
    ctx.body = openapi
  })

  return router
}
