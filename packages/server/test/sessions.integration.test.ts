import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  eventKey,
  sessionKey,
  type AgentId,
  type NormalizedEvent,
  type SessionUpload,
} from '@hivemind/sdk/schemas'
import {
  BACKENDS,
  backendAvailable,
  backendEnv,
  startTestServer,
  type TestServer,
} from './helpers.js'

type Ev = Omit<NormalizedEvent, 'event_key' | 'session_key'> & { native_key: string }

/** `body.items` of a list answer, typed for the assertion at hand. */
function items<T>(r: { body: unknown }): T[] {
  return (r.body as { items: T[] }).items
}

/** A session of `agent` with a fresh source id, and a builder of its events. */
function fixtureSession(overrides: Partial<SessionUpload> = {}, agent: AgentId = 'codex') {
  const sid = randomUUID()
  const session: SessionUpload = {
    agent,
    source_session_id: sid,
    session_key: sessionKey(agent, sid),
    cwd: '/home/dev/widgets',
    git_branch: 'main',
    model: 'gpt-5-codex',
    title: null,
    started_at: '2026-04-15T17:58:23.701Z',
    ended_at: '2026-04-15T18:02:00.000Z',
    source_paths: [`/home/dev/.codex/sessions/${sid}.jsonl`],
    ...overrides,
  }
  const event = (e: Partial<Ev> & { native_key: string }): NormalizedEvent => {
    const { native_key, ...rest } = e
    return {
      thread: 'main',
      seq: 0,
      ts: '2026-04-15T17:58:24.000Z',
      kind: 'user_message',
      ...rest,
      event_key: eventKey(agent, sid, rest.thread ?? 'main', native_key),
      session_key: session.session_key,
    }
  }
  return { session, event, sid }
}

/** The fixture batch of a Claude session where "the agent broke the migration". */
function migrationFixture() {
  const raw = JSON.parse(
    readFileSync(new URL('./fixtures/batch-claude-broken-migration.json', import.meta.url), 'utf8'),
  ) as { sessions: SessionUpload[]; events: Ev[] }
  // Keys are derived here, as the adapters derive them, with a fresh id per test run.
  const sid = randomUUID()
  const key = sessionKey('claude-code', sid)
  return {
    sessions: raw.sessions.map((s) => ({ ...s, source_session_id: sid, session_key: key })),
    events: raw.events.map(({ native_key, ...e }) => ({
      ...e,
      event_key: eventKey('claude-code', sid, e.thread, native_key),
      session_key: key,
    })),
  }
}

