import { createHash } from 'node:crypto'
import { z } from 'zod'
import { AgentId, EventKind } from './names.js'

/** Lower-case hex SHA-256: the shape of every session and event key. */
const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'must be a lower-case hex SHA-256')

/**
 * ISO 8601 timestamp with a zone, as the agents write them (`2026-04-25T08:23:24.509Z`).
 * Year 0000 is refused: PostgreSQL has no year 0.
 */
const Timestamp = z.iso
  .datetime({ offset: true })
  .refine((v) => !v.startsWith('0000'), 'year 0000 does not exist (use 0001 or later)')

/**
 * Longest `raw` string an event carries (UTF-16 code units, about 256 KB of ASCII).
 * Longer records are cut, end with {@link RAW_TRUNCATION_MARKER}, and carry
 * `raw_oversize` with the full size and hash so the original line can be matched on disk.
 */
export const RAW_MAX_CHARS = 262_144

/** Appended to a cut `raw` string; followed by `<bytes> bytes sha256=<hex>]`. */
export const RAW_TRUNCATION_MARKER = '…[hivemind:truncated '

/** How a session relates to the one it came from. */
export const SessionRelation = z.enum(['fork', 'resume', 'subagent'])
export type SessionRelation = z.infer<typeof SessionRelation>

/**
 * `sha256(JSON.stringify([agent, sourceSessionId]))`: the session's identity on the wire,
 * the same on every machine that reads the same session.
 *
 * @example
 * sessionKey('codex', '019d924b-53f5-78f1-a0d4-69aa13191f54')
 * @see SESSION-FORMATS.md §B (idempotency keys)
 */
export function sessionKey(agent: AgentId, sourceSessionId: string): string {
  return sha256(JSON.stringify([agent, sourceSessionId]))
}

/**
 * `sha256(JSON.stringify([agent, sourceSessionId, thread, nativeKey]))`.
 *
 * `nativeKey` is what the agent itself uses to name the record (`u:<uuid>` for Claude,
 * `l:<line>` for Codex, `m:<message id>` for Gemini, `e:<id>` for Copilot, ...). The JSON
 * array keeps the four parts unambiguous whatever characters the ids hold. Including the
 * thread keeps Claude's fork copies (same uuid, other agent id) apart.
 *
 * @example
 * eventKey('claude-code', sessionId, 'main', `u:${uuid}`)
 * @see SESSION-FORMATS.md §B (idempotency keys)
 */
export function eventKey(
  agent: AgentId,
  sourceSessionId: string,
  thread: string,
  nativeKey: string,
): string {
  return sha256(JSON.stringify([agent, sourceSessionId, thread, nativeKey]))
}

/** Token counts of one model call (or one delta of a cumulative counter). */
export const TokenUsage = z.object({
  input_tokens: z.number().int().min(0),
  output_tokens: z.number().int().min(0),
  /** Prompt tokens served from the provider's cache. */
  cache_read: z.number().int().min(0),
  /** Prompt tokens written to the provider's cache. */
  cache_write: z.number().int().min(0),
  /** Reasoning / thinking tokens, when the agent reports them apart from output. */
  reasoning: z.number().int().min(0),
})
export type TokenUsage = z.infer<typeof TokenUsage>

/** A tool call and/or its result. `call_id` links a `tool_result` to its `tool_call`. */
export const ToolInfo = z.object({
  name: z.string(),
  call_id: z.string().optional(),
  input: z.unknown().optional(),
  output: z.unknown().optional(),
  is_error: z.boolean().optional(),
})
export type ToolInfo = z.infer<typeof ToolInfo>

/** Where a record sits on disk (informational; never part of a key). */
export const SourceLocation = z.object({
  path: z.string(),
  /** Byte offset of the record's first byte (in decompressed content for `.zst`). */
  offset: z.number().int().min(0).optional(),
  /** 0-based line index in the file, when the source is line-oriented. */
  line: z.number().int().min(0).optional(),
})
export type SourceLocation = z.infer<typeof SourceLocation>

/**
 * One agent session, normalised. Several files can describe the same session (Claude
 * subagent files, a resumed Gemini `.json` → `.jsonl`): they share `session_key`, and the
 * receiver merges them (earliest `started_at`, latest `ended_at`, non-null fields win).
 *
 * @example
 * {
 *   "agent": "codex", "source_session_id": "019d924b-…", "session_key": "…",
 *   "parent_session_key": "…", "relation": "subagent",
 *   "cwd": "/home/a/repo", "git_branch": "main", "model": "gpt-5-codex",
 *   "title": null, "started_at": "2026-04-15T17:58:23.701Z", "ended_at": "2026-04-15T18:02:00.000Z",
 *   "source_paths": ["/home/a/.codex/sessions/2026/04/15/rollout-….jsonl"]
 * }
 * @see SESSION-FORMATS.md §A
 */
export const NormalizedSession = z.object({
  agent: AgentId,
  source_session_id: z.string().min(1),
  session_key: Sha256Hex,
  parent_session_key: Sha256Hex.optional(),
  parent_source_session_id: z.string().optional(),
  relation: SessionRelation.optional(),
  cwd: z.string().nullable(),
  git_branch: z.string().nullable(),
  model: z.string().nullable(),
  title: z.string().nullable(),
  started_at: Timestamp.nullable(),
  ended_at: Timestamp.nullable(),
  /** Agent versions seen, in order (a resumed Claude file can change version mid-file). */
  agent_versions: z.array(z.string()).optional(),
  /** Which surface wrote it: Claude `entrypoint`, Codex `originator`, Copilot `producer`. */
  host: z.string().optional(),
  /** Files the session was read from on this machine. */
  source_paths: z.array(z.string()),
})
export type NormalizedSession = z.infer<typeof NormalizedSession>

/**
 * One normalised record of a session.
 *
 * - Uniqueness is on `event_key` (see {@link eventKey}).
 * - An event with `rev` replaces a stored one with a lower `rev` (Gemini re-appended
 *   messages, opencode objects rewritten in place, Claude usage growing while streaming).
 * - `tombstone: true` marks the record as removed at the source (Gemini `$rewindTo`).
 * - `raw` is the verbatim source record, cut at {@link RAW_MAX_CHARS} with a marker;
 *   `raw_oversize` then gives the full size and SHA-256.
 *
 * @example
 * {
 *   "event_key": "…", "session_key": "…", "thread": "main", "seq": 12,
 *   "ts": "2026-04-25T08:26:42.354Z", "kind": "user_message", "text": "can you connect …"
 * }
 * @see SESSION-FORMATS.md §A, §B
 */
export const NormalizedEvent = z.object({
  event_key: Sha256Hex,
  session_key: Sha256Hex,
  /** `main`, or the subagent / sidechain id the record belongs to. */
  thread: z.string().min(1),
  /** Order within the session file: line index, ordinal or byte offset. */
  seq: z.number().int().min(0),
  ts: Timestamp.nullable(),
  kind: EventKind,
  /** The agent's own record type (`assistant`, `response_item/function_call`, …). */
  native_type: z.string().optional(),
  role: z.string().optional(),
  model: z.string().optional(),
  text: z.string().optional(),
  tool: ToolInfo.optional(),
  usage: TokenUsage.optional(),
  rev: z.number().int().min(0).optional(),
  tombstone: z.boolean().optional(),
  raw: z
    .string()
    .max(RAW_MAX_CHARS + 200)
    .optional(),
  raw_oversize: z.object({ bytes: z.number().int().min(0), sha256: Sha256Hex }).optional(),
  src: SourceLocation.optional(),
})
export type NormalizedEvent = z.infer<typeof NormalizedEvent>

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex')
}
