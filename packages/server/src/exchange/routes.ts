// STUB: replaced by the exchange work (POST /oauth/token, POST /api/v1/exchange/explain).
import Router from '@koa/router'
import type { AppDeps } from '../deps.js'

export function exchangeRoutes(_deps: AppDeps): Router {
  return new Router()
}