describe.each(BACKENDS)('sessions API on %s', (backend) => {
  describe.skipIf(!backendAvailable(backend))('when the database is available', () => {
    let t: TestServer
    let cleanup: () => Promise<void>
    let write: string
    let read: string
    let otherWrite: string
    let otherId: string
    let ownerId: string
    let databaseUrl: string | undefined

    beforeAll(async () => {
      const b = await backendEnv(backend)
      cleanup = () => b.cleanup()
      databaseUrl = b.env.DATABASE_URL
      t = await startTestServer({ env: b.env })
      const sa = async (name: string) => {
        const r = await t.call('POST', '/api/v1/service-accounts', {
          admin: true,
          body: { name, scopes: ['read', 'write'] },
        })
        return (r.body as { id: string }).id
      }
      const token = async (id: string, scopes: string[]) => {
        const r = await t.call('POST', `/api/v1/service-accounts/${id}/tokens`, {
          admin: true,
          body: { scopes },
        })
        return (r.body as { token: string }).token
      }
      ownerId = await sa('uploader')
      otherId = await sa('other-uploader')
      write = await token(ownerId, ['write'])
      read = await token(ownerId, ['read'])
      otherWrite = await token(otherId, ['write'])
    })
    afterAll(async () => {
      await t?.close()
      await cleanup?.()
    })

    const upload = (body: unknown, bearer = write) =>
      t.call('POST', '/api/v1/sessions/batch', { bearer, body })
    const get = (path: string) => t.call('GET', path, { bearer: read })

    describe('scopes', () => {
      it('read scope cannot upload: 403 naming the write scope', async () => {
        const r = await upload({ sessions: [], events: [] }, read)
        expect(r).toMatchObject({
          status: 403,
          body: { code: 'insufficient_scope', error: expect.stringContaining('write scope') },
        })
      })

      it.each(['/api/v1/sessions', '/api/v1/search?q=x', '/api/v1/stats'])(
        'write scope cannot query %s: 403 naming the read scope',
        async (path) => {
          const r = await t.call('GET', path, { bearer: write })
          expect(r).toMatchObject({
            status: 403,
            body: { code: 'insufficient_scope', error: expect.stringContaining('read scope') },
          })
        },
      )

      it("a PAT's uploads land under its user", async () => {
        const email = `pat-${randomUUID().slice(0, 8)}@example.com`
        const password = 'correct horse battery staple'
        const user = await t.call('POST', '/api/v1/users', {
          admin: true,
          body: { username: email.split('@')[0], email, password },
        })
        expect(user.status).toBe(201)
        const userId = (user.body as { id: string }).id
        const login = await t.call('POST', '/auth/login', { body: { email, password } })
        expect(login.status).toBe(200)
        const cookie = login.headers
          .getSetCookie()
          .map((c) => c.split(';')[0])
          .join('; ')
        const csrf = (login.body as { csrf_token: string }).csrf_token
        const pat = await t.call('POST', '/api/v1/tokens', {
          headers: { cookie, 'x-csrf-token': csrf },
          body: { expires_in: '30d', scopes: ['write'] },
        })
        expect(pat).toMatchObject({
          status: 201,
          body: { token: expect.stringMatching(/^hmpat_/) },
        })
        const { session, event } = fixtureSession()
        const r = await upload(
          { sessions: [session], events: [event({ native_key: 'l:0', text: 'hi' })] },
          (pat.body as { token: string }).token,
        )
        expect(r.body).toEqual({ accepted: 2, duplicates: 0, rejected: [] })
        const listed = await get(`/api/v1/sessions?owner=${userId}`)
        expect(items(listed)).toEqual([
          expect.objectContaining({
            session_key: session.session_key,
            owner: { kind: 'user', id: userId },
          }),
        ])
      })

      it('needs a credential', async () => {
        expect((await t.call('GET', '/api/v1/sessions')).status).toBe(401)
      })
    })

    describe('batch upload', () => {
      it('stores valid items and rejects invalid ones with the field and reason', async () => {
        const { session, event } = fixtureSession()
        const good = event({ native_key: 'l:0', text: 'hello' })
        const badTs = { ...event({ native_key: 'l:1' }), ts: 'yesterday' }
        const noKind = event({ native_key: 'l:2' }) as Partial<NormalizedEvent>
        delete noKind.kind
        const badSession = { ...session, session_key: 'nope' }
        const r = await upload({ sessions: [session, badSession], events: [good, badTs, noKind] })
        expect(r.status).toBe(200)
        expect(r.body).toEqual({
          accepted: 2,
          duplicates: 0,
          rejected: [
            {
              kind: 'session',
              index: 1,
              session_key: 'nope',
              error: 'session_key: must be a lower-case hex SHA-256',
            },
            {
              kind: 'event',
              index: 1,
              event_key: badTs.event_key,
              error: expect.stringMatching(/^ts: /),
            },
            { kind: 'event', index: 2, event_key: noKind.event_key, error: 'kind: is required' },
          ],
        })
        const s = await get(`/api/v1/sessions/${session.session_key}`)
        expect(s.body).toMatchObject({ event_count: 1, agent: 'codex', owner: { id: ownerId } })
      })

      // New events go in by binary COPY, which cannot skip a conflicting row: when the same
      // event key reaches two sessions at once (only a buggy or hostile client sends that),
      // the second batch must still store its other events and count that one a duplicate.
      it.skipIf(backend !== 'postgres')(
        'stores a racing batch whose event key another session stored meanwhile',
        async () => {
          const a = fixtureSession()
          const b = fixtureSession()
          expect((await upload({ sessions: [a.session, b.session], events: [] })).status).toBe(200)
          const contested = a.event({ native_key: 'contested', text: 'first' })
          const other = b.event({ native_key: 'other', text: 'second' })
          const db = new pg.Client({ connectionString: databaseUrl })
          await db.connect()
          const waiting = async (n: number) => {
            for (let i = 0; i < 200; i++) {
              const { rows } = await db.query<{ n: number }>(
                `SELECT count(*)::int AS n FROM pg_stat_activity
                  WHERE datname = current_database() AND wait_event_type = 'Lock'`,
              )
              if (rows[0].n >= n) return
              await new Promise((r) => setTimeout(r, 25))
            }
            throw new Error(`never saw ${n} uploads waiting on a lock`)
          }
          try {
            // Hold session A's row: batch A copies its event, then waits to move A's counters.
            const holder = new pg.Client({ connectionString: databaseUrl })
            await holder.connect()
            await holder.query('BEGIN')
            await holder.query('SELECT 1 FROM sessions WHERE session_key = $1 FOR UPDATE', [
              a.session.session_key,
            ])
            const first = upload({ sessions: [], events: [contested] })
            await waiting(1)
            // Batch B sends the same key under session B: its COPY waits on A's transaction.
            const second = upload({
              sessions: [],
              events: [{ ...contested, session_key: b.session.session_key }, other],
            })
            await waiting(2)
            await holder.query('COMMIT')
            await holder.end()
            const [r1, r2] = await Promise.all([first, second])
            expect(r1).toMatchObject({ status: 200, body: { accepted: 1, duplicates: 0 } })
            expect(r2).toMatchObject({
              status: 200,
              body: { accepted: 1, duplicates: 1, rejected: [] },
            })
          } finally {
            await db.end()
          }
          const sb = await get(`/api/v1/sessions/${b.session.session_key}`)
          expect(sb.body).toMatchObject({ event_count: 1 })
          const events = await get(`/api/v1/sessions/${b.session.session_key}/events`)
          expect(items<{ text: string }>(events).map((e) => e.text)).toEqual(['second'])
        },
      )

      it('reports a repeated batch as duplicates and changes nothing', async () => {
        const { session, event } = fixtureSession()
        const batch = {
          sessions: [session],
          events: [0, 1, 2].map((i) => event({ native_key: `l:${i}`, seq: i, text: `line ${i}` })),
        }
        expect((await upload(batch)).body).toEqual({ accepted: 4, duplicates: 0, rejected: [] })
        const before = await get(`/api/v1/sessions/${session.session_key}`)
        expect((await upload(batch)).body).toEqual({ accepted: 0, duplicates: 4, rejected: [] })
        const after = await get(`/api/v1/sessions/${session.session_key}`)
        expect(after.body).toEqual(before.body)
        expect(after.body).toMatchObject({ event_count: 3 })
      })

      it('merges session records sharing a key: earliest start, latest end, non-null wins', async () => {
        const { session } = fixtureSession({ title: null, model: null })
        await upload({ sessions: [session] })
        const r = await upload({
          sessions: [
            {
              ...session,
              started_at: '2026-04-15T17:00:00.000Z',
              ended_at: null,
              title: 'Fix flaky test',
              cwd: null,
              agent_versions: ['0.119.0'],
            },
          ],
        })
        expect(r.body).toMatchObject({ accepted: 1, duplicates: 0 })
        const s = await get(`/api/v1/sessions/${session.session_key}`)
        expect(s.body).toMatchObject({
          started_at: '2026-04-15T17:00:00.000Z',
          ended_at: '2026-04-15T18:02:00.000Z',
          title: 'Fix flaky test',
          cwd: '/home/dev/widgets',
          repo: 'widgets',
          model: null,
          agent_versions: ['0.119.0'],
        })
      })

      it('replaces an event with a higher rev and ignores a lower one', async () => {
        const { session, event } = fixtureSession({}, 'gemini-cli')
        const v = (rev: number, text: string, output: number) =>
          event({
            native_key: 'm:abc',
            kind: 'assistant_message',
            text,
            rev,
            usage: {
              input_tokens: 5,
              output_tokens: output,
              cache_read: 0,
              cache_write: 0,
              reasoning: 0,
            },
          })
        expect((await upload({ sessions: [session], events: [v(1, 'draft', 10)] })).body).toEqual({
          accepted: 2,
          duplicates: 0,
          rejected: [],
        })
        expect((await upload({ events: [v(2, 'final answer', 20)] })).body).toEqual({
          accepted: 1,
          duplicates: 0,
          rejected: [],
        })
        expect((await upload({ events: [v(1, 'draft', 10)] })).body).toMatchObject({
          accepted: 0,
          duplicates: 1,
        })
        const events = await get(`/api/v1/sessions/${session.session_key}/events`)
        expect(events.body.items).toEqual([
          expect.objectContaining({
            text: 'final answer',
            rev: 2,
            usage: expect.objectContaining({ output: 20 }),
          }),
        ])
        const s = await get(`/api/v1/sessions/${session.session_key}`)
        expect(s.body).toMatchObject({ event_count: 1, tokens: { input: 5, output: 20 } })
      })

      it('returns tool input and output of any JSON type, plain strings included', async () => {
        const { session, event } = fixtureSession({}, 'claude-code')
        const call = event({
          native_key: 't:1',
          kind: 'tool_call',
          tool: { name: 'Bash', call_id: 'c1', input: { command: 'ls' } },
        })
        const result = event({
          native_key: 't:2',
          kind: 'tool_result',
          tool: { name: 'Bash', call_id: 'c1', output: 'ok', is_error: false },
        })
        const numeric = event({
          native_key: 't:3',
          kind: 'tool_result',
          tool: { name: 'Calc', output: 42 },
        })
        expect(
          (await upload({ sessions: [session], events: [call, result, numeric] })).body,
        ).toMatchObject({
          rejected: [],
        })
        const events = await get(`/api/v1/sessions/${session.session_key}/events`)
        expect(events.status).toBe(200)
        expect(items<{ tool: unknown }>(events).map((e) => e.tool)).toEqual([
          { name: 'Bash', call_id: 'c1', input: { command: 'ls' } },
          { name: 'Bash', call_id: 'c1', output: 'ok', is_error: false },
          { name: 'Calc', output: 42 },
        ])
      })

      it('stores text and tool output containing NUL (which PostgreSQL cannot hold) as U+FFFD', async () => {
        const { session, event } = fixtureSession({}, 'codex')
        const e = event({
          native_key: 'nul:1',
          kind: 'tool_result',
          text: 'before\u0000after',
          tool: { name: 'Bash', output: { stdout: 'a\u0000b' } },
        })
        expect((await upload({ sessions: [session], events: [e] })).body).toMatchObject({
          accepted: 2,
          rejected: [],
        })
        const events = await get(`/api/v1/sessions/${session.session_key}/events`)
        expect(items<{ text: string; tool: { output: unknown } }>(events)).toEqual([
          expect.objectContaining({
            text: 'before\uFFFDafter',
            tool: expect.objectContaining({ output: { stdout: 'a\uFFFDb' } }),
          }),
        ])
      })

      it('stores lone surrogates and NUL in keys as U+FFFD instead of failing the batch', async () => {
        const { session, event } = fixtureSession({ agent_versions: ['1.0\udc00'] }, 'claude-code')
        const cut = 'output cut in an emoji \ud83d'
        const e = event({
          native_key: 'surrogate:1',
          kind: 'tool_result',
          text: cut,
          raw: `{"text":"${cut}"}`,
          tool: { name: 'Read', input: { 'a\u0000b': cut }, output: cut },
        })
        const r = await upload({ sessions: [session], events: [e] })
        expect(r).toMatchObject({ status: 200, body: { accepted: 2, rejected: [] } })
        // The replace path (json_to_recordset) as well as the COPY path.
        const again = await upload({ sessions: [], events: [{ ...e, rev: 1, text: `${cut}!` }] })
        expect(again).toMatchObject({ status: 200, body: { accepted: 1 } })
        const s = await get(`/api/v1/sessions/${session.session_key}`)
        expect(s.body.agent_versions).toEqual(['1.0\uFFFD'])
        const events = await get(`/api/v1/sessions/${session.session_key}/events`)
        const fixed = 'output cut in an emoji \uFFFD'
        expect(items<{ text: string; tool: unknown }>(events)).toEqual([
          expect.objectContaining({
            text: `${fixed}!`,
            tool: expect.objectContaining({ input: { 'a\uFFFDb': fixed }, output: fixed }),
          }),
        ])
      })

      it('rejects tool input nested too deep to store, and stores the rest', async () => {
        const { session, event } = fixtureSession()
        let deep: unknown = 'bottom'
        for (let i = 0; i < 1_000; i++) deep = [deep]
        const bad = event({
          native_key: 'deep:1',
          kind: 'tool_call',
          tool: { name: 'x', input: deep },
        })
        const good = event({ native_key: 'deep:2', text: 'fine' })
        const r = await upload({ sessions: [session], events: [bad, good] })
        expect(r).toMatchObject({
          status: 200,
          body: {
            accepted: 2,
            rejected: [
              { kind: 'event', index: 0, error: 'tool.input: nested deeper than 512 levels' },
            ],
          },
        })
      })

      it('rejects a session or event dated in year 0000, which PostgreSQL cannot store', async () => {
        const { session, event } = fixtureSession({ started_at: '0000-06-01T00:00:00Z' })
        const e = { ...event({ native_key: 'y0' }), ts: '0000-06-01T00:00:00Z' }
        const r = await upload({ sessions: [session], events: [e] })
        expect(r).toMatchObject({
          status: 200,
          body: {
            accepted: 0,
            rejected: [
              { kind: 'session', index: 0, error: expect.stringMatching(/^started_at: year 0000/) },
              { kind: 'event', index: 0, error: expect.stringMatching(/^ts: year 0000/) },
            ],
          },
        })
      })

      it('keeps the repo a client named when a later record of the session has none', async () => {
        const { session } = fixtureSession({ cwd: '/srv/app' })
        const named = { ...session, repo: 'acme/app' }
        expect((await upload({ sessions: [named], events: [] })).body).toMatchObject({
          accepted: 1,
        })
        const r = await upload({ sessions: [session], events: [] })
        expect(r.body).toEqual({ accepted: 0, duplicates: 1, rejected: [] })
        const s = await get(`/api/v1/sessions/${session.session_key}`)
        expect(s.body.repo).toBe('acme/app')
        // Without any named repo, the last segment of cwd.
        const plain = fixtureSession({ cwd: 'C:\\work\\widgets\\' }).session
        await upload({ sessions: [plain], events: [] })
        expect((await get(`/api/v1/sessions/${plain.session_key}`)).body.repo).toBe('widgets')
      })

      it('folds a tombstone without rev onto the version before it in the same batch', async () => {
        const { session, event } = fixtureSession({}, 'gemini-cli')
        const v = (rev: number) => event({ native_key: 'm:9', text: `v${rev}`, rev })
        await upload({ sessions: [session], events: [v(5)] })
        const drop = { ...event({ native_key: 'm:9' }), tombstone: true }
        const r = await upload({ sessions: [], events: [v(6), drop] })
        expect(r.body).toEqual({ accepted: 2, duplicates: 0, rejected: [] })
        const stored = await get(
          `/api/v1/sessions/${session.session_key}/events?include_removed=true`,
        )
        expect(items(stored)).toEqual([
          expect.objectContaining({ text: 'v6', rev: 6, tombstone: true }),
        ])
        // A later re-send of rev 6 must not bring the removed event back.
        expect((await upload({ sessions: [], events: [v(6)] })).body).toMatchObject({
          accepted: 0,
          duplicates: 1,
        })
        const s = await get(`/api/v1/sessions/${session.session_key}`)
        expect(s.body.event_count).toBe(0)
      })

      it('keeps the highest rev when one batch carries several versions', async () => {
        const { session, event } = fixtureSession({}, 'opencode')
        const v = (rev: number) => event({ native_key: 'p:1', text: `rev ${rev}`, rev })
        const r = await upload({ sessions: [session], events: [v(3), v(5), v(4)] })
        expect(r.body).toEqual({ accepted: 2, duplicates: 2, rejected: [] })
        const events = await get(`/api/v1/sessions/${session.session_key}/events`)
        expect(items<{ text: string }>(events).map((e) => e.text)).toEqual(['rev 5'])
      })

      it('marks a tombstoned event removed: out of lists, counts and search', async () => {
        const word = `zebracorn${randomUUID().slice(0, 8)}`
        const { session, event } = fixtureSession({}, 'gemini-cli')
        const keep = event({ native_key: 'm:1', seq: 0, text: 'kept message', rev: 1 })
        const gone = event({
          native_key: 'm:2',
          seq: 1,
          text: `rewound ${word}`,
          rev: 1,
          usage: { input_tokens: 7, output_tokens: 3, cache_read: 0, cache_write: 0, reasoning: 0 },
        })
        await upload({ sessions: [session], events: [keep, gone] })
        expect((await get(`/api/v1/search?q=${word}`)).body.items).toHaveLength(1)
        const tomb = event({ native_key: 'm:2', seq: 1, kind: 'meta', tombstone: true, rev: 2 })
        expect((await upload({ events: [tomb] })).body).toMatchObject({ accepted: 1 })
        expect((await upload({ events: [tomb] })).body).toMatchObject({
          accepted: 0,
          duplicates: 1,
        })
        const base = `/api/v1/sessions/${session.session_key}`
        expect(items<{ text: string }>(await get(`${base}/events`)).map((e) => e.text)).toEqual([
          'kept message',
        ])
        const all = await get(`${base}/events?include_removed=true`)
        expect(all.body.items[1]).toMatchObject({
          tombstone: true,
          rev: 2,
          text: `rewound ${word}`,
        })
        expect((await get(base)).body).toMatchObject({
          event_count: 1,
          tokens: { input: 0, output: 0 },
        })
        expect((await get(`/api/v1/search?q=${word}`)).body.items).toEqual([])
      })

      it('accepts events before their session record and fills the session in later', async () => {
        const { session, event } = fixtureSession()
        await upload({ events: [event({ native_key: 'l:0', text: 'early' })] })
        const stub = await get(`/api/v1/sessions/${session.session_key}`)
        expect(stub.body).toMatchObject({ agent: null, event_count: 1 })
        await upload({ sessions: [session] })
        expect((await get(`/api/v1/sessions/${session.session_key}`)).body).toMatchObject({
          id: stub.body.id,
          agent: 'codex',
          event_count: 1,
          started_at: session.started_at,
        })
      })

      it.each([
        ['an array', [], 'body: must be a JSON object {sessions, events}'],
        ['sessions not an array', { sessions: 'x' }, 'sessions: must be an array'],
        ['an unknown field', { sessions: [], extra: 1 }, 'body: unknown field(s) extra'],
      ])('answers 400 for a body that is %s', async (_name, body, error) => {
        expect(await upload(body)).toMatchObject({
          status: 400,
          body: { code: 'invalid_request', error },
        })
      })

      it('answers 400 for invalid JSON', async () => {
        const res = await fetch(`${t.url}/api/v1/sessions/batch`, {
          method: 'POST',
          headers: { authorization: `Bearer ${write}`, 'content-type': 'application/json' },
          body: '{"sessions": [',
        })
        expect(res.status).toBe(400)
        expect(await res.json()).toMatchObject({ error: 'body: is not valid JSON' })
      })
    })

    describe('queries', () => {
      it('lists team-wide, filters by owner, agent, cwd, repo and branch', async () => {
        const mine = fixtureSession({ cwd: '/srv/filters/app', git_branch: 'feat/x' })
        const theirs = fixtureSession({ cwd: '/srv/filters/app', repo: 'acme/app' }, 'copilot')
        await upload({ sessions: [mine.session] })
        await upload({ sessions: [theirs.session] }, otherWrite)
        const keys = async (query: string) =>
          items<{ session_key: string }>(
            await get(`/api/v1/sessions?cwd=/srv/filters/&${query}`),
          ).map((s) => s.session_key)
        expect(await keys('')).toEqual(
          expect.arrayContaining([mine.session.session_key, theirs.session.session_key]),
        )
        expect(await keys(`owner=${otherId}`)).toEqual([theirs.session.session_key])
        expect(await keys('agent=copilot')).toEqual([theirs.session.session_key])
        expect(await keys('repo=app')).toEqual([
          theirs.session.session_key,
          mine.session.session_key,
        ])
        expect(await keys('repo=acme/app')).toEqual([theirs.session.session_key])
        expect(await keys('git_branch=feat/x')).toEqual([mine.session.session_key])
        expect(await keys('since=2027-01-01')).toEqual([])
        expect(await keys('until=2026-04-01')).toEqual([])
        const inRange = await keys('since=2026-04-15&until=2026-04-16T00:00:00Z')
        expect(inRange).toHaveLength(2)
        expect(inRange).toEqual(
          expect.arrayContaining([mine.session.session_key, theirs.session.session_key]),
        )
        const theirsRead = await get(`/api/v1/sessions/${theirs.session.session_key}`)
        expect(theirsRead.body.owner).toEqual({ kind: 'service_account', id: otherId })
      })

      it('rejects bad filters with 400 naming the parameter', async () => {
        expect(await get('/api/v1/sessions?agent=vim')).toMatchObject({
          status: 400,
          body: { error: expect.stringMatching(/^agent: /) },
        })
        expect(await get('/api/v1/sessions?limit=501')).toMatchObject({ status: 400 })
        expect(await get('/api/v1/sessions?cursor=garbage')).toMatchObject({ status: 400 })
      })

      it.each([
        [
          'a list cursor with an id past bigint',
          '/api/v1/sessions',
          ['2026-01-01T00:00:00Z', '99999999999999999999'],
        ],
        ['a list cursor in year 0000', '/api/v1/sessions', ['0000-01-01T00:00:00Z', '1']],
        ['a search cursor with a rank past real', '/api/v1/search?q=x', [1e300, '1']],
      ])('answers 400, not 500, for %s', async (_, path, parts) => {
        const cursor = Buffer.from(JSON.stringify(parts)).toString('base64url')
        const sep = path.includes('?') ? '&' : '?'
        expect(await get(`${path}${sep}cursor=${cursor}`)).toMatchObject({
          status: 400,
          body: { error: 'cursor: is not a cursor this server returned' },
        })
      })

      it('answers 400 naming since for a date in year 0000', async () => {
        expect(await get('/api/v1/sessions?since=0000-01-01')).toMatchObject({
          status: 400,
          body: { error: expect.stringMatching(/^since: /) },
        })
      })

      it('paginates sessions with a stable cursor while new sessions arrive', async () => {
        const cwd = `/srv/paging-${randomUUID()}`
        const made = Array.from({ length: 7 }, (_, i) =>
          fixtureSession({ cwd, started_at: new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString() }),
        )
        await upload({ sessions: made.map((m) => m.session) })
        const seen: string[] = []
        let cursor: string | null = null
        let pages = 0
        do {
          const page = await get(
            `/api/v1/sessions?cwd=${cwd}&limit=3${cursor ? `&cursor=${cursor}` : ''}`,
          )
          seen.push(...items<{ session_key: string }>(page).map((s) => s.session_key))
          cursor = page.body.next_cursor as string | null
          if (pages++ === 0) {
            // A newer session and an older-looking one land between page fetches.
            await upload({
              sessions: [
                fixtureSession({ cwd, started_at: '2026-06-01T00:00:00.000Z' }).session,
                fixtureSession({ cwd, started_at: '2026-01-01T00:03:00.000Z' }).session,
              ],
            })
          }
        } while (cursor)
        const expected = made.map((m) => m.session.session_key).reverse()
        expect(seen.filter((k) => expected.includes(k))).toEqual(expected)
        expect(new Set(seen).size).toBe(seen.length)
      })

      it('reads a session by id or key, and its events in order across pages', async () => {
        const { session, event } = fixtureSession()
        const events = Array.from({ length: 120 }, (_, i) =>
          event({ native_key: `l:${i}`, seq: i, text: `line ${i}` }),
        ).reverse()
        await upload({ sessions: [session], events })
        const byKey = await get(`/api/v1/sessions/${session.session_key}`)
        expect((await get(`/api/v1/sessions/${byKey.body.id}`)).body).toEqual(byKey.body)
        const seqs: number[] = []
        let cursor: string | null = null
        do {
          const page = await get(
            `/api/v1/sessions/${byKey.body.id}/events?limit=50${cursor ? `&cursor=${cursor}` : ''}`,
          )
          expect(page.body.items[0]).toHaveProperty('event_key')
          seqs.push(...items<{ seq: number }>(page).map((e) => e.seq))
          cursor = page.body.next_cursor as string | null
        } while (cursor)
        expect(seqs).toEqual(Array.from({ length: 120 }, (_, i) => i))
        expect((await get('/api/v1/sessions/123456789')).status).toBe(404)
        expect((await get('/api/v1/sessions/not-an-id')).status).toBe(400)
      })

      it('asks which owner when two owners uploaded the same session key', async () => {
        const { session } = fixtureSession()
        await upload({ sessions: [session] })
        await upload({ sessions: [session] }, otherWrite)
        const r = await get(`/api/v1/sessions/${session.session_key}`)
        expect(r).toMatchObject({ status: 409, body: { code: 'ambiguous_session' } })
        expect(r.body.details).toHaveLength(2)
        const one = await get(`/api/v1/sessions/${session.session_key}?owner=${otherId}`)
        expect(one.body.owner.id).toBe(otherId)
      })

      it('finds a phrase from a fixture session and returns its highlighted snippet', async () => {
        const batch = migrationFixture()
        expect((await upload(batch)).body).toMatchObject({ accepted: 5, rejected: [] })
        const r = await get(
          `/api/v1/search?q=${encodeURIComponent('"broke the migration"')}&repo=octo-repo`,
        )
        expect(r.status).toBe(200)
        expect(r.body.items).toHaveLength(1)
        const [hit] = r.body.items
        expect(hit.snippet).toContain('<mark>broke</mark>')
        expect(hit.snippet).toContain('<mark>migration</mark>')
        expect(hit.event).toMatchObject({
          kind: 'user_message',
          event_key: batch.events[0].event_key,
        })
        expect(hit.session).toMatchObject({
          session_key: batch.sessions[0].session_key,
          title: 'Repair the users table migration',
        })
        // Markup in agent output is escaped; only the highlights are tags.
        const tx = await get(`/api/v1/search?q=splitting&git_branch=fix/users-migration`)
        expect(tx.body.items[0].snippet).toContain('<mark>Splitting</mark>')
        expect(tx.body.items[0].snippet).not.toMatch(/<(?!\/?mark>)/)
        expect(
          (await get('/api/v1/search?q=migration&agent=codex&repo=octo-repo')).body.items,
        ).toEqual([])
        expect((await get('/api/v1/search?q=')).status).toBe(400)
      })

      it('pages search results by rank without repeats', async () => {
        const word = `quokka${randomUUID().slice(0, 8)}`
        const { session, event } = fixtureSession()
        await upload({
          sessions: [session],
          events: Array.from({ length: 7 }, (_, i) =>
            event({ native_key: `l:${i}`, seq: i, text: `${`${word} `.repeat(i + 1)}tail` }),
          ),
        })
        const ranks: number[] = []
        const keys = new Set<string>()
        let cursor: string | null = null
        do {
          const page = await get(
            `/api/v1/search?q=${word}&limit=3${cursor ? `&cursor=${cursor}` : ''}`,
          )
          for (const h of page.body.items) {
            ranks.push(h.rank)
            keys.add(h.event.event_key)
          }
          cursor = page.body.next_cursor as string | null
        } while (cursor)
        expect(keys.size).toBe(7)
        expect([...ranks].sort((a, b) => b - a)).toEqual(ranks)
      })

      it('pages through matches of equal rank without repeats or gaps', async () => {
        const word = `wombat${randomUUID().slice(0, 8)}`
        const { session, event } = fixtureSession()
        await upload({
          sessions: [session],
          events: Array.from({ length: 5 }, (_, i) =>
            event({ native_key: `same:${i}`, seq: i, text: `${word} same text` }),
          ),
        })
        const keys: string[] = []
        const ranks = new Set<number>()
        let cursor: string | null = null
        do {
          const page = await get(
            `/api/v1/search?q=${word}&limit=2${cursor ? `&cursor=${cursor}` : ''}`,
          )
          for (const h of page.body.items) {
            keys.push(h.event.event_key)
            ranks.add(h.rank)
          }
          cursor = page.body.next_cursor as string | null
        } while (cursor)
        expect(ranks.size).toBe(1)
        expect(keys).toHaveLength(5)
        expect(new Set(keys).size).toBe(5)
      })

      it('counts sessions, events and tokens by agent, owner and day', async () => {
        const cwd = `/srv/stats-${randomUUID()}`
        const a = fixtureSession({ cwd, started_at: '2026-03-01T10:00:00.000Z' }, 'claude-code')
        const b = fixtureSession({ cwd, started_at: '2026-03-02T23:59:00.000Z' }, 'codex')
        const usage = (i: number, o: number) => ({
          input_tokens: i,
          output_tokens: o,
          cache_read: 1,
          cache_write: 2,
          reasoning: 3,
        })
        await upload({
          sessions: [a.session, b.session],
          events: [
            a.event({ native_key: 'u:1', seq: 0, text: 'hi' }),
            a.event({ native_key: 'u:2', seq: 1, kind: 'usage', usage: usage(100, 10) }),
            b.event({ native_key: 'l:1', seq: 0, kind: 'usage', usage: usage(50, 5) }),
          ],
        })
        // The same usage record sent again must not count twice.
        await upload({
          events: [b.event({ native_key: 'l:1', seq: 0, kind: 'usage', usage: usage(50, 5) })],
        })
        await upload({ sessions: [fixtureSession({ cwd }, 'codex').session] }, otherWrite)
        const r = await get(`/api/v1/stats?cwd=${cwd}&owner=${ownerId}`)
        expect(r.status).toBe(200)
        const tokens = (i: number, o: number, n: number) => ({
          input: i,
          output: o,
          cache_read: n,
          cache_write: 2 * n,
          reasoning: 3 * n,
        })
        expect(r.body).toEqual({
          totals: { sessions: 2, events: 3, tokens: tokens(150, 15, 2) },
          by_agent: [
            { agent: 'claude-code', sessions: 1, events: 2, tokens: tokens(100, 10, 1) },
            { agent: 'codex', sessions: 1, events: 1, tokens: tokens(50, 5, 1) },
          ],
          by_owner: [
            {
              owner: { kind: 'service_account', id: ownerId },
              sessions: 2,
              events: 3,
              tokens: tokens(150, 15, 2),
            },
          ],
          by_day: [
            { day: '2026-03-01', sessions: 1, events: 2, tokens: tokens(100, 10, 1) },
            { day: '2026-03-02', sessions: 1, events: 1, tokens: tokens(50, 5, 1) },
          ],
        })
        const all = await get(`/api/v1/stats?cwd=${cwd}`)
        expect(all.body.totals.sessions).toBe(3)
        expect(all.body.by_owner).toHaveLength(2)
      })
    })
  })
})

