import {
  NormalizedEvent,
  SessionUpload,
  type BatchRejection,
  type BatchUploadResponse,
} from '@hivemind/sdk/schemas'
import type { z } from 'zod'
import { BinaryCopyWriter } from '../db/copy-binary.js'
import type { Db } from '../db/types.js'
import { MAX_JSON_DEPTH, nestedDeeperThan, storableJson, storableText } from './storable.js'

/** Who a batch is stored under (`ownerOf(principal)`). */
export interface Owner {
  kind: 'admin' | 'service_account' | 'user'
  id: string
}

type Session = z.output<typeof SessionUpload>
type Event = z.output<typeof NormalizedEvent>

interface StoredEvent {
  event_key: string
  session_id: string | number
  rev: string | number | null
  tombstone: boolean
  input_tokens: string | number | null
  output_tokens: string | number | null
  cache_read_tokens: string | number | null
  cache_write_tokens: string | number | null
  reasoning_tokens: string | number | null
}

const TOKEN_FIELDS = [
  'input_tokens',
  'output_tokens',
  'cache_read_tokens',
  'cache_write_tokens',
  'reasoning_tokens',
] as const
type Tokens = [number, number, number, number, number]

/**
 * Stores one upload batch in one transaction and reports per item.
 *
 * - Items are validated one by one; bad ones land in `rejected` naming the field.
 * - Sessions merge into the stored row (earliest start, latest end, non-null fields win).
 * - Events: a new key is inserted; an event with a higher `rev` replaces the stored one; a
 *   tombstone marks it removed; anything else repeating a key is a duplicate.
 * - Session counters (events, tokens) move by the batch's deltas, so reads never aggregate
 *   events.
 */
export async function ingestBatch(
  db: Db,
  owner: Owner,
  body: { sessions: unknown[]; events: unknown[] },
): Promise<BatchUploadResponse> {
  const rejected: BatchRejection[] = []
  let duplicates = 0

  const sessions = new Map<string, Session>()
  body.sessions.forEach((item, index) => {
    const r = SessionUpload.safeParse(item)
    if (!r.success) {
      const key = keyOf(item, 'session_key')
      rejected.push({
        kind: 'session',
        index,
        ...(key ? { session_key: key } : {}),
        error: issue(item, r.error),
      })
      return
    }
    const prev = sessions.get(r.data.session_key)
    if (prev) duplicates++
    sessions.set(r.data.session_key, prev ? mergeSessions(prev, r.data) : r.data)
  })

  const events = new Map<string, Event>()
  // Tombstones without `rev` that follow another version of their record in this batch:
  // applied after that version is stored, as two batches would.
  const late = new Map<string, Event>()
  body.events.forEach((item, index) => {
    const r = NormalizedEvent.safeParse(item)
    const deep = r.success ? tooDeep(r.data) : undefined
    if (!r.success || deep) {
      const key = keyOf(item, 'event_key')
      rejected.push({
        kind: 'event',
        index,
        ...(key ? { event_key: key } : {}),
        error: r.success
          ? `${deep}: nested deeper than ${MAX_JSON_DEPTH} levels`
          : issue(item, r.error),
      })
      return
    }
    const e = r.data
    const prev = events.get(e.event_key)
    if (!prev) return void events.set(e.event_key, e)
    // Two versions of one record in one batch: the later revision wins; one that does not
    // supersede the version before it changes nothing (a duplicate).
    if (!supersedes(e, prev.rev ?? null, prev.tombstone === true)) return void duplicates++
    if (e.tombstone === true && e.rev === undefined) {
      if (late.has(e.event_key)) duplicates++
      return void late.set(e.event_key, e)
    }
    duplicates += late.delete(e.event_key) ? 2 : 1
    events.set(e.event_key, e)
  })

  if (sessions.size === 0 && events.size === 0) return { accepted: 0, duplicates, rejected }

  const result = await db.transaction(async (tx) => {
    const touched = [
      ...new Set([
        ...sessions.keys(),
        ...[...events.values(), ...late.values()].map((e) => e.session_key),
      ]),
    ]
    // Serialise batches that touch the same sessions, so counter deltas computed from the
    // rows read below stay exact under concurrent uploads (several replicas, CI jobs).
    if (tx.kind === 'postgres') {
      await tx.query(
        `SELECT pg_advisory_xact_lock(h) FROM (
           SELECT hashtextextended($1 || ':' || $2 || ':' || k, 0) AS h FROM unnest($3::text[]) AS k ORDER BY 1
         ) AS locks`,
        [owner.kind, owner.id, touched],
      )
    }
    const sessionChanges = await upsertSessions(tx, owner, [...sessions.values()])
    const ids = await ensureSessions(tx, owner, touched)
    let eventChanges = await upsertEvents(tx, owner, [...events.values()], ids)
    if (late.size > 0) eventChanges += await upsertEvents(tx, owner, [...late.values()], ids)
    return { accepted: sessionChanges + eventChanges }
  })
  duplicates += sessions.size + events.size + late.size - result.accepted
  return { accepted: result.accepted, duplicates, rejected: rejected.sort(byItem) }
}

