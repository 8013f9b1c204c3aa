import { createServer as createHttpServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type Koa from 'koa'
import { pino, type Logger } from 'pino'
import { createApp, type AppOptions } from './app.js'
import { DbAuditLog } from './audit/audit-log.js'
import { offsetClock } from './clock.js'
import { loadConfig, type ServerConfig } from './config.js'
import { migrate } from './db/migrate.js'
import { openDb } from './db/open.js'
import type { Db } from './db/types.js'
import type { AppDeps } from './deps.js'
import { StartupError } from './errors.js'
import { createReplayStore } from './exchange/create-replay-store.js'
import { KeyDecryptionError } from './keys/encryption.js'
import { DbKeyStore } from './keys/key-store.js'
import { createMetrics } from './metrics.js'

/** Options of `createServer`. Everything is optional; tests override single dependencies. */
export interface CreateServerOptions {
  /** Environment to read the config from. @default process.env */
  env?: Readonly<Record<string, string | undefined>>
  /** A ready config instead of `env`. */
  config?: ServerConfig
  /** Replace built dependencies (an in-memory replay store, a fake clock, an open db…). */
  overrides?: Partial<AppDeps>
  /** Called once per migration applied at startup. */
  onMigration?: (name: string, index: number, total: number) => void
  /** Run migrations at startup. @default true */
  migrate?: boolean
  app?: AppOptions
}

/** A built server: the Koa app, its dependencies, and listen/close. */
export interface HiveMindServer {
  app: Koa
  deps: AppDeps
  /** Listens on the configured host and port (0 = any free port). */
  listen(): Promise<{ url: string; port: number; host: string }>
  /** Stops listening, then closes what `createServer` opened. */
  close(): Promise<void>
}

/** Log paths pino blanks out, in case a header or body ever reaches a log record. */
export const REDACT_PATHS = [
  'authorization',
  'cookie',
  'subject_token',
  'token',
  'access_token',
  'password',
  '*.authorization',
  '*.cookie',
  '*["x-api-key"]',
  '*.subject_token',
  '*.token',
  '*.access_token',
  '*.password',
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
]

/** The server's JSON logger: pino, secrets redacted. */
export function createLogger(config: Pick<ServerConfig, 'logLevel'>): Logger {
  return pino({
    level: config.logLevel,
    base: { service: 'hivemind-server' },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  })
}

/** `postgres://user:secret@host/db` → `postgres://user@host/db`, for error messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url)
    u.password = ''
    return u.toString()
  } catch {
    return '(unparsable URL)'
  }
}

/** Opens the database with an error that says what to fix. */
export async function openDatabase(config: ServerConfig): Promise<Db> {
  try {
    return await openDb(config)
  } catch (cause) {
    const reason = describeDbError(cause)
    throw new StartupError(
      config.databaseUrl
        ? `cannot connect to the database at ${redactUrl(config.databaseUrl)}: ${reason}`
        : `cannot open the PGlite data directory ${config.dataDir}: ${reason}`,
      { cause },
    )
  }
}

function describeDbError(err: unknown): string {
  const e = err as { code?: string; message?: string; errors?: { code?: string }[] }
  const code = e.code ?? e.errors?.[0]?.code
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused (is PostgreSQL running?)'
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host not found'
    case 'ETIMEDOUT':
      return 'connection timed out'
    case '28P01':
    case '28000':
      return 'authentication failed'
    case '3D000':
      return 'database does not exist'
    default:
      return (e.message ?? String(err)).split('\n')[0] ?? 'unknown error'
  }
}

/**
 * Builds a server from the environment: config, database (migrated), signing keys,
 * audit log, metrics and replay store, and the Koa app on top.
 *
 * @example
 * const server = await createServer({ env: { HIVEMIND_PORT: '0' } })
 * const { url } = await server.listen()
 * await server.close()
 */
export async function createServer(options: CreateServerOptions = {}): Promise<HiveMindServer> {
  const config = options.config ?? loadConfig(options.env ?? process.env)
  const o = options.overrides ?? {}
  const logger = o.logger ?? createLogger(config)
  const clock = o.clock ?? offsetClock(config.testClockOffsetS)
  const owned: { close(): Promise<void> }[] = []
  const db = o.db ?? (await openDatabase(config))
  if (!o.db) owned.push(db)
  try {
    if (options.migrate !== false) {
      await migrate(db, options.onMigration ? { onProgress: options.onMigration } : {})
    }
    const keys =
      o.keys ??
      (await DbKeyStore.open({ db, config, clock, logger }).catch((err: unknown) => {
        if (err instanceof KeyDecryptionError) throw new StartupError(err.message, { cause: err })
        throw err
      }))
    const replay = o.replay ?? (await createReplayStore(config, db, logger))
    if (!o.replay) owned.unshift(replay)
    const deps: AppDeps = {
      config,
      db,
      clock,
      logger,
      keys,
      replay,
      audit: o.audit ?? new DbAuditLog(db, clock, logger),
      metrics: o.metrics ?? createMetrics({ defaultMetrics: config.metrics }),
    }
    const app = createApp(deps, options.app)
    let http: Server | undefined
    return {
      app,
      deps,
      listen: () =>
        new Promise((resolve, reject) => {
          const handle = app.callback()
          const server = createHttpServer((req, res) => void handle(req, res))
          server.once('error', (err: NodeJS.ErrnoException) => reject(listenError(err, config)))
          server.listen(config.port, config.host, () => {
            http = server
            const { port, address } = server.address() as AddressInfo
            const host = address.includes(':') ? `[${address}]` : address
            const url = `http://${host}:${port}`
            // HIVEMIND_PORT=0 picks a free port; a derived public URL must name the real one.
            if (!config.publicUrlConfigured && config.port === 0) {
              config.publicUrl = url
              config.audience = url
            }
            resolve({ url, port, host: address })
          })
        }),
      async close() {
        if (http) {
          const server = http
          http = undefined
          await new Promise<void>((resolve) => {
            server.close(() => resolve())
            server.closeIdleConnections()
          })
        }
        // No request is in flight any more; write the audit records still queued
        // before the database they go to is closed.
        await deps.audit.flush?.()
        for (const c of owned.splice(0)) await c.close().catch(() => {})
      },
    }
  } catch (err) {
    for (const c of owned.splice(0)) await c.close().catch(() => {})
    throw err
  }
}

function listenError(err: NodeJS.ErrnoException, config: ServerConfig): Error {
  const where = `${config.host}:${config.port}`
  switch (err.code) {
    case 'EADDRINUSE':
      return new StartupError(
        `cannot listen on ${where}: the port is already in use (set HIVEMIND_PORT to a free port)`,
        { cause: err },
      )
    case 'EACCES':
      return new StartupError(
        `cannot listen on ${where}: permission denied (use a port above 1023)`,
        { cause: err },
      )
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
      return new StartupError(
        `cannot listen on ${where}: no such local address (check HIVEMIND_HOST)`,
        { cause: err },
      )
    default:
      return new StartupError(`cannot listen on ${where}: ${err.message}`, { cause: err })
  }
}
