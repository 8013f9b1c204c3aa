import { HttpResponse } from 'msw'
import { describe, expect, it } from 'vitest'
import {
  apiError,
  calls,
  callsTo,
  defaultHandlers,
  route,
  TEST_ENDPOINT,
  useMswServer,
} from '../../test/msw.js'
import {
  BatchUploadResponse,
  EventList,
  SearchResponse,
  SessionList,
  SessionRecord,
  StatsResponse,
  eventKey,
  sessionKey,
  type NormalizedEvent,
  type SessionUpload,
} from '../schemas/index.js'
import { HiveMindClient } from './client.js'

const server = useMswServer(...defaultHandlers)
const TOKEN = 'hmsa_' + 'a'.repeat(43)

function client(): HiveMindClient {
  return new HiveMindClient({
    endpoint: TEST_ENDPOINT,
    auth: { token: TOKEN },
    retryBaseDelayMs: 1,
    retryMaxDelayMs: 5,
    env: {},
  })
}

const SID = '019d924b-53f5-78f1-a0d4-69aa13191f54'
const KEY = sessionKey('codex', SID)
const session: SessionUpload = {
  agent: 'codex',
  source_session_id: SID,
  session_key: KEY,
  cwd: '/home/a/repo',
  git_branch: 'main',
  model: null,
  title: null,
  started_at: '2026-04-15T17:58:23.701Z',
  ended_at: null,
  source_paths: [],
}
const event: NormalizedEvent = {
  event_key: eventKey('codex', SID, 'main', 'l:0'),
  session_key: KEY,
  thread: 'main',
  seq: 0,
  ts: '2026-04-15T17:58:24.000Z',
  kind: 'user_message',
  text: 'hello',
}
const zero = { input: 0, output: 0, cache_read: 0, cache_write: 0, reasoning: 0 }
const record = SessionRecord.parse({
  id: '1',
  session_key: KEY,
  owner: { kind: 'service_account', id: 'sa_1' },
  agent: 'codex',
  source_session_id: SID,
  parent_session_key: null,
  parent_source_session_id: null,
  relation: null,
  cwd: '/home/a/repo',
  repo: 'repo',
  git_branch: 'main',
  model: null,
  title: null,
  host: null,
  agent_versions: [],
  started_at: '2026-04-15T17:58:23.701Z',
  ended_at: null,
  event_count: 1,
  tokens: zero,
  created_at: '2026-04-15T18:00:00.000Z',
  updated_at: '2026-04-15T18:00:00.000Z',
})
const eventRecord = {
  ...event,
  native_type: null,
  role: null,
  model: null,
  tool: null,
  usage: null,
  rev: null,
  tombstone: false,
}

