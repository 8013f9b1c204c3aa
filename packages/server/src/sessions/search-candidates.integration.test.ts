import { beforeAll, describe, expect, it } from 'vitest'
import { BACKENDS, backendAvailable, useBackendDb } from '../../test/helpers.js'
import { newestMatches } from './search-candidates.js'
import { Where } from './where.js'

// 3 000 events in 30 sessions (two agents): `alpha` in every other event, `beta` in
// every 60th, `gamma` only in the oldest tenth; a few of the newest `alpha` events are
// tombstoned, which both passes must leave out.
// Passes are sized small (window 500 ids, 100 candidates) so both are exercised.
const EVENTS = 3000
const WINDOW = 500
const LIMIT = 100

describe.each(BACKENDS)('newestMatches on %s', (backend) => {
  describe.skipIf(!backendAvailable(backend))('when the database is available', () => {
    const suite = useBackendDb(backend)
    beforeAll(async () => {
      await suite.db.query(
        `INSERT INTO sessions (owner_kind, owner_id, session_key, agent, sort_at)
         SELECT 'user', 'u1', md5(i::text), CASE WHEN i % 2 = 0 THEN 'codex' ELSE 'claude-code' END, now()
           FROM generate_series(0, 29) AS i`,
      )
      await suite.db.query(
        `INSERT INTO events (session_id, owner_kind, owner_id, event_key, thread, seq, kind, text, tombstone)
         SELECT s.id, 'user', 'u1', md5('e' || i), 'main', i, 'assistant_message',
                concat_ws(' ', 'words', CASE WHEN i % 2 = 0 THEN 'alpha' END,
                  CASE WHEN i % 60 = 0 THEN 'beta' END, CASE WHEN i < $1 / 10 THEN 'gamma' END),
                i % 2 = 0 AND i % 7 = 0 AND i > $1 - 200
           FROM generate_series(0, $1 - 1) AS i
           JOIN sessions s ON s.session_key = md5((i % 30)::text)
          ORDER BY i`,
        [EVENTS],
      )
    })

    const search = (word: string, agent?: string) => {
      const w = new Where()
      w.add(`e.fts @@ websearch_to_tsquery('english', ?)`, word).add('NOT e.tombstone')
      if (agent) w.add('s.agent = ?', agent)
      return w
    }

    /** The plain answer: every match, newest first. */
    async function reference(word: string, agent?: string): Promise<string[]> {
      const w = search(word, agent)
      const { rows } = await suite.db.query<{ id: string | number }>(
        `SELECT e.id FROM events e JOIN sessions s ON s.id = e.session_id ${w.sql}
          ORDER BY e.id DESC LIMIT ${LIMIT}`,
        w.params,
      )
      return rows.map((r) => String(r.id))
    }

    it.each([
      ['a word in half the events', 'alpha', undefined, 'window'],
      ['the same word under a session filter', 'alpha', 'codex', 'window'],
      ['a rare word', 'beta', undefined, 'all'],
      ['a word only in old events', 'gamma', undefined, 'all'],
      ['a word with no match', 'zeta', undefined, 'all'],
    ] as const)('finds exactly the newest matches of %s', async (_, word, agent, pass) => {
      const got = await newestMatches(suite.db, search(word, agent), {
        joinSessions: agent !== undefined,
        limit: LIMIT,
        window: WINDOW,
      })
      expect(got.scanned).toBe(pass)
      expect(got.ids).toEqual(await reference(word, agent))
    })
  })
})