describe('sessions batch limits', () => {
  let t: TestServer
  let write: string
  beforeAll(async () => {
    t = await startTestServer({
      env: { HIVEMIND_SESSIONS_MAX_BATCH_ITEMS: '3', HIVEMIND_SESSIONS_MAX_BODY_BYTES: '4096' },
    })
    const sa = await t.call('POST', '/api/v1/service-accounts', {
      admin: true,
      body: { name: 'limits', scopes: ['write'] },
    })
    const tok = await t.call('POST', `/api/v1/service-accounts/${sa.body.id}/tokens`, {
      admin: true,
      body: {},
    })
    write = tok.body.token as string
  })
  afterAll(() => t?.close())

  it('answers 413 naming the item limit', async () => {
    const { session, event } = fixtureSession()
    const r = await t.call('POST', '/api/v1/sessions/batch', {
      bearer: write,
      body: { sessions: [session], events: [0, 1, 2].map((i) => event({ native_key: `l:${i}` })) },
    })
    expect(r).toMatchObject({
      status: 413,
      body: {
        code: 'payload_too_large',
        error: expect.stringContaining('the limit is 3 (HIVEMIND_SESSIONS_MAX_BATCH_ITEMS)'),
      },
    })
  })

  it('answers 413 naming the byte limit', async () => {
    const { event } = fixtureSession()
    const r = await t.call('POST', '/api/v1/sessions/batch', {
      bearer: write,
      body: { events: [event({ native_key: 'l:0', text: 'x'.repeat(5000) })] },
    })
    expect(r).toMatchObject({
      status: 413,
      body: {
        code: 'payload_too_large',
        error: expect.stringContaining(
          'the limit is 4096 bytes (HIVEMIND_SESSIONS_MAX_BODY_BYTES)',
        ),
      },
    })
  })

  it('accepts a batch within both limits', async () => {
    const { session, event } = fixtureSession()
    const r = await t.call('POST', '/api/v1/sessions/batch', {
      bearer: write,
      body: { sessions: [session], events: [event({ native_key: 'l:0' })] },
    })
    expect(r).toMatchObject({ status: 200, body: { accepted: 2 } })
  })

  it('does not read the body of an unauthenticated upload', async () => {
    // Over the byte limit: a server that read the body first would answer 413.
    const r = await t.call('POST', '/api/v1/sessions/batch', {
      body: { sessions: [], padding: 'x'.repeat(10_000) },
    })
    expect(r.status).toBe(401)
  })
})
