import { readFile, stat } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { scanJsonl, sha256Hex, type JsonLine } from './jsonl.js'
import {
  ParseSink,
  isRecord,
  num,
  str,
  titleFrom,
  toIso,
  usageOf,
  type EventInput,
  type SessionBuilder,
} from './normalize.js'
import { homeOf, isDir, sleep, walk } from './files.js'
import type { AdapterEnv, AgentAdapter, ParseOptions, ParseResult, SessionFile } from './types.js'

export const ENV_GEMINI_CLI_HOME = 'GEMINI_CLI_HOME'

export interface GeminiAdapterOptions {
  /** A legacy `.json` modified more recently than this is still being written. @default 500 */
  quietMs?: number
  /** Reads of a half-written `.json` before giving up until the next call. @default 3 */
  retries?: number
  /** @default 200 */
  retryDelayMs?: number
}

/**
 * Gemini CLI: `${GEMINI_CLI_HOME:-~}/.gemini/tmp/<sha256(root) | slug>/chats/`.
 *
 * - Legacy `session-*.json` (whole file, rewritten in place without tmp+rename): read
 *   once its mtime is quiet, retried when half-written; `rev` = `lastUpdated` in ms.
 * - `session-*.jsonl` (v0.39+): the same message id is re-appended as it grows; the last
 *   version wins (`rev` = the header's `lastUpdated` in ms + line index, so a `.jsonl`
 *   that resumes a legacy `.json` outranks it: its re-appended copies, rewinds and
 *   replacements of the same message ids win). `$set` updates metadata (`summary` →
 *   title, `messages` → full replacement), `$rewindTo` tombstones that message and all
 *   after it.
 * - One message yields several events keyed `m:<id>`, `m:<id>#thoughts`,
 *   `m:<id>#call:<callId>`, `m:<id>#result:<callId>`, `m:<id>#usage`.
 * - Subagents (`chats/<parentSessionId>/<shortId>.json(l)`) are sessions of their own
 *   with `relation: subagent`, named `<parentSessionId>/<shortId>` (the 6-character short
 *   id alone would collide). cwd comes from `.project_root` or `projects.json`.
 */
export function createGeminiCliAdapter(opts: GeminiAdapterOptions = {}): AgentAdapter {
  return {
    id: 'gemini-cli',

    defaultRoots(env: AdapterEnv = process.env, home?: string) {
      return [join(env[ENV_GEMINI_CLI_HOME] ?? homeOf(home), '.gemini')]
    },

    async discover(roots) {
      const files: SessionFile[] = []
      for (const root of roots) {
        const tmp = join(root, 'tmp')
        const base = (await isDir(tmp)) ? tmp : root
        const paths = await walk(
          base,
          (p, name) =>
            /\.jsonl?$/.test(name) &&
            p.split(/[\\/]/).includes('chats') &&
            !name.startsWith('checkpoint-'),
          { skipDirs: new Set(['checkpoints', 'tool-outputs']) },
        )
        for (const path of paths) files.push({ agent: 'gemini-cli', path, root })
      }
      return files
    },

    parse(file, options) {
      return file.path.endsWith('.jsonl')
        ? parseJsonl(file, options)
        : parseLegacyJson(file, options, opts)
    },
  }
}

export const geminiCliAdapter: AgentAdapter = createGeminiCliAdapter()

type Msg = Record<string, unknown>

/** Final state of the events derived from messages, by native key. */
class MessageState {
  readonly byKey = new Map<string, EventInput & { at: number }>()
  /** Ids of the live messages in conversation order (a re-appended id keeps its place). */
  readonly order = new Set<string>()
  readonly keysOf = new Map<string, string[]>()

  constructor(private readonly sid: string) {}

  put(m: Msg, rev: number, seq: number, at: number, session: SessionBuilder): void {
    const id = str(m.id)
    if (!id) return
    this.order.add(id)
    const events = messageEvents(this.sid, m, rev, seq, session)
    this.keysOf.set(id, [
      ...new Set([...(this.keysOf.get(id) ?? []), ...events.map((e) => e.nativeKey)]),
    ])
    for (const e of events) this.byKey.set(e.nativeKey, { ...e, at })
  }

