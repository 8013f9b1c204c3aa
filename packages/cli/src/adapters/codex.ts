import { open } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { scanJsonl, scanLines, sha256Hex, type JsonLine } from './jsonl.js'
import {
  ParseSink,
  isRecord,
  num,
  str,
  titleFrom,
  toIso,
  usageIsZero,
  usageOf,
} from './normalize.js'
import { homeOf, isDir, walk } from './files.js'
import type { AdapterEnv, AgentAdapter, ParseOptions, ParseResult, SessionFile } from './types.js'

export const ENV_CODEX_HOME = 'CODEX_HOME'

/** `event_msg` types that mirror `response_item`s: the transcript is built from the items. */
const MIRRORS = new Set([
  'user_message',
  'agent_message',
  'agent_reasoning',
  'agent_reasoning_raw_content',
  'exec_command_end',
])

const RESPONSE_ITEM_TYPES = new Set([
  'message',
  'reasoning',
  'function_call',
  'function_call_output',
  'custom_tool_call',
  'custom_tool_call_output',
  'local_shell_call',
  'web_search_call',
])

/** Context Codex injects as `user` messages; they are not what the person typed. */
const INJECTED =
  /^\s*(<environment_context>|<user_instructions>|<permissions instructions>|# AGENTS\.md instructions|<turn_aborted>)/

const ROLLOUT =
  /rollout-.*?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.jsonl(\.zst)?$/

/**
 * OpenAI Codex: `${CODEX_HOME:-~/.codex}/sessions/YYYY/MM/DD/rollout-*.jsonl`, plus
 * `archived_sessions/` and compressed `.jsonl.zst` (plain wins when both exist).
 *
 * - Session = the first `session_meta` id; record key `n:<ordinal>` or `l:<line>`.
 * - Resume/fork files replay the parent's history after a second `session_meta`. That
 *   prefix is not re-emitted (one `meta` event says how many records were inherited);
 *   the session links to its parent with `relation` `resume`, `fork` or `subagent`.
 * - `token_count` is cumulative: usage events carry the difference of `total_token_usage`
 *   (the replayed prefix counts as already seen). `input_tokens` excludes cached input.
 * - `event_msg` mirrors of response items are skipped; other event types are kept.
 */
export const codexAdapter: AgentAdapter = {
  id: 'codex',

  defaultRoots(env: AdapterEnv = process.env, home?: string) {
    return [env[ENV_CODEX_HOME] ?? join(homeOf(home), '.codex')]
  },

  async discover(roots) {
    const files: SessionFile[] = []
    for (const root of roots) {
      const dirs = [join(root, 'sessions'), join(root, 'archived_sessions')]
      const home = (await isDir(dirs[0])) || (await isDir(dirs[1]))
      const accept = (_p: string, name: string) =>
        /\.jsonl(\.zst)?$/.test(name) &&
        (home ? name.startsWith('rollout-') : !/^(history|session_index)\.jsonl/.test(name))
      const paths = home
        ? [...(await walk(dirs[0], accept)), ...(await walk(dirs[1], accept))]
        : await walk(root, accept)
      const plain = new Set(paths.filter((p) => p.endsWith('.jsonl')))
      for (const path of paths) {
        // The compressor deletes the plain file after the rename; until then, read plain.
        if (path.endsWith('.zst') && plain.has(path.slice(0, -4))) continue
        files.push({ agent: 'codex', path, root })
      }
    }
    return files
  },

  parse(file, options) {
    return parseCodex(file, options)
  },
}

interface Totals {
  input: number
  cached: number
  output: number
  reasoning: number
}

async function parseCodex(file: SessionFile, options: ParseOptions = {}): Promise<ParseResult> {
  const sink = new ParseSink('codex', file.path)
  const from = options.fromOffset ?? 0
  // Read from the start: session_meta, the replay prefix and the last cumulative token
  // count all come from earlier lines; only lines at or after `from` are emitted.
  const lines: JsonLine[] = []
  let nextOffset: number
  try {
    ;({ nextOffset } = await scanJsonl(file.path, {}, (l) => lines.push(l)))
  } catch (err) {
    sink.errors.push({ path: file.path, message: `unreadable: ${(err as Error).message}` })
    return sink.result(from)
  }
  if (lines.length === 0) return sink.result(from)

  const fromName = ROLLOUT.exec(basename(file.path))?.[1]
  const metas = lines.flatMap((l, i) =>
    isRecord(l.value) && (l.value.type === 'session_meta' || isLegacyMeta(l.value, i))
      ? [{ i, p: payloadOf(l.value) }]
      : [],
  )
  const own = metas[0]?.i === 0 ? metas[0].p : undefined
  const sid = str(own?.id) ?? fromName ?? basename(file.path).replace(/\.jsonl(\.zst)?$/, '')
  const session = sink.session(sid)
  if (own) {
    session.cwd = str(own.cwd) ?? null
    session.host = str(own.originator)
    session.version(own.cli_version)
    session.seen(toIso(own.timestamp))
    const git = isRecord(own.git) ? own.git : {}
    session.gitBranch = str(git.branch) ?? null
    const spawn = subagentSpawn(own.source)
    const parent = str(own.forked_from_id) ?? str(spawn?.parent_thread_id)
    if (parent) {
      session.parentSourceSessionId = parent
      session.relation = spawn ? 'subagent' : 'fork'
    }
  }

  // Replay prefix: a second session_meta (another id) right after the first.
  const replay = metas.find((m) => m.i > 0 && m.i <= 3 && str(m.p.id) !== sid)
  let prefixEnd = 0 // first line index that is this session's own
  if (replay) {
    const parentId = str(replay.p.id)!
    if (!session.parentSourceSessionId) {
      session.parentSourceSessionId = parentId
      session.relation = 'resume'
    }
    prefixEnd = await replayEnd(lines, replay.i, own, parentId, file.root)
  }

  const totals: Totals = { input: 0, cached: 0, output: 0, reasoning: 0 }
  const callNames = new Map<string, string>()
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]
    const emit = line.offset >= from
    const o = line.value
    const nativeKey =
      isRecord(o) && typeof o.ordinal === 'number' ? `n:${o.ordinal}` : `l:${line.index}`
    if (!isRecord(o)) {
      if (emit) sink.badLine(sid, 'main', line, nativeKey)
      continue
    }
    const type = isLegacyMeta(o, i)
      ? 'session_meta'
      : (str(o.type) ?? (str(o.record_type) ? `record_type/${str(o.record_type)}` : 'unknown'))
    const p = payloadOf(o)
    const ptype = str(p.type)
    const ts = toIso(o.timestamp)
    const inPrefix = replay !== undefined && i >= replay.i && i < prefixEnd

    // Cumulative usage is tracked over every line, emitted or not.
    let usage
    if (type === 'event_msg' && ptype === 'token_count' && isRecord(p.info)) {
      usage = tokenDelta(p.info, totals)
    }
    if (inPrefix) {
      if (type === 'turn_context') session.model ??= str(p.model) ?? null
      if (i === replay.i && emit) {
        sink.add({
          sessionId: sid,
          thread: 'main',
          nativeKey,
          seq: line.index,
          ts,
          kind: 'meta',
          nativeType: 'replayed_history',
          text: `inherited ${prefixEnd - replay.i} records of session ${str(p.id)}; not repeated here`,
          raw: line.text,
          offset: line.offset,
          line: line.index,
        })
      }
      continue
    }
    if (type === 'turn_context') {
      session.model = str(p.model) ?? session.model
      session.cwd ??= str(p.cwd) ?? null
    }
    if (type === 'response_item' && (ptype === 'function_call' || ptype === 'custom_tool_call')) {
      const id = str(p.call_id)
      if (id) callNames.set(id, str(p.name) ?? 'unknown')
    }
    session.seen(ts)
    if (!emit) continue

    const base = {
      sessionId: sid,
      thread: 'main',
      nativeKey,
      seq: line.index,
      ts,
      nativeType: ptype ? `${type}/${ptype}` : type,
      raw: line.text,
      offset: line.offset,
      line: line.index,
    }
    if (type === 'session_meta' || type === 'turn_context' || type.startsWith('record_type/')) {
      sink.add({ ...base, kind: 'meta' })
    } else if (type === 'compacted') {
      sink.add({ ...base, kind: 'compaction', text: str(p.message) })
    } else if (
      type === 'response_item' ||
      (ptype && RESPONSE_ITEM_TYPES.has(ptype) && !o.payload)
    ) {
      sink.add({ ...base, ...responseItem(p, callNames) })
    } else if (type === 'event_msg') {
      if (ptype === 'token_count') {
        if (usage && !usageIsZero(usage))
          sink.add({ ...base, kind: 'usage', usage, model: session.model ?? undefined })
      } else if (ptype && MIRRORS.has(ptype)) {
        continue
      } else if (ptype === 'error' || ptype === 'stream_error') {
        sink.add({ ...base, kind: 'error', text: str(p.message) })
      } else if (
        ptype === 'task_started' ||
        ptype === 'task_complete' ||
        ptype === 'turn_aborted'
      ) {
        sink.add({ ...base, kind: 'system', text: str(p.reason) ?? str(p.last_agent_message) })
      } else {
        sink.add({ ...base, kind: 'meta' })
      }
    } else {
      sink.add({ ...base, kind: 'meta', text: `unknown record type ${type}` })
    }
  }
  const firstPrompt = sink.events.find((e) => e.kind === 'user_message')?.text
  session.fallbackTitle = titleFrom(firstPrompt)
  const title = await threadName(file.root, sid)
  if (title) session.title = title
  return sink.result(Math.max(nextOffset, from))
}

