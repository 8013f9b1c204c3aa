import { bodyParser } from '@koa/bodyparser'
import Router from '@koa/router'
import type { Context } from 'koa'
import {
  ExchangeExplainRequest,
  GRANT_TYPE_TOKEN_EXCHANGE,
  TOKEN_TYPE_ID_TOKEN,
  TOKEN_TYPE_JWT,
  normalizeAudience,
  type ExchangeExplainResponse,
  type TokenExchangeResponse,
} from '@hivemind/sdk/schemas'
import { principalOf } from '../auth/authenticate.js'
import { requireAdmin } from '../auth/require.js'
import type { AppDeps } from '../deps.js'
import { parseInput } from '../http/validate.js'
import { ExchangeFailure } from './failure.js'
import { ExchangePipeline, type PipelineResult } from './pipeline.js'
import { FailureLimiter } from './rate-limit.js'

const ACCEPTED_TOKEN_TYPES = new Set([TOKEN_TYPE_ID_TOKEN, TOKEN_TYPE_JWT])
const ACCEPTED_REQUESTED_TYPES = new Set([
  TOKEN_TYPE_JWT,
  'urn:ietf:params:oauth:token-type:access_token',
])

const invalidRequest = (
  description: string,
  code: 'invalid_request' | 'unsupported_token_type' = 'invalid_request',
) => new ExchangeFailure('invalid_request', code, description)

/** Audit and logs carry `iss`/`sub` as presented; bound their size, they may be attacker-made. */
const clip = (v: string | undefined) => (v === undefined ? undefined : v.slice(0, 256))

/**
 * Reads the RFC 8693 parameters. RFC 6749 §3.2: parameters must not repeat,
 * so a repeated one (an array after form parsing) is an invalid request.
 */
function readParams(body: unknown): Record<string, string | undefined> {
  if (body == null || typeof body !== 'object' || Array.isArray(body)) {
    throw invalidRequest('the body must be application/x-www-form-urlencoded or JSON')
  }
  const out: Record<string, string | undefined> = {}
  for (const name of [
    'grant_type',
    'subject_token',
    'subject_token_type',
    'scope',
    'audience',
    'resource',
    'requested_token_type',
  ]) {
    const v = (body as Record<string, unknown>)[name]
    if (v === undefined || v === '') continue
    if (typeof v !== 'string') throw invalidRequest(`parameter ${name} must be a single string`)
    out[name] = v
  }
  return out
}

/**
 * `POST /oauth/token` (RFC 8693 token exchange, form or JSON) and
 * `POST /api/v1/exchange/explain` (admin dry run of the same pipeline).
 *
 * Every exchange, allowed or denied, is audited (`token.exchange`) and counted in
 * `hivemind_token_exchanges_total`; the token itself is never logged or echoed.
 * Failures are rate-limited per client address and per verified (issuer, sub).
 *
 * @see https://www.rfc-editor.org/rfc/rfc8693#section-2
 */
