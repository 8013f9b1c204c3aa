import {
  RAW_MAX_CHARS,
  RAW_TRUNCATION_MARKER,
  eventKey,
  sessionKey,
  type AgentId,
  type NormalizedEvent,
  type NormalizedSession,
  type SessionRelation,
  type TokenUsage,
  type ToolInfo,
} from '@hivemind/sdk/schemas'
import { sha256Hex, sniffType, type JsonLine } from './jsonl.js'
import type { ParseError, ParseResult } from './types.js'

/** Converts an ISO string, epoch seconds or epoch milliseconds to ISO UTC; else null. */
export function toIso(value: unknown): string | null {
  let ms: number
  if (typeof value === 'number' && Number.isFinite(value)) {
    ms = value < 1e11 ? value * 1000 : value
  } else if (typeof value === 'string' && value !== '') {
    ms = Date.parse(value)
  } else {
    return null
  }
  if (!Number.isFinite(ms)) return null
  const d = new Date(ms)
  return Number.isNaN(d.getTime()) ? null : d.toISOString()
}

/** Caps a raw record: at most RAW_MAX_CHARS, then a marker with the full size and hash. */
export function capRaw(
  text: string,
  oversize?: { bytes: number; sha256: string },
): Pick<NormalizedEvent, 'raw' | 'raw_oversize'> {
  if (!oversize && text.length <= RAW_MAX_CHARS) return { raw: text }
  const full = oversize ?? { bytes: Buffer.byteLength(text), sha256: sha256Hex(text) }
  return {
    raw: `${text.slice(0, RAW_MAX_CHARS)}${RAW_TRUNCATION_MARKER}${full.bytes} bytes sha256=${full.sha256}]`,
    raw_oversize: full,
  }
}

/**
 * Longest `text`, `tool.input` or `tool.output` an event carries: 1 MiB of UTF-8 in its
 * JSON form. The server refuses upload bodies over 32 MiB (`HIVEMIND_SESSIONS_MAX_BODY_BYTES`),
 * and a refused event would be retried forever and stall its file; with `raw` capped too, one
 * event stays under about 4.5 MiB however its content escapes. Search only indexes the first
 * 100 000 characters of `text`, so the cut loses nothing searchable.
 */
export const FIELD_MAX_BYTES = 1024 * 1024

/** Room kept for the truncation marker within {@link FIELD_MAX_BYTES}. */
const MARKER_ROOM = 128

const jsonBytes = (s: string): number => Buffer.byteLength(JSON.stringify(s))

/** The longest prefix of `s` (not splitting a surrogate pair) whose JSON form fits `maxBytes`. */
function headWithin(s: string, maxBytes: number): string {
  let n = Math.min(s.length, maxBytes)
  for (;;) {
    let head = s.slice(0, n)
    if (/[\uD800-\uDBFF]$/.test(head)) head = head.slice(0, -1)
    const bytes = jsonBytes(head)
    if (bytes <= maxBytes) return head
    // Escapes and multi-byte characters make bytes outgrow characters: shrink in proportion.
    n = Math.floor((head.length * maxBytes) / bytes)
  }
}

/** `source` cut to fit {@link FIELD_MAX_BYTES}, ending with the marker, size and hash of all of it. */
function truncated(source: string): string {
  const marker = `${RAW_TRUNCATION_MARKER}${Buffer.byteLength(source)} bytes sha256=${sha256Hex(source)}]`
  return `${headWithin(source, FIELD_MAX_BYTES - MARKER_ROOM)}${marker}`
}

/** Caps an event's `text` at {@link FIELD_MAX_BYTES}; the marker gives the full size and hash. */
export function capText(text: string): string {
  // Six bytes per character is the worst JSON escape (`\u0000`): shorter texts always fit.
  if (text.length * 6 + 2 <= FIELD_MAX_BYTES || jsonBytes(text) <= FIELD_MAX_BYTES) return text
  return truncated(text)
}

