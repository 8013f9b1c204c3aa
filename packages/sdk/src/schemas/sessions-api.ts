import { z } from 'zod'
import { pageOf } from './admin.js'
import { AgentId, EventKind } from './names.js'
import { NormalizedEvent, NormalizedSession, SessionRelation, ToolInfo } from './sessions.js'

/** `2026-01-15T00:00:00Z` or a bare date `2026-01-15` (midnight UTC). */
const TimeBound = z
  .union([z.iso.datetime({ offset: true }), z.iso.date()])
  .refine((v) => !v.startsWith('0000'), 'year 0000 does not exist (use 0001 or later)')

/**
 * A session in an upload batch: the adapter's {@link NormalizedSession}, plus an optional
 * `repo` (e.g. `octo-org/octo-repo` from the git remote) that the `repo` filter matches.
 * Without it the server files the session under the last segment of `cwd`.
 *
 * @example
 * { ...normalizedSession, "repo": "octo-org/octo-repo" }
 * @see SESSION-FORMATS.md §A
 */
export const SessionUpload = NormalizedSession.extend({
  repo: z.string().min(1).max(512).nullable().optional(),
})
export type SessionUpload = z.input<typeof SessionUpload>

/**
 * `POST /api/v1/sessions/batch` (scope `write`). Items are validated one by one: a bad
 * item is returned in `rejected`, the others are stored. Events may arrive before (or
 * without) their session record; the session then shows up with `agent: null` until it does.
 *
 * @example
 * await client.uploadBatch({ sessions: [session], events })
 * @see DESIGN.md "Batch upload"
 */
export const BatchUploadRequest = z.object({
  sessions: z.array(SessionUpload).default([]),
  events: z.array(NormalizedEvent).default([]),
})
export type BatchUploadRequest = z.input<typeof BatchUploadRequest>

/** One item the server refused, with the field and the reason (`ts: Invalid ISO datetime`). */
export const BatchRejection = z.object({
  /** Which array the item was in. */
  kind: z.enum(['session', 'event']),
  /** Index in that array. */
  index: z.number().int().min(0),
  event_key: z.string().optional(),
  session_key: z.string().optional(),
  error: z.string(),
})
export type BatchRejection = z.infer<typeof BatchRejection>

/**
 * Answer to a batch: how many items were stored or changed something (`accepted`), how
 * many were already stored as sent (`duplicates`: a retried batch is all duplicates), and
 * the refused ones. HTTP 200 even when some items are rejected.
 *
 * @example
 * { "accepted": 120, "duplicates": 0, "rejected": [{ "kind": "event", "index": 7, "event_key": "…", "error": "ts: Invalid ISO datetime" }] }
 */
export const BatchUploadResponse = z.object({
  accepted: z.number().int().min(0),
  duplicates: z.number().int().min(0),
  rejected: z.array(BatchRejection),
})
export type BatchUploadResponse = z.infer<typeof BatchUploadResponse>

/** Token totals of a session, an agent, an owner or a day. */
export const TokenTotals = z.object({
  input: z.number().int(),
  output: z.number().int(),
  cache_read: z.number().int(),
  cache_write: z.number().int(),
  reasoning: z.number().int(),
})
export type TokenTotals = z.infer<typeof TokenTotals>

/** Who uploaded a session: a service account (`sa_…`), a user, or the bootstrap admin. */
export const SessionOwner = z.object({
  kind: z.enum(['admin', 'service_account', 'user']),
  id: z.string(),
})
export type SessionOwner = z.infer<typeof SessionOwner>

/**
 * A stored session (`GET /api/v1/sessions`, `GET /api/v1/sessions/{id}`). `id` is the
 * server's opaque id; `session_key` is the client's. `agent` is null while only events of
 * the session have arrived.
 */
export const SessionRecord = z.object({
  id: z.string(),
  session_key: z.string(),
  owner: SessionOwner,
  agent: AgentId.nullable(),
  source_session_id: z.string().nullable(),
  parent_session_key: z.string().nullable(),
  parent_source_session_id: z.string().nullable(),
  relation: SessionRelation.nullable(),
  cwd: z.string().nullable(),
  repo: z.string().nullable(),
  git_branch: z.string().nullable(),
  model: z.string().nullable(),
  title: z.string().nullable(),
  host: z.string().nullable(),
  agent_versions: z.array(z.string()),
  started_at: z.string().nullable(),
  ended_at: z.string().nullable(),
  /** Events stored and not tombstoned. */
  event_count: z.number().int(),
  tokens: TokenTotals,
  created_at: z.string(),
  updated_at: z.string(),
})
export type SessionRecord = z.infer<typeof SessionRecord>