describe(`${HiveMindClient.name} sessions API`, () => {
  it('uploadBatch posts JSON with the bearer and parses the per-item answer', async () => {
    const answer = BatchUploadResponse.parse({
      accepted: 1,
      duplicates: 0,
      rejected: [{ kind: 'event', index: 1, event_key: 'x', error: 'ts: Invalid ISO datetime' }],
    })
    server.use(route('post', '/api/v1/sessions/batch', () => HttpResponse.json(answer)))
    const res = await client().uploadBatch({ sessions: [session], events: [event] })
    expect(res).toEqual(answer)
    const [call] = callsTo('/api/v1/sessions/batch')
    expect(call?.headers.authorization).toBe(`Bearer ${TOKEN}`)
    expect(call?.headers['content-type']).toContain('application/json')
    expect(JSON.parse(call.body)).toEqual({ sessions: [session], events: [event] })
  })

  it('uploadBatch fills in a missing array', async () => {
    server.use(
      route('post', '/api/v1/sessions/batch', () =>
        HttpResponse.json({ accepted: 1, duplicates: 0, rejected: [] }),
      ),
    )
    await client().uploadBatch({ events: [event] })
    expect(JSON.parse(callsTo('/api/v1/sessions/batch')[0].body)).toEqual({
      sessions: [],
      events: [event],
    })
  })

  it('uploadBatch retries a 503 (the batch is idempotent) and succeeds', async () => {
    server.use(
      route('post', '/api/v1/sessions/batch', ({ n }) =>
        n === 1
          ? apiError(503, { error: 'database down', code: 'unavailable' })
          : HttpResponse.json({ accepted: 0, duplicates: 2, rejected: [] }),
      ),
    )
    await expect(client().uploadBatch({ sessions: [session], events: [event] })).resolves.toEqual({
      accepted: 0,
      duplicates: 2,
      rejected: [],
    })
    expect(callsTo('/api/v1/sessions/batch')).toHaveLength(2)
  })

  it.each([
    [413, 'payload_too_large', 'batch has 9 items; the limit is 5'],
    [403, 'insufficient_scope', 'this credential lacks the write scope'],
    [400, 'invalid_request', 'sessions: must be an array'],
  ])('uploadBatch maps %i %s to HiveMindApiError without retrying', async (status, code, error) => {
    server.use(route('post', '/api/v1/sessions/batch', () => apiError(status, { error, code })))
    await expect(client().uploadBatch({ events: [event] })).rejects.toMatchObject({
      code: 'ERR_API',
      status,
      apiCode: code,
      message: expect.stringContaining(error),
    })
    expect(callsTo('/api/v1/sessions/batch')).toHaveLength(1)
  })

  it('listSessions sends filters and pagination as query parameters', async () => {
    const page = SessionList.parse({ items: [record], next_cursor: 'abc' })
    let url: URL | undefined
    server.use(
      route('get', '/api/v1/sessions', ({ request }) => {
        url = new URL(request.url)
        return HttpResponse.json(page)
      }),
    )
    const res = await client().listSessions({
      agent: 'codex',
      owner: 'sa_1',
      since: '2026-01-01',
      limit: 100,
      cursor: 'xyz',
      git_branch: undefined,
    })
    expect(res).toEqual(page)
    expect(Object.fromEntries(url!.searchParams)).toEqual({
      agent: 'codex',
      owner: 'sa_1',
      since: '2026-01-01',
      limit: '100',
      cursor: 'xyz',
    })
  })

  it('getSession and listEvents address the session by (encoded) id', async () => {
    const events = EventList.parse({ items: [eventRecord], next_cursor: null })
    server.use(
      route('get', `/api/v1/sessions/${KEY}`, () => HttpResponse.json(record)),
      route('get', `/api/v1/sessions/${KEY}/events`, () => HttpResponse.json(events)),
    )
    await expect(client().getSession(KEY)).resolves.toEqual(record)
    await expect(client().listEvents(KEY, { thread: 'main', limit: 10 })).resolves.toEqual(events)
    expect(calls.map((c) => c.path)).toEqual([
      `/api/v1/sessions/${KEY}`,
      `/api/v1/sessions/${KEY}/events`,
    ])
  })

  it('getSession surfaces a 404 as HiveMindApiError', async () => {
    server.use(
      route('get', '/api/v1/sessions/999', () =>
        apiError(404, { error: 'session 999 not found', code: 'not_found' }),
      ),
    )
    await expect(client().getSession('999')).rejects.toMatchObject({
      code: 'ERR_API',
      status: 404,
      apiCode: 'not_found',
    })
  })

  it('search sends q and parses hits with snippets', async () => {
    const hits = SearchResponse.parse({
      items: [{ rank: 0.1, snippet: '<mark>hello</mark>', session: record, event: eventRecord }],
      next_cursor: null,
    })
    let q: string | null = null
    server.use(
      route('get', '/api/v1/search', ({ request }) => {
        q = new URL(request.url).searchParams.get('q')
        return HttpResponse.json(hits)
      }),
    )
    await expect(client().search({ q: '"hello world"' })).resolves.toEqual(hits)
    expect(q).toBe('"hello world"')
  })

  it('stats parses the buckets', async () => {
    const stats = StatsResponse.parse({
      totals: { sessions: 1, events: 1, tokens: zero },
      by_agent: [{ agent: 'codex', sessions: 1, events: 1, tokens: zero }],
      by_owner: [{ owner: { kind: 'user', id: 'usr_1' }, sessions: 1, events: 1, tokens: zero }],
      by_day: [{ day: '2026-04-15', sessions: 1, events: 1, tokens: zero }],
    })
    server.use(route('get', '/api/v1/stats', () => HttpResponse.json(stats)))
    await expect(client().stats({ agent: 'codex' })).resolves.toEqual(stats)
  })

  it('rejects a malformed answer with ResponseValidationError', async () => {
    server.use(route('get', '/api/v1/stats', () => HttpResponse.json({ totals: 3 })))
    await expect(client().stats()).rejects.toMatchObject({ code: 'ERR_RESPONSE_VALIDATION' })
  })
})
