import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type Router from '@koa/router'
import pg from 'pg'
import { pino } from 'pino'
import { afterAll, beforeAll } from 'vitest'
import { requireService, testDatabaseUrl } from '@hivemind/test-utils'
import type { Clock } from '../src/clock.js'
import { loadConfig } from '../src/config.js'
import { migrate } from '../src/db/migrate.js'
import { openDb } from '../src/db/open.js'
import { openPglite } from '../src/db/pglite.js'
import type { Db } from '../src/db/types.js'
import type { ReplayStore } from '../src/exchange/replay-store.js'
import { createServer, type CreateServerOptions, type HiveMindServer } from '../src/server.js'

export const ADMIN_KEY = 'test-admin-key-0123456789abcdef'
export const SECRET_KEY = 'test-secret-key-0123456789abcdef0123456789'

/** A replay store that lives in memory; enough for tests that do not exchange. */
export function memoryReplayStore(): ReplayStore & { down: boolean } {
  const claimed = new Map<string, number>()
  const store = {
    kind: 'postgres' as const,
    down: false,
    claim(key: string, exp: number) {
      if (store.down) return Promise.reject(new Error('replay store down'))
      if (claimed.has(key)) return Promise.resolve(false)
      claimed.set(key, exp)
      return Promise.resolve(true)
    },
    has: (key: string) => Promise.resolve(claimed.has(key)),
    ping: () => (store.down ? Promise.reject(new Error('down')) : Promise.resolve()),
    close: () => Promise.resolve(),
  }
  return store
}

/** A clock tests move by hand. */
export function manualClock(start = Date.now()): Clock & { advance(seconds: number): void } {
  let now = start
  return {
    now: () => now,
    advance(seconds) {
      now += seconds * 1000
    },
  }
}

export const silentLogger = () => pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' })

/**
 * A fresh PostgreSQL database per call (`CREATE DATABASE t_<random>`), so test files
 * never see each other's rows. Returns its URL and a drop function.
 */
export async function freshPostgresDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const base = testDatabaseUrl()
  if (!base) throw new Error('HIVEMIND_TEST_DATABASE_URL is not set')
  const name = `t_${randomBytes(6).toString('hex')}`
  const admin = new pg.Client({ connectionString: base })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`)
  await admin.end()
  const url = new URL(base)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: base })
      await c.connect()
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await c.end()
    },
  }
}

/** A PGlite data directory in the OS temp dir. */
export async function tempDir(
  prefix = 'hivemind-test-',
): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix))
  return { path, remove: () => rm(path, { recursive: true, force: true }) }
}

/** The storage back ends every storage test runs against. */
export type Backend = 'pglite' | 'postgres'
export const BACKENDS: Backend[] = ['pglite', 'postgres']

/** Whether a backend can run here (PostgreSQL only through scripts/with-services.sh; required under CI). */
export function backendAvailable(backend: Backend): boolean {
  return backend === 'pglite' || requireService('postgres')
}

/** Environment pointing at a fresh database of `backend`; `cleanup` removes it. */
export async function backendEnv(
  backend: Backend,
): Promise<{ env: Record<string, string>; cleanup(): Promise<void> }> {
  if (backend === 'postgres') {
    const db = await freshPostgresDatabase()
    return { env: { DATABASE_URL: db.url }, cleanup: () => db.drop() }
  }
  const dir = await tempDir()
  return { env: { HIVEMIND_DATA_DIR: dir.path }, cleanup: () => dir.remove() }
}

/**
 * A fresh database of `backend` for the enclosing suite: opened (and migrated, unless
 * `migrated: false`) before its tests, closed and removed after them.
 */
export function useBackendDb(
  backend: Backend,
  options: { migrated?: boolean } = {},
): { readonly db: Db } {
  let db: Db | undefined
  let cleanup: (() => Promise<void>) | undefined
  beforeAll(async () => {
    const b = await backendEnv(backend)
    cleanup = () => b.cleanup()
    db = await openDb(loadConfig(b.env))
    if (options.migrated !== false) await migrate(db)
  })
  afterAll(async () => {
    await db?.close()
    await cleanup?.()
  })
  return {
    get db() {
      if (!db) throw new Error('the database opens in beforeAll: use it inside a test')
      return db
    },
  }
}

export async function openMemoryDb(): Promise<Db> {
  return openPglite(undefined)
}

export interface TestServer {
  server: HiveMindServer
  url: string
  /** fetch against the server with JSON in and out. */
  call(
    method: string,
    path: string,
    options?: {
      body?: unknown
      headers?: Record<string, string>
      admin?: boolean
      bearer?: string
    },
  ): Promise<{
    status: number
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON bodies, asserted with toMatchObject
    body: any
    headers: Headers
  }>
  close(): Promise<void>
}

/**
 * Starts a real server on 127.0.0.1:<random port> with an in-memory replay store and
 * a silent logger, on an in-memory PGlite unless `env` names a database.
 */
export async function startTestServer(
  options: {
    env?: Record<string, string>
    overrides?: CreateServerOptions['overrides']
    routers?: Router[]
  } = {},
): Promise<TestServer> {
  const overrides = { replay: memoryReplayStore(), logger: silentLogger(), ...options.overrides }
  if (!options.env?.DATABASE_URL && !options.env?.HIVEMIND_DATA_DIR && !overrides.db) {
    overrides.db = await openMemoryDb()
  }
  const server = await createServer({
    env: {
      HIVEMIND_HOST: '127.0.0.1',
      HIVEMIND_PORT: '0',
      ADMIN_API_KEY: ADMIN_KEY,
      ...options.env,
    },
    overrides,
    app: { routers: options.routers ?? [] },
  })
  const { url } = await server.listen()
  return {
    server,
    url,
    async call(method, path, o = {}) {
      const headers: Record<string, string> = { ...o.headers }
      if (o.admin) headers['x-api-key'] = ADMIN_KEY
      if (o.bearer) headers.authorization = `Bearer ${o.bearer}`
      if (o.body !== undefined) headers['content-type'] = 'application/json'
      const res = await fetch(url + path, {
        method,
        headers,
        ...(o.body === undefined ? {} : { body: JSON.stringify(o.body) }),
      })
      const text = await res.text()
      let body: unknown = text
      try {
        body = text ? JSON.parse(text) : undefined
      } catch {
        // not JSON (metrics)
      }
      return { status: res.status, body, headers: res.headers }
    },
    async close() {
      await server.close()
      if (overrides.db && !options.overrides?.db) await overrides.db.close()
    },
  }
}