/** A page of sessions, newest first. */
export const SessionList = pageOf(SessionRecord)
export type SessionList = z.infer<typeof SessionList>

/** A stored event (`GET /api/v1/sessions/{id}/events`). */
export const EventRecord = z.object({
  event_key: z.string(),
  session_key: z.string(),
  thread: z.string(),
  seq: z.number().int(),
  ts: z.string().nullable(),
  kind: EventKind,
  native_type: z.string().nullable(),
  role: z.string().nullable(),
  model: z.string().nullable(),
  text: z.string().nullable(),
  tool: ToolInfo.nullable(),
  usage: TokenTotals.nullable(),
  rev: z.number().int().nullable(),
  /** Removed at the source (Gemini `$rewindTo`); only listed with `include_removed=true`. */
  tombstone: z.boolean(),
  /** Present with `include_raw=true`. */
  raw: z.string().nullable().optional(),
})
export type EventRecord = z.infer<typeof EventRecord>

/** A page of one session's events, in source order (`seq`, then `thread`). */
export const EventList = pageOf(EventRecord)
export type EventList = z.infer<typeof EventList>

/** Filters shared by the session list, search and stats. */
export const SessionFilters = z.object({
  agent: AgentId.optional(),
  /** Owner id (`sa_…`, `usr_…`, `admin`): a filter, not a wall. */
  owner: z.string().min(1).max(200).optional(),
  /** Sessions that started at or after this time. */
  since: TimeBound.optional(),
  /** Sessions that started before this time. */
  until: TimeBound.optional(),
  /** Prefix of the working directory. */
  cwd: z.string().min(1).max(4096).optional(),
  /** `octo-org/octo-repo`, or just `octo-repo`. */
  repo: z.string().min(1).max(512).optional(),
  git_branch: z.string().min(1).max(512).optional(),
})
export type SessionFilters = z.input<typeof SessionFilters>

/** `GET /api/v1/sessions` query. */
export const SessionListQuery = SessionFilters.extend({
  limit: z.coerce.number().int().min(1).max(500).optional(),
  cursor: z.string().min(1).max(512).optional(),
})
export type SessionListQuery = z.input<typeof SessionListQuery>

/** `GET /api/v1/sessions/{id}/events` query. */
export const EventListQuery = z.object({
  limit: z.coerce.number().int().min(1).max(500).optional(),
  cursor: z.string().min(1).max(512).optional(),
  /** Only this thread (`main`, or a subagent id). */
  thread: z.string().min(1).max(512).optional(),
  kind: EventKind.optional(),
  include_removed: z.enum(['true', 'false']).optional(),
  include_raw: z.enum(['true', 'false']).optional(),
})
export type EventListQuery = z.input<typeof EventListQuery>

/** `GET /api/v1/search` query: `q` in web-search syntax (`"exact phrase" -word or`). */
export const SearchQuery = SessionFilters.extend({
  q: z.string().trim().min(1).max(1000),
  kind: EventKind.optional(),
  limit: z.coerce.number().int().min(1).max(500).optional(),
  cursor: z.string().min(1).max(512).optional(),
})
export type SearchQuery = z.input<typeof SearchQuery>

/** One search hit: the event, its session, a rank and an HTML-escaped snippet with `<mark>`. */
export const SearchHit = z.object({
  rank: z.number(),
  /** Escaped text around the matches, matches wrapped in `<mark>…</mark>`. */
  snippet: z.string(),
  session: SessionRecord,
  event: EventRecord,
})
export type SearchHit = z.infer<typeof SearchHit>

/** `GET /api/v1/search` answer, best first. */
export const SearchResponse = pageOf(SearchHit)
export type SearchResponse = z.infer<typeof SearchResponse>

/** Counts of one bucket of the stats. */
export const StatsBucket = z.object({
  sessions: z.number().int(),
  events: z.number().int(),
  tokens: TokenTotals,
})
export type StatsBucket = z.infer<typeof StatsBucket>

/**
 * `GET /api/v1/stats`: sessions, events and tokens in total and by agent, owner and day
 * (UTC, by session start), for the sessions the filters select.
 */
export const StatsResponse = z.object({
  totals: StatsBucket,
  by_agent: z.array(StatsBucket.extend({ agent: AgentId.nullable() })),
  by_owner: z.array(StatsBucket.extend({ owner: SessionOwner })),
  by_day: z.array(StatsBucket.extend({ day: z.iso.date() })),
})
export type StatsResponse = z.infer<typeof StatsResponse>

/** `GET /api/v1/stats` query. */
export const StatsQuery = SessionFilters
export type StatsQuery = z.input<typeof StatsQuery>
