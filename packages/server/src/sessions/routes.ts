import Router from '@koa/router'
import { z } from 'zod'
import {
  EventListQuery,
  SearchQuery,
  SessionListQuery,
  StatsQuery,
  type EventList,
  type EventRecord,
  type SearchResponse,
  type SessionFilters,
  type SessionList,
  type SessionRecord,
  type StatsResponse,
  type TokenTotals,
} from '@hivemind/sdk/schemas'
import { principalOf } from '../auth/authenticate.js'
import { ownerOf } from '../auth/principal.js'
import { requireScope } from '../auth/require.js'
import type { Db } from '../db/types.js'
import type { AppDeps } from '../deps.js'
import { ApiError } from '../errors.js'
import { decodeCursor, pageOf } from '../http/pagination.js'
import { iso, isoOrNull } from '../http/time.js'
import { parseInput } from '../http/validate.js'
import { readJsonBody } from './body.js'
import { ingestBatch } from './ingest.js'
import { newestMatches } from './search-candidates.js'
import { Where } from './where.js'

/** Default page size of every list here (DESIGN.md "Query"). */
const DEFAULT_LIMIT = 50

// Sentinels around matches in ts_headline output: the text is HTML-escaped afterwards and
// they become <mark>, so agent output containing markup can never inject any. The text's
// own U+0001 and U+0002 are dropped before ts_headline, so they cannot fake a highlight.
const MARK_START = '\u0001'
const MARK_STOP = '\u0002'
const HEADLINE_OPTIONS = `StartSel=${MARK_START}, StopSel=${MARK_STOP}, MaxWords=35, MinWords=12, MaxFragments=2, FragmentDelimiter=" … "`

type Num = number | string
interface SessionRow {
  id: Num
  session_key: string
  owner_kind: SessionRecord['owner']['kind']
  owner_id: string
  agent: SessionRecord['agent']
  source_session_id: string | null
  parent_session_key: string | null
  parent_source_session_id: string | null
  relation: SessionRecord['relation']
  cwd: string | null
  repo: string | null
  git_branch: string | null
  model: string | null
  title: string | null
  host: string | null
  agent_versions: string[]
  started_at: Date | string | null
  ended_at: Date | string | null
  sort_at: Date | string
  event_count: Num
  input_tokens: Num
  output_tokens: Num
  cache_read_tokens: Num
  cache_write_tokens: Num
  reasoning_tokens: Num
  created_at: Date | string
  updated_at: Date | string
}

interface EventRow {
  e_id: Num
  event_key: string
  e_session_key: string
  thread: string
  seq: Num
  ts: Date | string | null
  kind: EventRecord['kind']
  native_type: string | null
  role: string | null
  e_model: string | null
  text: string | null
  tool_name: string | null
  tool_call_id: string | null
  tool_input: unknown
  tool_output: unknown
  tool_is_error: boolean | null
  e_input_tokens: Num | null
  e_output_tokens: Num | null
  e_cache_read_tokens: Num | null
  e_cache_write_tokens: Num | null
  e_reasoning_tokens: Num | null
  rev: Num | null
  tombstone: boolean
  raw?: string | null
}

const SESSION_COLUMNS = `s.id, s.session_key, s.owner_kind, s.owner_id, s.agent, s.source_session_id,
  s.parent_session_key, s.parent_source_session_id, s.relation, s.cwd, s.repo, s.git_branch,
  s.model, s.title, s.host, s.agent_versions, s.started_at, s.ended_at, s.sort_at, s.event_count,
  s.input_tokens, s.output_tokens, s.cache_read_tokens, s.cache_write_tokens, s.reasoning_tokens,
  s.created_at, s.updated_at`

const EVENT_COLUMNS = `e.id AS e_id, e.event_key, s.session_key AS e_session_key, e.thread, e.seq, e.ts,
  e.kind, e.native_type, e.role, e.model AS e_model, e.text, e.tool_name, e.tool_call_id,
  e.tool_input, e.tool_output, e.tool_is_error, e.input_tokens AS e_input_tokens,
  e.output_tokens AS e_output_tokens, e.cache_read_tokens AS e_cache_read_tokens,
  e.cache_write_tokens AS e_cache_write_tokens, e.reasoning_tokens AS e_reasoning_tokens, e.rev,
  e.tombstone`

