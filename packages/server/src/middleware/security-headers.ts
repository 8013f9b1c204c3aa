import type { Middleware } from 'koa'

/**
 * Security headers on every response. HTML (the dashboard) gets a CSP that allows
 * only same-origin scripts and styles; JSON and everything else a CSP that allows
 * nothing, so a response rendered by mistake cannot run anything. HSTS is sent only
 * when the public URL is https (on plain http it would be ignored or, worse, stick).
 *
 * @example
 * app.use(securityHeaders({ https: config.publicUrl.startsWith('https:') }))
 */
export function securityHeaders(options: { https: boolean }): Middleware {
  return async (ctx, next) => {
    ctx.set('X-Content-Type-Options', 'nosniff')
    ctx.set('X-Frame-Options', 'DENY')
    ctx.set('Referrer-Policy', 'no-referrer')
    ctx.set('Cross-Origin-Opener-Policy', 'same-origin')
    ctx.set('Cross-Origin-Resource-Policy', 'same-origin')
    ctx.set('Permissions-Policy', 'camera=(), microphone=(), geolocation=(), payment=()')
    if (options.https) ctx.set('Strict-Transport-Security', 'max-age=31536000; includeSubDomains')
    try {
      await next()
    } finally {
      const html = /^text\/html\b/i.test(ctx.response.get('Content-Type'))
      ctx.set(
        'Content-Security-Policy',
        html
          ? "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
          : "default-src 'none'; frame-ancestors 'none'",
      )
    }
  }
}
