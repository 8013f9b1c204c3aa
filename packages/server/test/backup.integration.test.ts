import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { backupToFile, restoreFromFile } from '../src/backup/backup.js'
import { loadConfig } from '../src/config.js'
import { openDb } from '../src/db/open.js'
import type { Db } from '../src/db/types.js'
import {
  SECRET_KEY,
  backendAvailable,
  backendEnv,
  startTestServer,
  tempDir,
  type Backend,
} from './helpers.js'

const cleanups: (() => Promise<void>)[] = []
afterAll(async () => {
  for (const c of cleanups.reverse()) await c()
})

async function freshDb(backend: Backend): Promise<{ db: Db; env: Record<string, string> }> {
  const b = await backendEnv(backend)
  const db = await openDb(loadConfig(b.env))
  cleanups.push(
    () => b.cleanup(),
    () => db.close(),
  )
  return { db, env: b.env }
}

// Fixed, as in a real deployment: the restored server has the same issuer on another port.
const PUBLIC_URL = 'https://hivemind.example.com'

const pairs: [Backend, Backend][] = [
  ['pglite', 'pglite'],
  ['postgres', 'postgres'],
  ['pglite', 'postgres'],
]

describe.each(pairs)('backup from %s, restore into %s', (from, to) => {
  describe.skipIf(!backendAvailable(from) || !backendAvailable(to))(
    'when the database is available',
    () => {
      let file: string
      let jwt: string
      let staticToken: string
      let saId: string
      beforeAll(async () => {
        const dir = await tempDir()
        cleanups.push(() => dir.remove())
        file = join(dir.path, from === to ? 'backup.ndjson' : 'backup.ndjson.gz')
        const source = await freshDb(from)
        const t = await startTestServer({
          env: { HIVEMIND_SECRET_KEY: SECRET_KEY, HIVEMIND_PUBLIC_URL: PUBLIC_URL },
          overrides: { db: source.db },
        })
        const sa = await t.call('POST', '/api/v1/service-accounts', {
          admin: true,
          body: { name: 'ci', scopes: ['read', 'write'] },
        })
        saId = sa.body.id
        staticToken = (
          await t.call('POST', `/api/v1/service-accounts/${saId}/tokens`, { admin: true, body: {} })
        ).body.token
        jwt = (await t.server.deps.keys.sign({ sub: saId, scope: 'write' }, 3600)).token
        await t.close()
        await backupToFile(source.db, file)
      })

      it('restores into a fresh database that still verifies old JWTs and accepts static tokens', async () => {
        const target = await freshDb(to)
        await restoreFromFile(target.db, file, { secretKey: SECRET_KEY })
        const t = await startTestServer({
          env: { HIVEMIND_SECRET_KEY: SECRET_KEY, HIVEMIND_PUBLIC_URL: PUBLIC_URL },
          overrides: { db: target.db },
        })
        try {
          expect(await t.call('GET', '/api/v1/me', { bearer: jwt })).toMatchObject({
            status: 200,
            body: { id: saId, credential: 'jwt' },
          })
          expect(await t.call('GET', '/api/v1/me', { bearer: staticToken })).toMatchObject({
            status: 200,
            body: { id: saId },
          })
          // The restored private key signs again, and the audit sequence continues.
          const fresh = await t.server.deps.keys.sign({ sub: saId, scope: 'read' }, 600)
          expect((await t.call('GET', '/api/v1/me', { bearer: fresh.token })).status).toBe(200)
          const created = await t.call('POST', '/api/v1/service-accounts', {
            admin: true,
            body: { name: 'after-restore' },
          })
          expect(created.status).toBe(201)
        } finally {
          await t.close()
        }
      })

      it('refuses a non-empty target', async () => {
        const target = await freshDb(to)
        await restoreFromFile(target.db, file, { secretKey: SECRET_KEY })
        await expect(
          restoreFromFile(target.db, file, { secretKey: SECRET_KEY }),
        ).rejects.toMatchObject({
          code: 'ERR_BACKUP',
          message: expect.stringMatching(/^restore needs an empty database but table \w+ has rows/),
        })
      })

      it.each([
        [
          'a wrong',
          'not-the-secret-key-that-was-used-for-it',
          /cannot be decrypted: HIVEMIND_SECRET_KEY differs from the key the backed-up server used$/,
        ],
        [
          'no',
          undefined,
          /is encrypted: set HIVEMIND_SECRET_KEY to the key the backed-up server used$/,
        ],
      ])('explains %s HIVEMIND_SECRET_KEY and restores nothing', async (_n, secretKey, message) => {
        const target = await freshDb(to)
        await expect(restoreFromFile(target.db, file, { secretKey })).rejects.toMatchObject({
          code: 'ERR_BACKUP',
          message,
        })
        const { rows } = await target.db.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM information_schema.tables WHERE table_name = 'service_accounts'",
        )
        // Rolled back: not even the schema is left half-made.
        expect(rows[0].n).toBe(0)
      })
    },
  )
})
