import { isIP } from 'node:net'
import type { Middleware } from 'koa'
import { AddressList, normalizeAddress } from '../auth/address-list.js'

/**
 * Sets `ctx.ip` (used by logs, audit and rate limits) to the real client address.
 * `X-Forwarded-For` is believed only when the socket peer is one of
 * HIVEMIND_TRUSTED_PROXIES, and then only up to the first hop that is not a trusted
 * proxy (walking from the right, the way each proxy appended it): a client cannot
 * pick its own address by sending the header itself.
 *
 * @example
 * app.use(clientAddress(['10.0.0.0/8']))
 */
export function clientAddress(trustedProxies: readonly string[]): Middleware {
  const trusted = new AddressList(trustedProxies)
  return async (ctx, next) => {
    const peer = normalizeAddress(ctx.req.socket.remoteAddress ?? '')
    let client = peer
    if (trusted.has(peer)) {
      const hops = ctx
        .get('x-forwarded-for')
        .split(',')
        .map((h) => normalizeAddress(h.trim()))
        .filter((h) => isIP(h) !== 0)
      for (let i = hops.length - 1; i >= 0; i--) {
        client = hops[i]!
        if (!trusted.has(client)) break
      }
    }
    ctx.request.ip = client
    await next()
  }
}