/**
 * Caps a tool input or output at {@link FIELD_MAX_BYTES}. One that is too big becomes a
 * string: the head of the text (or of the value's JSON) plus a marker with the size and
 * SHA-256 of that whole text (or JSON), so it can be matched with the record on disk.
 */
export function capToolValue(value: unknown): unknown {
  if (typeof value === 'string') return capText(value)
  if (value == null || typeof value !== 'object') return value
  const json = JSON.stringify(value)
  return Buffer.byteLength(json) <= FIELD_MAX_BYTES ? value : truncated(json)
}

function capTool(tool: ToolInfo): ToolInfo {
  const out: ToolInfo = { ...tool }
  if (tool.input !== undefined) out.input = capToolValue(tool.input)
  if (tool.output !== undefined) out.output = capToolValue(tool.output)
  return out
}

export const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v != null && !Array.isArray(v)

export const str = (v: unknown): string | undefined =>
  typeof v === 'string' && v !== '' ? v : undefined

export const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0)

export function usageOf(u: Partial<TokenUsage>): TokenUsage {
  const n = (v: number | undefined) => Math.max(0, Math.round(v ?? 0))
  return {
    input_tokens: n(u.input_tokens),
    output_tokens: n(u.output_tokens),
    cache_read: n(u.cache_read),
    cache_write: n(u.cache_write),
    reasoning: n(u.reasoning),
  }
}

export const usageIsZero = (u: TokenUsage): boolean =>
  u.input_tokens + u.output_tokens + u.cache_read + u.cache_write + u.reasoning === 0

/** What an adapter says about one event; the sink adds keys and caps `raw`, `text` and `tool`. */
export interface EventInput {
  sessionId: string
  thread: string
  nativeKey: string
  seq: number
  ts: string | null
  kind: NormalizedEvent['kind']
  nativeType?: string | undefined
  role?: string | undefined
  model?: string | undefined
  text?: string | undefined
  tool?: ToolInfo | undefined
  usage?: TokenUsage | undefined
  rev?: number | undefined
  tombstone?: boolean | undefined
  raw?: string | undefined
  oversize?: { bytes: number; sha256: string } | undefined
  offset?: number | undefined
  line?: number | undefined
  /** Overrides the thread part of the key (Claude usage is keyed session-wide). */
  keyThread?: string | undefined
}

/** Collects sessions, events and errors for one file. */
export class ParseSink {
  readonly events: NormalizedEvent[] = []
  readonly errors: ParseError[] = []
  private readonly sessions = new Map<string, SessionBuilder>()

  constructor(
    readonly agent: AgentId,
    readonly path: string,
  ) {}

  session(sourceSessionId: string): SessionBuilder {
    let s = this.sessions.get(sourceSessionId)
    if (!s) {
      s = new SessionBuilder(this.agent, sourceSessionId, this.path)
      this.sessions.set(sourceSessionId, s)
    }
    return s
  }

  hasSession(sourceSessionId: string): boolean {
    return this.sessions.has(sourceSessionId)
  }

  build(e: EventInput): NormalizedEvent {
    const ev: NormalizedEvent = {
      event_key: eventKey(this.agent, e.sessionId, e.keyThread ?? e.thread, e.nativeKey),
      session_key: sessionKey(this.agent, e.sessionId),
      thread: e.thread,
      seq: e.seq,
      ts: e.ts,
      kind: e.kind,
    }
    if (e.nativeType !== undefined) ev.native_type = e.nativeType
    if (e.role !== undefined) ev.role = e.role
    if (e.model !== undefined) ev.model = e.model
    if (e.text !== undefined) ev.text = capText(e.text)
    if (e.tool !== undefined) ev.tool = capTool(e.tool)
    if (e.usage !== undefined) ev.usage = e.usage
    if (e.rev !== undefined) ev.rev = e.rev
    if (e.tombstone) ev.tombstone = true
    if (e.raw !== undefined) Object.assign(ev, capRaw(e.raw, e.oversize))
    if (e.offset !== undefined || e.line !== undefined) {
      ev.src = { path: this.path }
      if (e.offset !== undefined) ev.src.offset = e.offset
      if (e.line !== undefined) ev.src.line = e.line
    }
    return ev
  }

