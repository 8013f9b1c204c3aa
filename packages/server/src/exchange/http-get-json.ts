import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'

/** Options of {@link httpGetJson}. */
export interface HttpGetJsonOptions {
  /** PEM CA bundle to trust (private issuers). */
  ca?: string | undefined
  /** @default 5000 */
  timeoutMs?: number
  /** @default 1 MiB */
  maxBytes?: number
}

/**
 * GET a JSON document (discovery, JWKS). node:https instead of fetch so a
 * per-issuer CA can be trusted without a global agent; redirects are not
 * followed, bodies are capped, slow servers time out.
 */
export function httpGetJson(url: string, options: HttpGetJsonOptions = {}): Promise<unknown> {
  const u = new URL(url)
  const maxBytes = options.maxBytes ?? 1024 * 1024
  const send = u.protocol === 'https:' ? httpsRequest : httpRequest
  return new Promise((resolve, reject) => {
    const req = send(
      u,
      {
        method: 'GET',
        headers: { accept: 'application/json' },
        timeout: options.timeoutMs ?? 5000,
        ...(options.ca && u.protocol === 'https:' ? { ca: options.ca } : {}),
      },
      (res) => {
        if (res.statusCode !== 200) {
          res.resume()
          reject(new Error(`GET ${url} answered ${res.statusCode}`))
          return
        }
        const chunks: Buffer[] = []
        let size = 0
        res.on('data', (c: Buffer) => {
          size += c.length
          if (size > maxBytes) {
            req.destroy(new Error(`GET ${url}: body larger than ${maxBytes} bytes`))
            return
          }
          chunks.push(c)
        })
        res.on('end', () => {
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')))
          } catch {
            reject(new Error(`GET ${url}: body is not JSON`))
          }
        })
        res.on('error', reject)
      },
    )
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)))
    req.on('error', reject)
    req.end()
  })
}