/** The first tool field nested too deep to store, if any. */
function tooDeep(e: Event): string | undefined {
  if (nestedDeeperThan(e.tool?.input, MAX_JSON_DEPTH)) return 'tool.input'
  if (nestedDeeperThan(e.tool?.output, MAX_JSON_DEPTH)) return 'tool.output'
  return undefined
}

function byItem(a: BatchRejection, b: BatchRejection): number {
  return a.kind === b.kind ? a.index - b.index : a.kind === 'session' ? -1 : 1
}

function keyOf(item: unknown, field: string): string | undefined {
  const v = (item as Record<string, unknown> | null)?.[field]
  return typeof v === 'string' && v.length <= 128 ? v : undefined
}

function issue(item: unknown, error: z.ZodError): string {
  const i = error.issues[0]
  const path = i.path.map(String).join('.') || 'item'
  const message =
    i.path.length > 0 && valueAt(item, i.path) === undefined
      ? 'is required'
      : i.code === 'unrecognized_keys'
        ? `unknown field(s) ${i.keys.join(', ')}`
        : i.message
  return `${path}: ${message}`
}

function valueAt(item: unknown, path: readonly PropertyKey[]): unknown {
  let v = item
  for (const k of path) v = (v as Record<PropertyKey, unknown> | null | undefined)?.[k]
  return v
}

/** Does `e` replace a stored record with `rev`/`tombstone`? (DESIGN.md "Batch upload") */
function supersedes(e: Event, rev: number | null, tombstone: boolean): boolean {
  if (e.rev !== undefined) return rev == null || e.rev > rev
  return e.tombstone === true && !tombstone
}

const earliest = (a: string | null, b: string | null) =>
  a == null ? b : b == null ? a : Date.parse(a) <= Date.parse(b) ? a : b
const latest = (a: string | null, b: string | null) =>
  a == null ? b : b == null ? a : Date.parse(a) >= Date.parse(b) ? a : b

function mergeSessions(a: Session, b: Session): Session {
  return {
    ...a,
    ...Object.fromEntries(Object.entries(b).filter(([, v]) => v != null)),
    started_at: earliest(a.started_at, b.started_at),
    ended_at: latest(a.ended_at, b.ended_at),
    agent_versions: union(a.agent_versions ?? [], b.agent_versions ?? []),
    source_paths: union(a.source_paths, b.source_paths),
  }
}

function union(a: readonly string[], b: readonly string[]): string[] {
  return [...new Set([...a, ...b])]
}

