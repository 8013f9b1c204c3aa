/* eslint-disable @typescript-eslint/no-explicit-any -- response bodies are untyped JSON in tests */
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_ID_TOKEN } from '@hivemind/sdk/schemas'
import type { Db } from '../src/db/types.js'
import { createPostgresReplayStore } from '../src/exchange/replay/postgres-replay-store.js'
import type { ReplayStore } from '../src/exchange/replay-store.js'
import { manualClock, openMemoryDb, startTestServer, type TestServer } from './helpers.js'

export const PUBLIC_URL = 'https://hivemind.example.com'

/** A test server for exchange tests: PGlite (or a given db), a manual clock, captured logs. */
export interface ExchangeHarness extends TestServer {
  db: Db
  clock: ReturnType<typeof manualClock>
  /** Every log line the server wrote (JSON strings). */
  logs: string[]
  /** POST /oauth/token as a form; `params` override or add fields. */
  exchange(
    token: string,
    params?: Record<string, string>,
  ): Promise<{ status: number; body: any; headers: Headers }>
  /** Creates a service account; returns its id. */
  serviceAccount(
    name: string,
    body?: { scopes?: string[]; max_ttl_seconds?: number; disabled?: boolean },
  ): Promise<string>
  /** Adds an identity provider, expecting 201; returns its id. */
  provider(saId: string, body: Record<string, unknown>): Promise<string>
}

export async function startExchangeHarness(
  options: {
    env?: Record<string, string>
    db?: Db
    replay?: (db: Db) => ReplayStore | Promise<ReplayStore>
  } = {},
): Promise<ExchangeHarness> {
  const db = options.db ?? (await openMemoryDb())
  const clock = manualClock()
  const logs: string[] = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(chunk.toString('utf8'))
      cb()
    },
  })
  const replay = options.replay ? await options.replay(db) : createPostgresReplayStore(db)
  const t = await startTestServer({
    env: {
      HIVEMIND_PUBLIC_URL: PUBLIC_URL,
      HIVEMIND_JWKS_COOLDOWN_S: '30',
      ...options.env,
    },
    overrides: { db, clock, replay, logger: pino({ level: 'info' }, sink) },
  })
  return {
    ...t,
    db,
    clock,
    logs,
    async exchange(token, params = {}) {
      const res = await fetch(`${t.url}/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: GRANT_TYPE_TOKEN_EXCHANGE,
          subject_token: token,
          subject_token_type: TOKEN_TYPE_ID_TOKEN,
          ...params,
        }),
      })
      const text = await res.text()
      return { status: res.status, body: JSON.parse(text), headers: res.headers }
    },
    async serviceAccount(name, body = {}) {
      const r = await t.call('POST', '/api/v1/service-accounts', {
        admin: true,
        body: { name, scopes: ['read', 'write'], ...body },
      })
      if (r.status !== 201) throw new Error(`create SA: ${r.status} ${JSON.stringify(r.body)}`)
      return r.body.id as string
    },
    async provider(saId, body) {
      const r = await t.call('POST', `/api/v1/service-accounts/${saId}/identity-providers`, {
        admin: true,
        body,
      })
      if (r.status !== 201)
        throw new Error(`create provider: ${r.status} ${JSON.stringify(r.body)}`)
      return r.body.id as string
    },
    async close() {
      await t.close()
      await replay.close()
      if (!options.db) await db.close()
    },
  }
}