  /** `$rewindTo`: that message and every later one are gone. */
  rewind(id: string, rev: number, seq: number, at: number): void {
    if (!this.order.has(id)) return
    const ids = [...this.order]
    for (const gone of ids.slice(ids.indexOf(id))) this.tombstone(gone, rev, seq, at)
  }

  /** `$set.messages`: the list is replaced, and later rewinds count in its order. */
  replaceAll(messages: Msg[], rev: number, seq: number, at: number, session: SessionBuilder): void {
    const keep = new Set(messages.map((m) => str(m.id)).filter(Boolean))
    for (const id of [...this.order].filter((x) => !keep.has(x))) this.tombstone(id, rev, seq, at)
    this.order.clear()
    for (const m of messages) this.put(m, rev, seq, at, session)
  }

  private tombstone(id: string, rev: number, seq: number, at: number): void {
    for (const key of this.keysOf.get(id) ?? []) {
      const prev = this.byKey.get(key)
      this.byKey.set(key, {
        sessionId: this.sid,
        thread: 'main',
        nativeKey: key,
        seq,
        ts: null,
        kind: prev?.kind ?? 'meta',
        tombstone: true,
        rev,
        at,
      })
    }
    this.keysOf.delete(id)
    this.order.delete(id)
  }
}

function contentText(content: unknown): string | undefined {
  if (typeof content === 'string') return content === '' ? undefined : content
  if (!Array.isArray(content)) return undefined
  const t = (content as unknown[])
    .flatMap((p) => (isRecord(p) && typeof p.text === 'string' ? [p.text] : []))
    .join('\n')
  return t === '' ? undefined : t
}

function messageEvents(sid: string, m: Msg, rev: number, seq: number, session: SessionBuilder) {
  const id = str(m.id)!
  const ts = toIso(m.timestamp)
  session.seen(ts)
  const type = str(m.type) ?? 'unknown'
  const model = str(m.model)
  if (model) session.model = model
  const base = { sessionId: sid, thread: 'main', seq, ts, rev, nativeType: type, model }
  const out: EventInput[] = []
  const raw = JSON.stringify(m)
  switch (type) {
    case 'user':
      out.push({
        ...base,
        nativeKey: `m:${id}`,
        kind: 'user_message',
        role: 'user',
        text: contentText(m.content),
        raw,
      })
      break
    case 'gemini': {
      const thoughts = Array.isArray(m.thoughts)
        ? (m.thoughts as unknown[]).flatMap((t) =>
            isRecord(t) ? [[str(t.subject), str(t.description)].filter(Boolean).join(': ')] : [],
          )
        : []
      if (thoughts.length) {
        out.push({
          ...base,
          nativeKey: `m:${id}#thoughts`,
          kind: 'reasoning',
          role: 'assistant',
          text: thoughts.join('\n\n'),
        })
      }
      out.push({
        ...base,
        nativeKey: `m:${id}`,
        kind: 'assistant_message',
        role: 'assistant',
        text: contentText(m.content),
        raw,
      })
      for (const c of Array.isArray(m.toolCalls) ? (m.toolCalls as unknown[]) : []) {
        if (!isRecord(c)) continue
        const callId = str(c.id) ?? String(out.length)
        const name = str(c.name) ?? 'unknown'
        out.push({
          ...base,
          nativeKey: `m:${id}#call:${callId}`,
          kind: 'tool_call',
          tool: { name, call_id: callId, input: c.args },
        })
        if (c.result !== undefined && c.result != null) {
          out.push({
            ...base,
            nativeKey: `m:${id}#result:${callId}`,
            kind: 'tool_result',
            tool: { name, call_id: callId, output: c.result, is_error: c.status === 'error' },
          })
        }
      }
      if (isRecord(m.tokens)) {
        const t = m.tokens
        out.push({
          ...base,
          nativeKey: `m:${id}#usage`,
          kind: 'usage',
          // Gemini's `input` includes cached tokens and `output` excludes thoughts.
          usage: usageOf({
            input_tokens: num(t.input) - num(t.cached),
            output_tokens: num(t.output) + num(t.thoughts),
            cache_read: num(t.cached),
            reasoning: num(t.thoughts),
          }),
        })
      }
      break
    }
    case 'info':
    case 'warning':
      out.push({ ...base, nativeKey: `m:${id}`, kind: 'system', text: contentText(m.content), raw })
      break
    case 'error':
      out.push({ ...base, nativeKey: `m:${id}`, kind: 'error', text: contentText(m.content), raw })
      break
    default:
      out.push({
        ...base,
        nativeKey: `m:${id}`,
        kind: 'meta',
        text: `unknown message type ${type}`,
        raw,
      })
  }
  return out
}

