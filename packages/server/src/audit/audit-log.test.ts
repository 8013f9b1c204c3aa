import { describe, expect, it } from 'vitest'
import { openPglite } from '../db/pglite.js'
import { migrate } from '../db/migrate.js'
import { createServer } from '../server.js'
import { DbAuditLog } from './audit-log.js'

const count = async (db: Awaited<ReturnType<typeof openPglite>>) =>
  (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM audit_log')).rows[0].n

describe('DbAuditLog', () => {
  it('writes concurrent records in order, and record resolves once its row is written', async () => {
    const db = await openPglite(undefined)
    await migrate(db)
    const log = new DbAuditLog(db, { now: () => Date.now() })
    await Promise.all(
      Array.from({ length: 1200 }, (_, i) =>
        log.record({ action: 'test.batch', result: 'success', details: { i } }),
      ),
    )
    const { rows } = await db.query<{ details: { i: number } }>(
      "SELECT details FROM audit_log WHERE action = 'test.batch' ORDER BY id",
    )
    expect(rows.map((r) => r.details.i)).toEqual(Array.from({ length: 1200 }, (_, i) => i))
    await db.close()
  })

  it('server.close() flushes records nobody awaited', async () => {
    const db = await openPglite(undefined)
    const server = await createServer({
      env: { LOG_LEVEL: 'silent', HIVEMIND_METRICS: 'false' },
      overrides: { db },
    })
    for (let i = 0; i < 50; i++) {
      void server.deps.audit.record({ action: 'test.shutdown', result: 'success' })
    }
    await server.close()
    expect(await count(db)).toBeGreaterThanOrEqual(50)
    await db.close()
  })
})
