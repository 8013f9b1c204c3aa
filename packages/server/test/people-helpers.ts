import { request as httpRequest } from 'node:http'
import { Writable } from 'node:stream'
import { pino, type Logger } from 'pino'

/** One JSON log record as pino wrote it. */
export interface LogRecord {
  level: number
  msg: string
  [key: string]: unknown
}

/** A pino logger that keeps its records in memory, so tests can assert log lines. */
export function capturingLogger(): { logger: Logger; records: LogRecord[]; text(): string } {
  const records: LogRecord[] = []
  const lines: string[] = []
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) {
        lines.push(line)
        records.push(JSON.parse(line) as LogRecord)
      }
      cb()
    },
  })
  return { logger: pino({ level: 'debug' }, stream), records, text: () => lines.join('\n') }
}

export interface RawResponse {
  status: number
  text: string
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON bodies, asserted with toMatchObject
  body: any
  headers: Record<string, string | string[] | undefined>
  /** `Set-Cookie` lines. */
  cookies: string[]
}

/**
 * One HTTP request with node:http, so a test can pick the client's source address
 * (`localAddress: '127.0.0.2'`) and send a header twice (an array value).
 */
export function rawRequest(
  url: string,
  options: {
    method?: string
    path: string
    headers?: Record<string, string | string[]>
    body?: unknown
    localAddress?: string
  },
): Promise<RawResponse> {
  const u = new URL(url)
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: u.hostname.replace(/^\[|\]$/g, ''),
        port: u.port,
        method: options.method ?? 'GET',
        path: options.path,
        ...(options.localAddress ? { localAddress: options.localAddress } : {}),
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          let body: unknown = text
          try {
            body = text ? JSON.parse(text) : undefined
          } catch {
            // not JSON
          }
          resolve({
            status: res.statusCode ?? 0,
            text,
            body,
            headers: res.headers,
            cookies: res.headers['set-cookie'] ?? [],
          })
        })
      },
    )
    req.on('error', reject)
    for (const [k, v] of Object.entries(options.headers ?? {})) req.setHeader(k, v)
    if (options.body !== undefined) {
      req.setHeader('content-type', 'application/json')
      req.end(JSON.stringify(options.body))
    } else req.end()
  })
}

/** `name=value` of a Set-Cookie line with that name. */
export function cookieValue(cookies: string[], name: string): string | undefined {
  for (const c of cookies) {
    const m = new RegExp(`^${name}=([^;]*)`).exec(c)
    if (m) return m[1]
  }
  return undefined
}

export const PASSWORD = 'correct horse battery staple'
