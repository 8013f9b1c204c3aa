import { Agent, request } from 'node:http'

/** A response as the benches read it. */
export interface BenchResponse {
  status: number
  body: string
}

/** Requests to one server over pooled keep-alive connections. */
export interface KeepAliveClient {
  call: (
    method: string,
    path: string,
    headers: Record<string, string>,
    body?: string,
  ) => Promise<BenchResponse>
  /** Closes the pooled connections. */
  close: () => void
}

/**
 * Requests over a keep-alive `node:http` agent with up to `maxSockets` connections: lighter
 * than fetch per call, so the load generator measures the server rather than itself.
 */
export function keepAliveClient(baseUrl: string, maxSockets: number): KeepAliveClient {
  const agent = new Agent({ keepAlive: true, maxSockets })
  const target = new URL(baseUrl)
  const call: KeepAliveClient['call'] = (method, path, headers, body) =>
    new Promise((resolve, reject) => {
      const req = request(
        {
          agent,
          host: target.hostname,
          port: target.port,
          method,
          path,
          headers:
            body === undefined
              ? headers
              : { ...headers, 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          const chunks: Buffer[] = []
          res.on('data', (c: Buffer) => chunks.push(c))
          res.on('end', () =>
            resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString() }),
          )
          res.on('error', reject)
        },
      )
      req.on('error', reject)
      req.end(body)
    })
  return { call, close: () => agent.destroy() }
}