function tokens(r: {
  input_tokens: Num
  output_tokens: Num
  cache_read_tokens: Num
  cache_write_tokens: Num
  reasoning_tokens: Num
}): TokenTotals {
  return {
    input: Number(r.input_tokens),
    output: Number(r.output_tokens),
    cache_read: Number(r.cache_read_tokens),
    cache_write: Number(r.cache_write_tokens),
    reasoning: Number(r.reasoning_tokens),
  }
}

function sessionWire(r: SessionRow): SessionRecord {
  return {
    id: String(r.id),
    session_key: r.session_key,
    owner: { kind: r.owner_kind, id: r.owner_id },
    agent: r.agent,
    source_session_id: r.source_session_id,
    parent_session_key: r.parent_session_key,
    parent_source_session_id: r.parent_source_session_id,
    relation: r.relation,
    cwd: r.cwd,
    repo: r.repo,
    git_branch: r.git_branch,
    model: r.model,
    title: r.title,
    host: r.host,
    agent_versions: r.agent_versions,
    started_at: isoOrNull(r.started_at),
    ended_at: isoOrNull(r.ended_at),
    event_count: Number(r.event_count),
    tokens: tokens(r),
    created_at: iso(r.created_at),
    updated_at: iso(r.updated_at),
  }
}

function eventWire(r: EventRow): EventRecord {
  const tool =
    r.tool_name == null
      ? null
      : {
          name: r.tool_name,
          ...(r.tool_call_id == null ? {} : { call_id: r.tool_call_id }),
          ...(r.tool_input == null ? {} : { input: r.tool_input }),
          ...(r.tool_output == null ? {} : { output: r.tool_output }),
          ...(r.tool_is_error == null ? {} : { is_error: r.tool_is_error }),
        }
  return {
    event_key: r.event_key,
    session_key: r.e_session_key,
    thread: r.thread,
    seq: Number(r.seq),
    ts: isoOrNull(r.ts),
    kind: r.kind,
    native_type: r.native_type,
    role: r.role,
    model: r.e_model,
    text: r.text,
    tool,
    usage:
      r.e_input_tokens == null
        ? null
        : tokens({
            input_tokens: r.e_input_tokens,
            output_tokens: r.e_output_tokens ?? 0,
            cache_read_tokens: r.e_cache_read_tokens ?? 0,
            cache_write_tokens: r.e_cache_write_tokens ?? 0,
            reasoning_tokens: r.e_reasoning_tokens ?? 0,
          }),
    rev: r.rev == null ? null : Number(r.rev),
    tombstone: r.tombstone,
    ...(r.raw === undefined ? {} : { raw: r.raw }),
  }
}

const likeEscape = (s: string) => s.replace(/[\\%_]/g, '\\$&')