function payloadOf(o: Record<string, unknown>): Record<string, unknown> {
  return isRecord(o.payload) ? o.payload : o
}

/** Pre-envelope rollouts (before ~0.30) start with a bare `{id, timestamp, instructions}`. */
function isLegacyMeta(o: Record<string, unknown>, i: number): boolean {
  return i === 0 && o.type === undefined && typeof o.id === 'string' && 'timestamp' in o
}

function subagentSpawn(source: unknown): Record<string, unknown> | undefined {
  if (!isRecord(source) || !isRecord(source.subagent)) return undefined
  const spawn = source.subagent.thread_spawn
  return isRecord(spawn) ? spawn : {}
}

function textOf(content: unknown): string | undefined {
  if (typeof content === 'string') return content
  if (!Array.isArray(content)) return undefined
  const parts = (content as unknown[]).flatMap((c) =>
    isRecord(c)
      ? typeof c.text === 'string'
        ? [c.text]
        : c.type === 'input_image'
          ? ['[image]']
          : []
      : [],
  )
  return parts.length ? parts.join('\n') : undefined
}

function parseArgs(s: unknown): unknown {
  if (typeof s !== 'string') return s
  try {
    return JSON.parse(s) as unknown
  } catch {
    return s
  }
}

function responseItem(p: Record<string, unknown>, callNames: Map<string, string>) {
  const callId = str(p.call_id)
  switch (p.type) {
    case 'message': {
      const role = str(p.role) ?? 'unknown'
      const text = textOf(p.content)
      const kind =
        role === 'assistant'
          ? 'assistant_message'
          : role === 'user' && !INJECTED.test(text ?? '')
            ? 'user_message'
            : 'system'
      return { kind, role, text } as const
    }
    case 'reasoning': {
      const summary = Array.isArray(p.summary)
        ? (p.summary as unknown[]).flatMap((s) =>
            isRecord(s) && typeof s.text === 'string' ? [s.text] : [],
          )
        : []
      const content = textOf(p.content)
      return { kind: 'reasoning', text: summary.length ? summary.join('\n\n') : content } as const
    }
    case 'function_call':
    case 'custom_tool_call':
      return {
        kind: 'tool_call',
        tool: {
          name: str(p.name) ?? 'unknown',
          call_id: callId,
          input: parseArgs(p.arguments ?? p.input),
        },
      } as const
    case 'function_call_output':
    case 'custom_tool_call_output':
      return {
        kind: 'tool_result',
        tool: { name: callNames.get(callId ?? '') ?? 'unknown', call_id: callId, output: p.output },
      } as const
    case 'local_shell_call':
      return {
        kind: 'tool_call',
        tool: { name: 'local_shell', call_id: callId, input: p.action },
      } as const
    case 'web_search_call':
      return { kind: 'tool_call', tool: { name: 'web_search', input: p.action } } as const
    default:
      return { kind: 'meta', text: `unknown response item ${String(p.type)}` } as const
  }
}