// Merge rules of DESIGN.md as SQL over the stored row `s` and the incoming EXCLUDED row.
// Non-null incoming values win (a later file knows the title, a resumed one the model).
const MERGE: Record<string, string> = {
  agent: 'COALESCE(EXCLUDED.agent, s.agent)',
  source_session_id: 'COALESCE(EXCLUDED.source_session_id, s.source_session_id)',
  parent_session_key: 'COALESCE(EXCLUDED.parent_session_key, s.parent_session_key)',
  parent_source_session_id:
    'COALESCE(EXCLUDED.parent_source_session_id, s.parent_source_session_id)',
  relation: 'COALESCE(EXCLUDED.relation, s.relation)',
  cwd: 'COALESCE(EXCLUDED.cwd, s.cwd)',
  repo: 'COALESCE(EXCLUDED.repo, s.repo)',
  git_branch: 'COALESCE(EXCLUDED.git_branch, s.git_branch)',
  model: 'COALESCE(EXCLUDED.model, s.model)',
  title: 'COALESCE(EXCLUDED.title, s.title)',
  host: 'COALESCE(EXCLUDED.host, s.host)',
  // LEAST/GREATEST skip NULLs.
  started_at: 'LEAST(s.started_at, EXCLUDED.started_at)',
  ended_at: 'GREATEST(s.ended_at, EXCLUDED.ended_at)',
  agent_versions:
    'ARRAY(SELECT v FROM unnest(s.agent_versions || EXCLUDED.agent_versions) WITH ORDINALITY AS t(v, o) GROUP BY v ORDER BY min(o))',
  source_paths:
    'ARRAY(SELECT v FROM unnest(s.source_paths || EXCLUDED.source_paths) WITH ORDINALITY AS t(v, o) GROUP BY v ORDER BY min(o))',
}
const MERGE_SET = Object.entries(MERGE)
  .map(([col, expr]) => `${col} = ${expr}`)
  .join(',\n  ')
const MERGE_CHANGED = `ROW(${Object.values(MERGE).join(', ')}) IS DISTINCT FROM ROW(${Object.keys(
  MERGE,
)
  .map((c) => `s.${c}`)
  .join(', ')})`

/** Inserts or merges session records; returns how many rows changed. */
async function upsertSessions(tx: Db, owner: Owner, list: Session[]): Promise<number> {
  if (list.length === 0) return 0
  const col = <T>(f: (s: Session) => T) => list.map(f)
  const { rows } = await tx.query(
    `INSERT INTO sessions AS s (owner_kind, owner_id, session_key, agent, source_session_id,
       parent_session_key, parent_source_session_id, relation, cwd, repo, git_branch, model, title,
       host, agent_versions, source_paths, started_at, ended_at, sort_at)
     SELECT $1, $2, u.session_key, u.agent, u.source_session_id, u.parent_session_key,
       u.parent_source_session_id, u.relation, u.cwd, u.repo, u.git_branch, u.model, u.title, u.host,
       ARRAY(SELECT jsonb_array_elements_text(u.agent_versions::jsonb)),
       ARRAY(SELECT jsonb_array_elements_text(u.source_paths::jsonb)),
       u.started_at, u.ended_at, date_trunc('milliseconds', COALESCE(u.started_at, now()))
     FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
       $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[],
       $17::timestamptz[], $18::timestamptz[])
       AS u(session_key, agent, source_session_id, parent_session_key, parent_source_session_id,
         relation, cwd, repo, git_branch, model, title, host, agent_versions, source_paths,
         started_at, ended_at)
     ON CONFLICT (owner_kind, owner_id, session_key) DO UPDATE SET
       ${MERGE_SET},
       sort_at = COALESCE(date_trunc('milliseconds', LEAST(s.started_at, EXCLUDED.started_at)), s.sort_at),
       updated_at = now()
     WHERE ${MERGE_CHANGED}
     RETURNING s.id`,
    [
      owner.kind,
      owner.id,
      col((s) => s.session_key),
      col((s) => s.agent),
      col((s) => storableText(s.source_session_id)),
      col((s) => s.parent_session_key ?? null),
      col((s) => storableText(s.parent_source_session_id)),
      col((s) => s.relation ?? null),
      col((s) => storableText(s.cwd)),
      col((s) => storableText(s.repo ?? null)),
      col((s) => storableText(s.git_branch)),
      col((s) => storableText(s.model)),
      col((s) => storableText(s.title)),
      col((s) => storableText(s.host)),
      col((s) => storableJson(s.agent_versions ?? [])),
      col((s) => storableJson(s.source_paths)),
      col((s) => s.started_at),
      col((s) => s.ended_at),
    ],
  )
  // A session uploaded without `repo` is filed under the last segment of its cwd, but only
  // while no client has named its repo: a later record without `repo` must not replace
  // the `org/name` an earlier one gave.
  const unnamed = list.filter((x) => !x.repo && x.cwd).map((x) => x.session_key)
  if (unnamed.length > 0) {
    await tx.query(
      `UPDATE sessions SET repo = substring(cwd from '([^/\\\\]+)[/\\\\]*$')
        WHERE owner_kind = $1 AND owner_id = $2 AND session_key = ANY($3::text[])
          AND repo IS NULL AND cwd IS NOT NULL`,
      [owner.kind, owner.id, unnamed],
    )
  }
  return rows.length
}

