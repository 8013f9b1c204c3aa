// STUB: replaced by the exchange work (identity-provider admin API).
import Router from '@koa/router'
import type { AppDeps } from '../deps.js'

export function identityProviderRoutes(_deps: AppDeps): Router {
  return new Router()
}