function timeBound(v: string): string {
  // A bare date means midnight UTC.
  return /^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00Z` : v
}

/** Session filters shared by list, search and stats, on the `s` alias. */
function filterSessions(w: Where, f: z.output<typeof SessionListQuery> | SessionFilters): Where {
  if (f.agent) w.add('s.agent = ?', f.agent)
  if (f.owner) w.add('s.owner_id = ?', f.owner)
  if (f.since) w.add('s.sort_at >= ?::timestamptz', timeBound(f.since))
  if (f.until) w.add('s.sort_at < ?::timestamptz', timeBound(f.until))
  if (f.cwd) w.add("s.cwd LIKE ? ESCAPE '\\'", `${likeEscape(f.cwd)}%`)
  // `octo-repo` also matches `octo-org/octo-repo`.
  if (f.repo) w.add("(s.repo = ? OR s.repo LIKE ? ESCAPE '\\')", f.repo, `%/${likeEscape(f.repo)}`)
  if (f.git_branch) w.add('s.git_branch = ?', f.git_branch)
  return w
}

// Cursors come back from clients: every part is bounded to what its SQL type holds, so a
// forged one is a 400, not a database error. Row ids are bigint; ranks are real (float4).
const RowId = z.string().regex(/^\d{1,18}$/)
const ListCursor = z.tuple([z.iso.datetime().refine((v) => !v.startsWith('0000')), RowId])
const EventCursor = z.tuple([
  z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  z.string(),
  RowId,
])
const SearchCursor = z.tuple([z.number().finite().min(-3.4e38).max(3.4e38), RowId])

async function findSession(db: Db, id: string, owner: string | undefined): Promise<SessionRow> {
  let rows: SessionRow[]
  if (/^\d{1,18}$/.test(id)) {
    ;({ rows } = await db.query<SessionRow>(
      `SELECT ${SESSION_COLUMNS} FROM sessions s WHERE s.id = $1`,
      [id],
    ))
  } else if (/^[0-9a-f]{64}$/.test(id)) {
    ;({ rows } = await db.query<SessionRow>(
      `SELECT ${SESSION_COLUMNS} FROM sessions s
        WHERE s.session_key = $1 AND ($2::text IS NULL OR s.owner_id = $2) ORDER BY s.id LIMIT 20`,
      [id, owner ?? null],
    ))
  } else {
    throw new ApiError(400, 'invalid_request', 'id: must be a session id or a 64-hex session_key')
  }
  if (rows.length === 0) throw new ApiError(404, 'not_found', `session ${id} not found`)
  if (rows.length > 1) {
    // Two owners uploaded the same agent session (a person and a CI job, say).
    throw new ApiError(
      409,
      'ambiguous_session',
      `session_key ${id} exists under ${rows.length} owners: use one of the ids, or add ?owner=`,
      {
        details: rows.map((r) => ({
          id: String(r.id),
          owner: { kind: r.owner_kind, id: r.owner_id },
        })),
      },
    )
  }
  return rows[0]
}

/**
 * The sessions API: `POST /api/v1/sessions/batch` (scope `write`) and the team-wide
 * reads (scope `read`): list, one session, its events, full-text search and stats.
 *
 * @see DESIGN.md "Batch upload" and "Query"
 */
export function sessionRoutes(deps: AppDeps): Router {
  const { db } = deps
  const router = new Router()

  router.post('/api/v1/sessions/batch', requireScope('write'), async (ctx) => {
    const body = await readJsonBody(
      ctx,
      deps.config.sessionsMaxBodyBytes,
      'HIVEMIND_SESSIONS_MAX_BODY_BYTES',
    )
    if (body == null || typeof body !== 'object' || Array.isArray(body)) {
      throw new ApiError(400, 'invalid_request', 'body: must be a JSON object {sessions, events}')
    }
    const { sessions = [], events = [], ...rest } = body as Record<string, unknown>
    const unknown = Object.keys(rest)
    if (unknown.length) {
      throw new ApiError(400, 'invalid_request', `body: unknown field(s) ${unknown.join(', ')}`)
    }
    if (!Array.isArray(sessions))
      throw new ApiError(400, 'invalid_request', 'sessions: must be an array')
    if (!Array.isArray(events))
      throw new ApiError(400, 'invalid_request', 'events: must be an array')
    const max = deps.config.sessionsMaxBatchItems
    if (sessions.length + events.length > max) {
      throw new ApiError(
        413,
        'payload_too_large',
        `batch has ${sessions.length + events.length} items (sessions + events); the limit is ${max} (HIVEMIND_SESSIONS_MAX_BATCH_ITEMS): split it`,
        { details: { limit: max } },
      )
    }
    ctx.body = await ingestBatch(db, ownerOf(principalOf(ctx)!), {
      sessions: sessions as unknown[],
      events: events as unknown[],
    })
  })

  router.get('/api/v1/sessions', requireScope('read'), async (ctx) => {
    const q = parseInput(SessionListQuery.strict(), ctx.query, 'query')
    const limit = q.limit ?? DEFAULT_LIMIT
    const w = filterSessions(new Where(), q)
    if (q.cursor) {
      const [at, id] = decodeCursor(q.cursor, ListCursor)
      w.add('(s.sort_at, s.id) < (?::timestamptz, ?::bigint)', at, id)
    }
    const { rows } = await db.query<SessionRow>(
      `SELECT ${SESSION_COLUMNS} FROM sessions s ${w.sql}
        ORDER BY s.sort_at DESC, s.id DESC LIMIT ${w.param(limit + 1)}`,
      w.params,
    )
    const page = pageOf(rows, limit, (r) => [iso(r.sort_at), String(r.id)])
    const body: SessionList = { items: page.items.map(sessionWire), next_cursor: page.nextCursor }
    ctx.body = body
  })

  router.get('/api/v1/sessions/:id', requireScope('read'), async (ctx) => {
    const owner = parseInput(
      z.object({ owner: z.string().min(1).optional() }).strict(),
      ctx.query,
      'query',
    )
    ctx.body = sessionWire(await findSession(db, ctx.params.id, owner.owner))
  })

  router.get('/api/v1/sessions/:id/events', requireScope('read'), async (ctx) => {
    const q = parseInput(
      EventListQuery.extend({ owner: z.string().min(1).optional() }).strict(),
      ctx.query,
      'query',
    )
    const session = await findSession(db, ctx.params.id, q.owner)
    const limit = q.limit ?? DEFAULT_LIMIT
    const w = new Where().add('e.session_id = ?', session.id)
    if (q.include_removed !== 'true') w.add('NOT e.tombstone')
    if (q.thread) w.add('e.thread = ?', q.thread)
    if (q.kind) w.add('e.kind = ?', q.kind)
    if (q.cursor) {
      const [seq, thread, id] = decodeCursor(q.cursor, EventCursor)
      w.add('(e.seq, e.thread, e.id) > (?::bigint, ?::text, ?::bigint)', seq, thread, id)
    }
    const { rows } = await db.query<EventRow>(
      `SELECT ${EVENT_COLUMNS}${q.include_raw === 'true' ? ', e.raw' : ''}
         FROM events e JOIN sessions s ON s.id = e.session_id ${w.sql}
        ORDER BY e.seq, e.thread, e.id LIMIT ${w.param(limit + 1)}`,
      w.params,
    )
    const page = pageOf(rows, limit, (r) => [Number(r.seq), r.thread, String(r.e_id)])
    const body: EventList = { items: page.items.map(eventWire), next_cursor: page.nextCursor }
    ctx.body = body
  })

  router.get('/api/v1/search', requireScope('read'), async (ctx) => {
    const q = parseInput(SearchQuery.strict(), ctx.query, 'query')
    const limit = q.limit ?? DEFAULT_LIMIT
    const tsqOf = (p: string) => `websearch_to_tsquery('english', ${p})`
    // Spelled inline (not in a CTE) so the planner sees the folded tsquery and estimates
    // how many rows match from the column statistics.
    const match = new Where()
    match.add(`e.fts @@ ${tsqOf(match.param(q.q))}`).add('NOT e.tombstone')
    const plain = match.clauses.length
    filterSessions(match, q)
    const joinSessions = match.clauses.length > plain
    if (q.kind) match.add('e.kind = ?', q.kind)
    // Only the newest SEARCH_CANDIDATES matches are ranked: ts_rank reads each one's
    // tsvector, and a word found in a large share of the corpus would otherwise rank all
    // of its matches.
    const { ids } = await newestMatches(db, match, { joinSessions })

    const w = new Where()
    const tsq = tsqOf(w.param(q.q))
    let after = ''
    if (q.cursor) {
      const [rank, id] = decodeCursor(q.cursor, SearchCursor)
      const r = w.param(rank)
      after = `WHERE ts_rank(e.fts, ${tsq}) < ${r}::real OR (ts_rank(e.fts, ${tsq}) = ${r}::real AND e.id > ${w.param(id)}::bigint)`
    }
    const candidates = w.param(ids)
    const limitParam = w.param(limit + 1)
    const headline = w.param(HEADLINE_OPTIONS)
    // ts_headline re-parses text, so it runs on the returned page only.
    const { rows } = await db.query<EventRow & SessionRow & { rank: number; snippet: string }>(
      `WITH hits AS (
         SELECT ${EVENT_COLUMNS}, ${SESSION_COLUMNS}, ts_rank(e.fts, ${tsq}) AS rank
           FROM unnest(${candidates}::bigint[]) AS cand(id)
           JOIN events e ON e.id = cand.id JOIN sessions s ON s.id = e.session_id
           ${after}
          ORDER BY rank DESC, e.id LIMIT ${limitParam}
       )
       SELECT hits.*, ts_headline('english', translate(left(coalesce(hits.tool_name || ': ', '') || coalesce(hits.text, ''), 20000), chr(1) || chr(2), ''), ${tsq}, ${headline}) AS snippet
         FROM hits
        ORDER BY hits.rank DESC, hits.e_id`,
      w.params,
    )
    const page = pageOf(rows, limit, (r) => [Number(r.rank), String(r.e_id)])
    const body: SearchResponse = {
      items: page.items.map((r) => ({
        rank: Number(r.rank),
        snippet: markSnippet(r.snippet),
        session: sessionWire(r),
        event: eventWire(r),
      })),
      next_cursor: page.nextCursor,
    }
    ctx.body = body
  })

  router.get('/api/v1/stats', requireScope('read'), async (ctx) => {
    const q = parseInput(StatsQuery.strict(), ctx.query, 'query')
    const w = filterSessions(new Where(), q)
    interface StatsRow {
      g_agent: number
      g_owner: number
      g_day: number
      agent: SessionRecord['agent']
      owner_kind: SessionRecord['owner']['kind'] | null
      owner_id: string | null
      day: string | null
      sessions: Num
      events: Num
      input_tokens: Num
      output_tokens: Num
      cache_read_tokens: Num
      cache_write_tokens: Num
      reasoning_tokens: Num
    }
    // One pass over sessions (their counters already sum the events) for all four views.
    const { rows } = await db.query<StatsRow>(
      `SELECT GROUPING(s.agent) AS g_agent, GROUPING(s.owner_kind, s.owner_id) AS g_owner,
              GROUPING(day) AS g_day, s.agent, s.owner_kind, s.owner_id, day,
              count(*) AS sessions, COALESCE(sum(s.event_count), 0) AS events,
              COALESCE(sum(s.input_tokens), 0) AS input_tokens,
              COALESCE(sum(s.output_tokens), 0) AS output_tokens,
              COALESCE(sum(s.cache_read_tokens), 0) AS cache_read_tokens,
              COALESCE(sum(s.cache_write_tokens), 0) AS cache_write_tokens,
              COALESCE(sum(s.reasoning_tokens), 0) AS reasoning_tokens
         FROM sessions s
         CROSS JOIN LATERAL (SELECT to_char(s.sort_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day) d
         ${w.sql}
        GROUP BY GROUPING SETS ((), (s.agent), (s.owner_kind, s.owner_id), (day))`,
      w.params,
    )
    const bucket = (r: StatsRow) => ({
      sessions: Number(r.sessions),
      events: Number(r.events),
      tokens: tokens(r),
    })
    const grand = rows.find((r) => r.g_agent === 1 && r.g_owner === 3 && r.g_day === 1)
    const body: StatsResponse = {
      totals: grand
        ? bucket(grand)
        : {
            sessions: 0,
            events: 0,
            tokens: { input: 0, output: 0, cache_read: 0, cache_write: 0, reasoning: 0 },
          },
      by_agent: rows
        .filter((r) => r.g_agent === 0)
        .map((r) => ({ agent: r.agent, ...bucket(r) }))
        .sort((a, b) => b.sessions - a.sessions || String(a.agent).localeCompare(String(b.agent))),
      by_owner: rows
        .filter((r) => r.g_owner === 0)
        .map((r) => ({ owner: { kind: r.owner_kind!, id: r.owner_id! }, ...bucket(r) }))
        .sort((a, b) => b.sessions - a.sessions || a.owner.id.localeCompare(b.owner.id)),
      by_day: rows
        .filter((r) => r.g_day === 0)
        .map((r) => ({ day: r.day!, ...bucket(r) }))
        .sort((a, b) => a.day.localeCompare(b.day)),
    }
    ctx.body = body
  })

  return router
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

function markSnippet(s: string): string {
  return escapeHtml(s).replaceAll(MARK_START, '<mark>').replaceAll(MARK_STOP, '</mark>')
}