/**
 * Row ids of every session the batch touches, creating placeholder rows for sessions whose
 * events arrive before their record (the record fills them in later).
 */
async function ensureSessions(tx: Db, owner: Owner, keys: string[]): Promise<Map<string, string>> {
  await tx.query(
    `INSERT INTO sessions (owner_kind, owner_id, session_key, sort_at)
     SELECT $1, $2, k, date_trunc('milliseconds', now()) FROM unnest($3::text[]) AS k
     ON CONFLICT (owner_kind, owner_id, session_key) DO NOTHING`,
    [owner.kind, owner.id, keys],
  )
  const { rows } = await tx.query<{ id: string | number; session_key: string }>(
    `SELECT id, session_key FROM sessions
      WHERE owner_kind = $1 AND owner_id = $2 AND session_key = ANY($3::text[])`,
    [owner.kind, owner.id, keys],
  )
  return new Map(rows.map((r) => [r.session_key, String(r.id)]))
}

function tokensOf(e: Event): Tokens | null {
  const u = e.usage
  return u ? [u.input_tokens, u.output_tokens, u.cache_read, u.cache_write, u.reasoning] : null
}

function storedTokens(s: StoredEvent): Tokens | null {
  if (s.input_tokens == null) return null
  return TOKEN_FIELDS.map((f) => Number(s[f] ?? 0)) as Tokens
}

/** Inserts, replaces and tombstones events; returns how many changed something. */
async function upsertEvents(
  tx: Db,
  owner: Owner,
  list: Event[],
  sessionIds: Map<string, string>,
): Promise<number> {
  if (list.length === 0) return 0
  const { rows: stored } = await tx.query<StoredEvent>(
    `SELECT event_key, session_id, rev, tombstone, ${TOKEN_FIELDS.join(', ')}
       FROM events WHERE owner_kind = $1 AND owner_id = $2 AND event_key = ANY($3::text[])`,
    [owner.kind, owner.id, list.map((e) => e.event_key)],
  )
  const byKey = new Map(stored.map((s) => [s.event_key, s]))
  const inserts: Event[] = []
  const replaces: Event[] = []
  const marks: Event[] = []
  // Per session row: [events, ...tokens] deltas.
  const deltas = new Map<string, [number, ...Tokens]>()
  const bump = (sessionId: string, n: number, t: Tokens | null, sign: 1 | -1) => {
    const d = deltas.get(sessionId) ?? [0, 0, 0, 0, 0, 0]
    d[0] += n
    if (t) for (let i = 0; i < 5; i++) d[i + 1] += sign * t[i]
    deltas.set(sessionId, d)
  }
  for (const e of list) {
    const s = byKey.get(e.event_key)
    if (!s) {
      inserts.push(e)
      continue
    }
    if (!supersedes(e, s.rev == null ? null : Number(s.rev), s.tombstone)) continue
    const sid = String(s.session_id)
    const oldTokens = storedTokens(s)
    // The old version stops counting; the new one counts unless it is removed.
    if (!s.tombstone) bump(sid, -1, oldTokens, -1)
    if (e.tombstone) {
      marks.push(e)
    } else {
      replaces.push(e)
      bump(sid, 1, tokensOf(e), 1)
    }
  }

  let changed = replaces.length + marks.length
  if (inserts.length) {
    const inserted = await insertEvents(tx, owner, inserts, sessionIds)
    changed += inserted.size
    for (const e of inserts) {
      if (inserted.has(e.event_key) && !e.tombstone)
        bump(sessionIds.get(e.session_key)!, 1, tokensOf(e), 1)
    }
  }
  if (replaces.length) {
    await tx.query(
      `UPDATE events AS e SET ${EVENT_COLUMNS.filter((c) => c !== 'event_key')
        .map((c) => `${c} = u.${c}`)
        .join(', ')}, updated_at = now()
         FROM ${eventRecordset(3)}
        WHERE e.owner_kind = $1 AND e.owner_id = $2 AND e.event_key = u.event_key`,
      [owner.kind, owner.id, eventRecords(replaces, sessionIds)],
    )
  }
  if (marks.length) {
    // A tombstone keeps the stored content (it only says the source dropped the record).
    await tx.query(
      `UPDATE events AS e SET tombstone = true, rev = COALESCE(u.rev, e.rev), updated_at = now()
         FROM unnest($3::text[], $4::bigint[]) AS u(event_key, rev)
        WHERE e.owner_kind = $1 AND e.owner_id = $2 AND e.event_key = u.event_key`,
      [owner.kind, owner.id, marks.map((e) => e.event_key), marks.map((e) => e.rev ?? null)],
    )
  }
  const moved = [...deltas].filter(([, d]) => d.some((x) => x !== 0))
  if (moved.length) {
    const at = (i: number) => moved.map(([, d]) => d[i])
    await tx.query(
      `UPDATE sessions AS s SET event_count = s.event_count + d.n,
         input_tokens = s.input_tokens + d.i, output_tokens = s.output_tokens + d.o,
         cache_read_tokens = s.cache_read_tokens + d.cr, cache_write_tokens = s.cache_write_tokens + d.cw,
         reasoning_tokens = s.reasoning_tokens + d.r, updated_at = now()
         FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[])
           AS d(id, n, i, o, cr, cw, r)
        WHERE s.id = d.id`,
      [moved.map(([id]) => id), at(0), at(1), at(2), at(3), at(4), at(5)],
    )
  }
  return changed
}

