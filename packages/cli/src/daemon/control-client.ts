import { request } from 'node:http'

/** The daemon's answer, or why there was none. */
export type ControlReply<T> =
  | { ok: true; status: number; body: T }
  | { ok: false; reason: 'no-daemon' | 'error'; message: string }

/**
 * One request to a daemon's control socket. A missing socket or a refused connection
 * is `no-daemon`; `timeoutMs` bounds the whole exchange.
 */
export function callDaemon<T>(
  socketPath: string,
  method: 'GET' | 'POST',
  path: string,
  timeoutMs: number,
): Promise<ControlReply<T>> {
  return new Promise((resolve) => {
    const req = request({ socketPath, method, path, timeout: timeoutMs }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (text += d))
      res.on('end', () => {
        try {
          resolve({ ok: true, status: res.statusCode ?? 0, body: JSON.parse(text) as T })
        } catch {
          resolve({
            ok: false,
            reason: 'error',
            message: `unexpected answer from the daemon: ${text.slice(0, 200)}`,
          })
        }
      })
    })
    req.on('timeout', () => {
      req.destroy()
      resolve({
        ok: false,
        reason: 'error',
        message: `the daemon did not answer within ${Math.round(timeoutMs / 1000)} s`,
      })
    })
    req.on('error', (err: NodeJS.ErrnoException) => {
      const gone = err.code === 'ENOENT' || err.code === 'ECONNREFUSED'
      resolve({ ok: false, reason: gone ? 'no-daemon' : 'error', message: err.message })
    })
    req.end()
  })
}