export function exchangeRoutes(deps: AppDeps): Router {
  const { config, clock, logger, metrics } = deps
  const pipeline = new ExchangePipeline(deps)
  const byAddress = new FailureLimiter(config.rateLimitExchangePerMin, clock)
  const bySubject = new FailureLimiter(config.rateLimitExchangePerSubjectPerMin ?? 100, clock)
  const router = new Router()

  const rateLimited = (retryAfter: number, what: string) =>
    new ExchangeFailure(
      'temporarily_unavailable',
      'rate_limited',
      `too many failed exchanges from this ${what}; retry in ${retryAfter} s`,
      {
        status: 429,
        headers: { 'Retry-After': String(retryAfter) },
      },
    )

  const finish = (
    ctx: Context,
    started: number,
    outcome: { result: PipelineResult | undefined; failure: ExchangeFailure | undefined },
  ) => {
    const { result, failure } = outcome
    const success = failure === undefined
    const hivemindError = failure?.hivemindError ?? ''
    metrics.exchanges.inc({
      result: success ? 'success' : 'failure',
      hivemind_error: hivemindError,
    })
    metrics.exchangeDuration.observe(
      { result: success ? 'success' : 'failure' },
      (performance.now() - started) / 1000,
    )
    const binding = result?.binding
    const details = {
      issuer: clip(result?.issuer),
      sub: clip(result?.sub),
      verified: result?.verified ?? false,
      service_account: binding?.account.id,
      identity_provider: binding?.id,
      hivemind_error: failure?.hivemindError,
    }
    logger[success ? 'info' : 'warn'](
      { ...details, result: success ? 'success' : 'failure', address: ctx.ip },
      success ? 'token exchange allowed' : `token exchange denied: ${failure.message}`,
    )
    // Not awaited: the audit log swallows its own failures, and the client need not wait for it.
    void deps.audit.record({
      action: 'token.exchange',
      result: success ? 'success' : 'failure',
      actorKind: binding && success ? 'service_account' : 'anonymous',
      actorId: success ? binding?.account.id : undefined,
      target: binding?.account.id,
      address: ctx.ip,
      details,
    })
  }

  const tokenBody = bodyParser({
    enableTypes: ['form', 'json'],
    // A body that does not parse is an RFC 6749 invalid_request, answered below.
    onError: (_err, ctx) => {
      ;(ctx.state as { badBody?: boolean }).badBody = true
    },
  })

  router.post('/oauth/token', tokenBody, async (ctx) => {
    const started = performance.now()
    ctx.set('Cache-Control', 'no-store')
    ctx.set('Pragma', 'no-cache')
    let result: PipelineResult | undefined
    let failure: ExchangeFailure | undefined
    try {
      const retryAfter = byAddress.retryAfter(ctx.ip)
      if (retryAfter > 0) throw rateLimited(retryAfter, 'address')
      if ((ctx.state as { badBody?: boolean }).badBody)
        throw invalidRequest('the body does not parse')
      const p = readParams(ctx.request.body)
      if (p.grant_type !== GRANT_TYPE_TOKEN_EXCHANGE) {
        throw new ExchangeFailure(
          p.grant_type ? 'unsupported_grant_type' : 'invalid_request',
          p.grant_type ? 'unsupported_grant_type' : 'invalid_request',
          p.grant_type
            ? `grant_type must be ${GRANT_TYPE_TOKEN_EXCHANGE}`
            : 'grant_type is required',
        )
      }
      if (!p.subject_token) throw invalidRequest('subject_token is required')
      if (!p.subject_token_type || !ACCEPTED_TOKEN_TYPES.has(p.subject_token_type)) {
        throw invalidRequest(
          `subject_token_type must be ${TOKEN_TYPE_ID_TOKEN} or ${TOKEN_TYPE_JWT}`,
          'unsupported_token_type',
        )
      }
      if (p.requested_token_type && !ACCEPTED_REQUESTED_TYPES.has(p.requested_token_type)) {
        throw invalidRequest(
          `requested_token_type must be ${TOKEN_TYPE_JWT}`,
          'unsupported_token_type',
        )
      }
      for (const target of [p.audience, p.resource]) {
        if (target && normalizeAudience(target) !== config.audience) {
          throw new ExchangeFailure(
            'invalid_target',
            'invalid_target',
            `this server issues tokens for ${config.audience} only`,
          )
        }
      }
      result = await pipeline.run(
        { subjectToken: p.subject_token, scope: p.scope },
        'exchange',
        (iss, sub) => {
          const wait = bySubject.retryAfter(`${iss}\n${sub}`)
          return wait > 0 ? rateLimited(wait, 'subject') : undefined
        },
      )
      if (result.failure) throw result.failure
      const account = result.account!
      const scope = result.scopes!.join(' ')
      const minted = await deps.keys.sign(
        {
          sub: account.id,
          scope,
          name: account.name,
          src_iss: result.issuer!,
          src_sub: result.claims!.sub,
        },
        result.ttlSeconds!,
      )
      const body: TokenExchangeResponse = {
        access_token: minted.token,
        issued_token_type: TOKEN_TYPE_JWT,
        token_type: 'Bearer',
        expires_in: result.ttlSeconds!,
        scope,
      }
      ctx.status = 200
      ctx.body = body
    } catch (err) {
      if (err instanceof ExchangeFailure) {
        failure = err
      } else {
        logger.error({ err }, 'token exchange failed unexpectedly')
        failure = new ExchangeFailure('server_error', 'invalid_request', 'internal error', {
          status: 500,
        })
      }
      ctx.status = failure.status
      for (const [k, v] of Object.entries(failure.headers ?? {})) ctx.set(k, v)
      ctx.body = failure.toBody()
      // Client mistakes count toward the limits; our own outages and the limit itself do not.
      if (failure.status === 400) {
        byAddress.fail(ctx.ip)
        if (result?.verified && result.issuer && typeof result.claims?.sub === 'string') {
          bySubject.fail(`${result.issuer}\n${result.claims.sub}`)
        }
      }
    }
    finish(ctx, started, { result, failure })
  })

  router.post('/api/v1/exchange/explain', requireAdmin(), async (ctx) => {
    const input = parseInput(ExchangeExplainRequest, ctx.request.body ?? {})
    const r = await pipeline.run(
      { subjectToken: input.subject_token, scope: input.scope },
      'explain',
    )
    const body: ExchangeExplainResponse = {
      result: r.ok ? 'allow' : 'deny',
      checks: r.checks,
      ...(r.binding
        ? {
            service_account: { id: r.binding.account.id, name: r.binding.account.name },
            identity_provider: r.binding.id,
          }
        : {}),
    }
    ctx.body = body
    const p = principalOf(ctx)
    await deps.audit.record({
      action: 'token.explain',
      result: 'success',
      actorKind: p?.kind ?? 'anonymous',
      actorId: p?.id,
      address: ctx.ip,
      target: r.binding?.account.id,
      details: {
        issuer: clip(r.issuer),
        sub: clip(r.sub),
        outcome: body.result,
        hivemind_error: r.failure?.hivemindError,
      },
    })
  })

  return router
}
