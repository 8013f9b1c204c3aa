import { chmod, unlink } from 'node:fs/promises'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { DrainResult } from './daemon.js'
import type { DaemonStatus } from './status.js'

/** What the control socket serves. */
export interface ControlHandlers {
  status(): DaemonStatus
  flush(timeoutMs: number): Promise<DrainResult>
}

export interface ControlServer {
  close(): Promise<void>
}

/** Longest flush a client may ask for; `hivemind flush --timeout` is checked against it. */
export const MAX_FLUSH_MS = 15 * 60_000

/**
 * HTTP over the daemon's Unix socket (mode 0600: only its user can flush it or read its
 * status): `GET /status`, `POST /flush?timeout_ms=N`. Local only, no credentials on it.
 */
export async function startControlServer(
  socketPath: string,
  handlers: ControlHandlers,
): Promise<ControlServer> {
  // Left behind by a daemon that was killed; the pid file said nobody owns it now.
  if (process.platform !== 'win32') await unlink(socketPath).catch(() => {})
  const server = createServer((req, res) => {
    void route(req, res, handlers).catch((err: unknown) => {
      send(res, 500, { error: (err as Error).message })
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(socketPath, () => {
      server.off('error', reject)
      resolve()
    })
  })
  if (process.platform !== 'win32') await chmod(socketPath, 0o600)
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
        if (process.platform !== 'win32') void unlink(socketPath).catch(() => {})
      }),
  }
}

async function route(req: IncomingMessage, res: ServerResponse, h: ControlHandlers): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://daemon')
  if (req.method === 'GET' && url.pathname === '/status') return send(res, 200, h.status())
  if (req.method === 'POST' && url.pathname === '/flush') {
    const raw = Number(url.searchParams.get('timeout_ms') ?? 60_000)
    if (!Number.isFinite(raw) || raw < 0 || raw > MAX_FLUSH_MS) {
      return send(res, 400, { error: `timeout_ms must be between 0 and ${MAX_FLUSH_MS}` })
    }
    return send(res, 200, await h.flush(raw))
  }
  send(res, 404, { error: `no route ${req.method ?? ''} ${url.pathname}` })
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return
  const text = JSON.stringify(body)
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  })
  res.end(text)
}