function tokenDelta(info: Record<string, unknown>, totals: Totals) {
  const total = isRecord(info.total_token_usage) ? info.total_token_usage : undefined
  const last = isRecord(info.last_token_usage) ? info.last_token_usage : undefined
  if (!total) return undefined
  const now: Totals = {
    input: num(total.input_tokens),
    cached: num(total.cached_input_tokens),
    output: num(total.output_tokens),
    reasoning: num(total.reasoning_output_tokens),
  }
  let d: Totals
  if (now.input < totals.input || now.output < totals.output) {
    // The counter restarted: the last call is all we can trust.
    d = {
      input: num(last?.input_tokens),
      cached: num(last?.cached_input_tokens),
      output: num(last?.output_tokens),
      reasoning: num(last?.reasoning_output_tokens),
    }
  } else {
    d = {
      input: now.input - totals.input,
      cached: now.cached - totals.cached,
      output: now.output - totals.output,
      reasoning: now.reasoning - totals.reasoning,
    }
  }
  Object.assign(totals, now)
  return usageOf({
    input_tokens: d.input - d.cached,
    output_tokens: d.output,
    cache_read: d.cached,
    reasoning: d.reasoning,
  })
}

/**
 * Index of the first line after the replayed parent history.
 *
 * With the parent rollout on disk, the prefix is the run of lines whose payload (without
 * timestamps) occurs in the parent. Without it: the replay is written in one burst when
 * the file is created, so it ends at the first turn that started after this session was
 * created, or at the first pause of more than 2 s between lines.
 */