  add(e: EventInput): NormalizedEvent {
    const ev = this.build(e)
    this.events.push(ev)
    return ev
  }

  /** A line that is not JSON (or too long to parse): an `error` event, then go on. */
  badLine(sessionId: string, thread: string, line: JsonLine, nativeKey: string): void {
    const oversize = line.oversize !== undefined
    this.add({
      sessionId,
      thread,
      nativeKey,
      seq: line.index,
      ts: null,
      kind: oversize ? 'meta' : 'error',
      nativeType: sniffType(line.text),
      text: oversize
        ? `record of ${line.oversize?.bytes} bytes kept as a hashed stub`
        : `malformed line ${line.index + 1}: ${line.problem}`,
      raw: line.text,
      oversize: line.oversize,
      offset: line.offset,
      line: line.index,
    })
    if (!oversize) {
      this.errors.push({
        path: this.path,
        offset: line.offset,
        line: line.index,
        message: `malformed JSON: ${line.problem}`,
      })
    }
  }

  result(nextOffset: number): ParseResult {
    return {
      sessions: [...this.sessions.values()].map((s) => s.build()),
      events: this.events,
      nextOffset,
      errors: this.errors,
    }
  }
}

/** Accumulates what the records of a file say about one session. */
export class SessionBuilder {
  cwd: string | null = null
  gitBranch: string | null = null
  model: string | null = null
  title: string | null = null
  /** Lower-priority title (Claude `summary`, Copilot prompt summary). */
  fallbackTitle: string | null = null
  startedAt: string | null = null
  endedAt: string | null = null
  host: string | undefined
  parentSourceSessionId: string | undefined
  relation: SessionRelation | undefined
  private readonly versions: string[] = []

  constructor(
    readonly agent: AgentId,
    readonly sourceSessionId: string,
    readonly path: string,
  ) {}

  seen(ts: string | null): void {
    if (ts == null) return
    if (this.startedAt == null || ts < this.startedAt) this.startedAt = ts
    if (this.endedAt == null || ts > this.endedAt) this.endedAt = ts
  }

  version(v: unknown): void {
    if (typeof v === 'string' && v !== '' && this.versions.at(-1) !== v) {
      if (!this.versions.includes(v)) this.versions.push(v)
    }
  }

  build(): NormalizedSession {
    const s: NormalizedSession = {
      agent: this.agent,
      source_session_id: this.sourceSessionId,
      session_key: sessionKey(this.agent, this.sourceSessionId),
      cwd: this.cwd,
      git_branch: this.gitBranch,
      model: this.model,
      title: this.title ?? this.fallbackTitle,
      started_at: this.startedAt,
      ended_at: this.endedAt,
      source_paths: [this.path],
    }
    if (this.parentSourceSessionId !== undefined) {
      s.parent_source_session_id = this.parentSourceSessionId
      s.parent_session_key = sessionKey(this.agent, this.parentSourceSessionId)
    }
    if (this.relation !== undefined) s.relation = this.relation
    if (this.versions.length > 0) s.agent_versions = [...this.versions]
    if (this.host !== undefined) s.host = this.host
    return s
  }
}

/** First line of a text, trimmed to `max` characters: titles from long prompts. */
export function titleFrom(text: string | undefined, max = 120): string | null {
  if (!text) return null
  const line = text.trim().split(/\r?\n/, 1)[0]?.trim() ?? ''
  if (line === '') return null
  return line.length > max ? `${line.slice(0, max - 1)}…` : line
}