/**
 * Stores events whose keys were not found; returns the keys stored.
 *
 * They go in with one binary COPY: nothing is escaped, parsed as JSON or checked for a
 * conflict row by row, which makes it several times cheaper than an INSERT for the
 * megabytes of agent output a batch carries. The keys were read under the batch's
 * session locks, so a conflict means the same event key arrived meanwhile under another
 * session (a client bug, or two owners' clients racing): the COPY then stores nothing and
 * the events go through INSERT … ON CONFLICT DO NOTHING instead, which skips that key.
 */
async function insertEvents(
  tx: Db,
  owner: Owner,
  list: Event[],
  sessionIds: Map<string, string>,
): Promise<Set<string>> {
  await tx.query('SAVEPOINT copy_events')
  try {
    await tx.copyIn(
      `events (session_id, owner_kind, owner_id, ${EVENT_COLUMNS.join(', ')})`,
      eventCopyData(list, owner, sessionIds),
    )
    await tx.query('RELEASE SAVEPOINT copy_events')
    return new Set(list.map((e) => e.event_key))
  } catch (err) {
    if ((err as { code?: unknown }).code !== UNIQUE_VIOLATION) throw err
    await tx.query('ROLLBACK TO SAVEPOINT copy_events')
  }
  const { rows } = await tx.query<{ event_key: string }>(
    `INSERT INTO events (session_id, owner_kind, owner_id, ${EVENT_COLUMNS.join(', ')})
     SELECT u.session_id, $1, $2, ${EVENT_COLUMNS.map((c) => `u.${c}`).join(', ')}
       FROM ${eventRecordset(3)}
     ON CONFLICT (owner_kind, owner_id, event_key) DO NOTHING
     RETURNING event_key`,
    [owner.kind, owner.id, eventRecords(list, sessionIds)],
  )
  return new Set(rows.map((r) => r.event_key))
}

const UNIQUE_VIOLATION = '23505'

/** Event columns written from the wire, in unnest order after `session_id`. */
const EVENT_COLUMNS = [
  'event_key',
  'thread',
  'seq',
  'ts',
  'kind',
  'native_type',
  'role',
  'model',
  'text',
  'tool_name',
  'tool_call_id',
  'tool_input',
  'tool_output',
  'tool_is_error',
  ...TOKEN_FIELDS,
  'rev',
  'tombstone',
  'raw',
  'raw_oversize',
  'src',
] as const
type EventColumn = (typeof EVENT_COLUMNS)[number]