/** The parent session id of a subagent chat, `chats/<parentSessionId>/<shortId>.json(l)`. */
function subagentParent(filePath: string): string | undefined {
  const dir = basename(dirname(filePath))
  return dir !== 'chats' && basename(dirname(dirname(filePath))) === 'chats' ? dir : undefined
}

/**
 * The source session id of a chat file. A subagent's own `sessionId` is a 6-character
 * short id, far too small to be unique across parents and users, so it is qualified by
 * its parent's: `<parentSessionId>/<shortId>`.
 */
function sessionIdOf(filePath: string, ownId: string): string {
  const parent = subagentParent(filePath)
  return parent === undefined ? ownId : `${parent}/${ownId}`
}

function applyMeta(session: SessionBuilder, meta: Msg, filePath: string): void {
  session.seen(toIso(meta.startTime))
  session.seen(toIso(meta.lastUpdated))
  if (str(meta.summary)) session.title = str(meta.summary)!
  const parent = subagentParent(filePath)
  if (meta.kind === 'subagent' || parent !== undefined) {
    session.relation = 'subagent'
    if (parent !== undefined) session.parentSourceSessionId = parent
  }
}

async function parseJsonl(file: SessionFile, options: ParseOptions = {}): Promise<ParseResult> {
  const from = options.fromOffset ?? 0
  const sink = new ParseSink('gemini-cli', file.path)
  let sid: string | undefined
  let state: MessageState | undefined
  let session: SessionBuilder | undefined
  // Added to line indexes: revs stay ordered within the file and above those of a legacy
  // `.json` of the same session (`lastUpdated` in ms), which a resume re-appends here.
  let revBase = 0
  const pending: { line: JsonLine }[] = []
  // Rewinds and re-appends refer to earlier lines, so the file is always read from 0
  // (Gemini files are small); only what changed at or after `from` is emitted.
  const { nextOffset } = await scanJsonl(file.path, {}, (line) => {
    const o = line.value
    if (!isRecord(o)) {
      pending.push({ line })
      return
    }
    if (!sid) {
      sid = sessionIdOf(file.path, str(o.sessionId) ?? basename(file.path).replace(/\.jsonl$/, ''))
      session = sink.session(sid)
      state = new MessageState(sid)
      if (str(o.sessionId)) {
        revBase = Math.max(
          Date.parse(str(o.lastUpdated) ?? '') || 0,
          Date.parse(str(o.startTime) ?? '') || 0,
        )
        applyMeta(session, o, file.path)
        return
      }
    }
    const s = session!
    const st = state!
    if (isRecord(o.$set)) {
      applyMeta(s, o.$set, file.path)
      if (Array.isArray(o.$set.messages)) {
        st.replaceAll(
          (o.$set.messages as unknown[]).filter(isRecord),
          revBase + line.index,
          line.index,
          line.offset,
          s,
        )
      }
    } else if (typeof o.$rewindTo === 'string') {
      st.rewind(o.$rewindTo, revBase + line.index, line.index, line.offset)
    } else if (str(o.id)) {
      st.put(o, revBase + line.index, line.index, line.offset, s)
    } else {
      pending.push({ line })
    }
  })
  if (!sid) {
    if (pending.length === 0) return sink.result(from)
    // Nothing but malformed or unknown lines: still a session (named by the file), so
    // their error events reach the server instead of vanishing.
    sid = sessionIdOf(file.path, basename(file.path).replace(/\.jsonl$/, ''))
    session = sink.session(sid)
    state = new MessageState(sid)
  }
  session!.cwd = await projectRoot(file.path)
  for (const e of state!.byKey.values()) if (e.at >= from) sink.add(e)
  for (const { line } of pending) {
    if (line.offset < from) continue
    if (line.value === undefined) sink.badLine(sid, 'main', line, `l:${line.index}`)
    else
      sink.add({
        sessionId: sid,
        thread: 'main',
        nativeKey: `l:${line.index}`,
        seq: line.index,
        ts: null,
        kind: 'meta',
        text: 'unknown record',
        raw: line.text,
        offset: line.offset,
        line: line.index,
      })
  }
  sink.events.sort((a, b) => a.seq - b.seq)
  session!.fallbackTitle = titleFrom(sink.events.find((e) => e.kind === 'user_message')?.text)
  return sink.result(nextOffset)
}