async function replayEnd(
  lines: JsonLine[],
  start: number,
  own: Record<string, unknown> | undefined,
  parentId: string,
  root: string,
): Promise<number> {
  const parentPath = await findRollout(root, parentId)
  if (parentPath) {
    const seen = new Map<string, number>()
    await scanLines(parentPath, {}, (l) => {
      const h = contentHash(l.text)
      seen.set(h, (seen.get(h) ?? 0) + 1)
    })
    let i = start + 1
    for (; i < lines.length; i++) {
      const h = contentHash(lines[i].text)
      const n = seen.get(h) ?? 0
      if (n === 0) break
      seen.set(h, n - 1)
    }
    return i
  }
  const created = Date.parse(str(own?.timestamp) ?? '') || 0
  let prevTs = Date.parse(str((lines[start].value as Record<string, unknown>).timestamp) ?? '')
  for (let i = start + 1; i < lines.length; i++) {
    const o = lines[i].value
    if (!isRecord(o)) return i
    const p = payloadOf(o)
    const ts = Date.parse(str(o.timestamp) ?? '')
    if (Number.isFinite(ts) && Number.isFinite(prevTs) && ts - prevTs > 2000) return i
    if (Number.isFinite(ts)) prevTs = ts
    const started = typeof p.started_at === 'number' ? p.started_at * 1000 : NaN
    if (created && Number.isFinite(started) && started >= created) return i
    const turn = str(p.turn_id)
    if (created && turn && uuidV7Ms(turn) >= created) return i
  }
  return lines.length
}

/** Payload of a rollout line without its envelope timestamp. */
function contentHash(text: string): string {
  try {
    const o = JSON.parse(text) as unknown
    if (isRecord(o)) {
      const { timestamp: _t, ...rest } = o
      return sha256Hex(JSON.stringify(rest))
    }
  } catch {
    // fall through: hash the bytes
  }
  return sha256Hex(text)
}

function uuidV7Ms(id: string): number {
  const hex = id.replace(/-/g, '')
  if (hex.length !== 32 || hex[12] !== '7') return NaN
  return parseInt(hex.slice(0, 12), 16)
}

const rolloutIndex = new Map<string, Promise<Map<string, string>>>()

/** Finds the rollout file of a session id under a root (by file name, else by first line). */
async function findRollout(root: string, id: string): Promise<string | undefined> {
  let index = rolloutIndex.get(root)
  if (!index) {
    index = buildIndex(root)
    rolloutIndex.set(root, index)
    // Files appear over time: forget the index after a while.
    setTimeout(() => rolloutIndex.delete(root), 30_000).unref()
  }
  return (await index).get(id)
}

async function buildIndex(root: string): Promise<Map<string, string>> {
  const paths = await walk(
    root,
    (_p, name) => name.endsWith('.jsonl') || name.endsWith('.jsonl.zst'),
  )
  const map = new Map<string, string>()
  for (const path of paths) {
    const m = ROLLOUT.exec(basename(path))
    if (m?.[1]) {
      if (!map.has(m[1]) || path.endsWith('.jsonl')) map.set(m[1], path)
      continue
    }
    if (path.endsWith('.zst')) continue
    const first = await firstLine(path)
    try {
      const o = JSON.parse(first ?? '') as unknown
      const id = isRecord(o) ? str(payloadOf(o).id) : undefined
      if (id && !map.has(id)) map.set(id, path)
    } catch {
      // not a rollout
    }
  }
  return map
}

async function firstLine(path: string): Promise<string | undefined> {
  let fh
  try {
    fh = await open(path, 'r')
    const buf = Buffer.alloc(256 * 1024)
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0)
    const nl = buf.subarray(0, bytesRead).indexOf(0x0a)
    return buf.subarray(0, nl === -1 ? bytesRead : nl).toString('utf8')
  } catch {
    return undefined
  } finally {
    await fh?.close()
  }
}

const nameCache = new Map<string, Promise<Map<string, string>>>()

/** `thread_name` from `$CODEX_HOME/session_index.jsonl` (ids repeat; the last wins). */
async function threadName(root: string, id: string): Promise<string | undefined> {
  let names = nameCache.get(root)
  if (!names) {
    names = (async () => {
      const map = new Map<string, string>()
      try {
        await scanJsonl(join(root, 'session_index.jsonl'), {}, (l) => {
          const o = l.value
          if (isRecord(o) && str(o.id) && str(o.thread_name))
            map.set(str(o.id)!, str(o.thread_name)!)
        })
      } catch {
        // no index
      }
      return map
    })()
    nameCache.set(root, names)
    setTimeout(() => nameCache.delete(root), 30_000).unref()
  }
  return (await names).get(id)
}