/** SQL types of the event columns in the JSON recordset the batch travels as. */
const RECORD_TYPES: Record<EventColumn, 'text' | 'jsonb' | 'bigint' | 'boolean' | 'timestamptz'> = {
  event_key: 'text',
  thread: 'text',
  seq: 'bigint',
  ts: 'timestamptz',
  kind: 'text',
  native_type: 'text',
  role: 'text',
  model: 'text',
  text: 'text',
  tool_name: 'text',
  tool_call_id: 'text',
  tool_input: 'jsonb',
  tool_output: 'jsonb',
  tool_is_error: 'boolean',
  input_tokens: 'bigint',
  output_tokens: 'bigint',
  cache_read_tokens: 'bigint',
  cache_write_tokens: 'bigint',
  reasoning_tokens: 'bigint',
  rev: 'bigint',
  tombstone: 'boolean',
  raw: 'text',
  raw_oversize: 'jsonb',
  src: 'jsonb',
}

/**
 * The events of a statement as one JSON parameter, unpacked by `json_to_recordset`.
 * Text arrays (`unnest($n::text[])`) made node-postgres escape every quote and backslash
 * of megabytes of agent output in JavaScript, and PostgreSQL parse the array literal
 * back; JSON is encoded natively and parsed in C, and tool input and output travel as
 * JSON values instead of JSON-in-text.
 */
function eventRecordset(param: number): string {
  const columns = EVENT_COLUMNS.map((c) => `${c} ${RECORD_TYPES[c]}`).join(', ')
  return `json_to_recordset($${param}::json) AS u(session_id bigint, ${columns})`
}

type EventRecord = { session_id: string } & Partial<Record<EventColumn, unknown>>

/** One event as stored, column by column; absent values are `undefined` (SQL NULL). */
function eventRecord(e: Event, sessionId: string): EventRecord {
  return {
    session_id: sessionId,
    event_key: e.event_key,
    thread: e.thread ?? undefined,
    seq: e.seq,
    ts: e.ts ?? undefined,
    kind: e.kind,
    native_type: e.native_type ?? undefined,
    role: e.role ?? undefined,
    model: e.model ?? undefined,
    text: e.text ?? undefined,
    tool_name: e.tool?.name ?? undefined,
    tool_call_id: e.tool?.call_id ?? undefined,
    tool_input: e.tool?.input ?? undefined,
    tool_output: e.tool?.output ?? undefined,
    tool_is_error: e.tool?.is_error ?? undefined,
    input_tokens: e.usage?.input_tokens ?? undefined,
    output_tokens: e.usage?.output_tokens ?? undefined,
    cache_read_tokens: e.usage?.cache_read ?? undefined,
    cache_write_tokens: e.usage?.cache_write ?? undefined,
    reasoning_tokens: e.usage?.reasoning ?? undefined,
    rev: e.rev ?? undefined,
    tombstone: e.tombstone === true,
    raw: e.raw ?? undefined,
    raw_oversize: e.raw_oversize ?? undefined,
    src: e.src ?? undefined,
  }
}

function eventRecords(list: Event[], sessionIds: Map<string, string>): string {
  // Absent keys are SQL NULL (a JSON null in a jsonb column would be a jsonb null).
  return storableJson(list.map((e) => eventRecord(e, sessionIds.get(e.session_key)!)))!
}

/** The events as binary COPY rows of (session_id, owner_kind, owner_id, EVENT_COLUMNS). */
function eventCopyData(list: Event[], owner: Owner, sessionIds: Map<string, string>): Buffer[] {
  const w = new BinaryCopyWriter()
  for (const e of list) {
    const r = eventRecord(e, sessionIds.get(e.session_key)!)
    w.row(3 + EVENT_COLUMNS.length)
      .int8(r.session_id)
      .text(owner.kind)
      .text(owner.id)
    for (const c of EVENT_COLUMNS) {
      const v = r[c]
      switch (RECORD_TYPES[c]) {
        case 'text':
          w.text(storableText(v as string | undefined))
          break
        case 'jsonb':
          w.jsonb(storableJson(v))
          break
        case 'bigint':
          w.int8(v as number | undefined)
          break
        case 'boolean':
          w.bool(v as boolean | undefined)
          break
        case 'timestamptz':
          w.timestamptz(v as string | undefined)
          break
      }
    }
  }
  return w.finish()
}