async function parseLegacyJson(
  file: SessionFile,
  options: ParseOptions = {},
  opts: GeminiAdapterOptions,
): Promise<ParseResult> {
  const sink = new ParseSink('gemini-cli', file.path)
  const quietMs = opts.quietMs ?? 500
  const retries = opts.retries ?? 3
  let doc: Msg | undefined
  let size = 0
  let lastError = ''
  for (let attempt = 0; attempt <= retries; attempt++) {
    if (attempt > 0) await sleep(opts.retryDelayMs ?? 200)
    try {
      const st = await stat(file.path)
      const age = Date.now() - st.mtimeMs
      if (age < quietMs) await sleep(quietMs - age)
      const buf = await readFile(file.path)
      size = buf.length
      const v = JSON.parse(buf.toString('utf8')) as unknown
      if (isRecord(v)) {
        doc = v
        break
      }
      lastError = 'not a JSON object'
    } catch (err) {
      lastError = (err as Error).message
    }
  }
  if (!doc) {
    // Probably caught mid-rewrite: report, and let the next call read it again.
    sink.errors.push({
      path: file.path,
      message: `unreadable session JSON (will retry): ${lastError}`,
    })
    return sink.result(options.fromOffset ?? 0)
  }
  const sid = sessionIdOf(
    file.path,
    str(doc.sessionId) ?? basename(file.path).replace(/\.json$/, ''),
  )
  const session = sink.session(sid)
  applyMeta(session, doc, file.path)
  session.cwd = await projectRoot(file.path)
  const rev = Date.parse(str(doc.lastUpdated) ?? '') || 0
  const state = new MessageState(sid)
  const messages = Array.isArray(doc.messages) ? (doc.messages as unknown[]) : []
  messages.forEach((m, i) => {
    if (isRecord(m)) state.put(m, rev, i, 0, session)
  })
  for (const e of state.byKey.values()) sink.add({ ...e, rev })
  sink.events.sort((a, b) => a.seq - b.seq)
  session.fallbackTitle = titleFrom(sink.events.find((e) => e.kind === 'user_message')?.text)
  // Whole documents are always re-read; the offset only records how much was seen.
  return sink.result(size)
}

/** `tmp/<slug>/.project_root`, else the `projects.json` entry whose slug or hash matches. */
async function projectRoot(chatFile: string): Promise<string | null> {
  let dir = dirname(chatFile)
  while (basename(dir) !== 'chats' && dirname(dir) !== dir) dir = dirname(dir)
  const projectDir = dirname(dir)
  const marker = await readFile(join(projectDir, '.project_root'), 'utf8').catch(() => null)
  if (marker?.trim()) return marker.trim()
  const id = basename(projectDir)
  const registry = await readFile(
    join(dirname(dirname(projectDir)), 'projects.json'),
    'utf8',
  ).catch(() => null)
  if (!registry) return null
  try {
    const projects = (JSON.parse(registry) as { projects?: Record<string, string> }).projects ?? {}
    for (const [path, slug] of Object.entries(projects)) {
      if (slug === id || sha256Hex(path) === id) return path
    }
  } catch {
    // ignore a broken registry
  }
  return null
}
