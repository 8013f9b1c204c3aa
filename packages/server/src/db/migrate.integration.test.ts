import { describe, expect, it } from 'vitest'
import { BACKENDS, backendAvailable, useBackendDb } from '../../test/helpers.js'
import { migrate } from './migrate.js'

describe.each(BACKENDS)(`${migrate.name} on %s`, (backend) => {
  describe.skipIf(!backendAvailable(backend))('when the database is available', () => {
    const suite = useBackendDb(backend, { migrated: false })

    it('applies every migration once, then nothing on a re-run', async () => {
      const progress: string[] = []
      const first = await migrate(suite.db, { onProgress: (name) => progress.push(name) })
      expect(first.applied).toContain('001_core.sql')
      expect(progress).toEqual(first.applied)
      const second = await migrate(suite.db)
      expect(second).toEqual({ applied: [], alreadyApplied: first.applied.length })
    })

    it('creates the core tables', async () => {
      const { rows } = await suite.db.query<{ t: string }>(
        `SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'public'`,
      )
      expect(rows.map((r) => r.t)).toEqual(
        expect.arrayContaining([
          'service_accounts',
          'service_account_tokens',
          'signing_keys',
          'audit_log',
        ]),
      )
    })

    it.each([
      [
        "INSERT INTO service_accounts (id, name, max_ttl_seconds) VALUES ('sa_a', 'a', 599)",
        /check/i,
      ],
      ["INSERT INTO service_accounts (id, name) VALUES ('xx_a', 'b')", /check/i],
      [
        "INSERT INTO service_account_tokens (id, service_account_id, token_hash) VALUES ('sat_a', 'sa_missing', 'h')",
        /foreign key/i,
      ],
    ])('enforces constraints: %s', async (sql, message) => {
      await expect(suite.db.query(sql)).rejects.toThrow(message)
    })

    it('stores arrays, jsonb and timestamps the same way on both engines', async () => {
      await suite.db.query(
        "INSERT INTO service_accounts (id, name, scopes, max_ttl_seconds) VALUES ('sa_x', 'x', ARRAY['read','write'], 600)",
      )
      const { rows } = await suite.db.query<{ scopes: string[]; created_at: Date }>(
        "SELECT scopes, created_at FROM service_accounts WHERE id = 'sa_x'",
      )
      expect(rows[0].scopes).toEqual(['read', 'write'])
      expect(rows[0].created_at).toBeInstanceOf(Date)
    })
  })
})
