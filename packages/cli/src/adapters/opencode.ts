import { readFile, readdir, stat } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { ParseSink, isRecord, num, str, titleFrom, toIso, usageOf } from './normalize.js'
import { homeOf, walk } from './files.js'
import type { AdapterEnv, AgentAdapter, ParseOptions, ParseResult, SessionFile } from './types.js'

export const ENV_XDG_DATA_HOME = 'XDG_DATA_HOME'

/**
 * opencode, JSON object storage under `${XDG_DATA_HOME:-~/.local/share}/opencode/`:
 * - ≤ 0.5: `project/<id>/storage/session/{info/<ses>.json, message/<ses>/<msg>.json,
 *   part/<ses>/<msg>/<prt>.json}` (checked against a real 0.5.28 store);
 * - 0.6–1.1: `storage/{session/<projectID>/<ses>.json, message/<ses>/<msg>.json,
 *   part/<msg>/<prt>.json}` (from the format notes; no real sample).
 *
 * The session's info file is what `discover` returns; `parse` reads the whole session.
 * Objects are rewritten in place while a response streams, so every event carries
 * `rev` = the object file's mtime (ms): a changed part is an upsert, not a new event.
 * Keys: `m:<msg id>` (message), `p:<part id>` (part), `m:<msg id>#usage`.
 *
 * Left out: the SQLite store of ≥ 1.2 (`opencode.db`; it also holds account tokens, so
 * it must never be uploaded whole) and `prompt-history.jsonl` (typed prompts only).
 */
export const opencodeAdapter: AgentAdapter = {
  id: 'opencode',

  defaultRoots(env: AdapterEnv = process.env, home?: string) {
    return [join(env[ENV_XDG_DATA_HOME] ?? join(homeOf(home), '.local', 'share'), 'opencode')]
  },

  async discover(roots) {
    const files: SessionFile[] = []
    for (const root of roots) {
      const paths = await walk(root, (p, name) => {
        if (!/^ses_.*\.json$/.test(name)) return false
        const parent = basename(dirname(p))
        const grand = basename(dirname(dirname(p)))
        // 0.5: session/info/<ses>.json; 0.6+: session/<projectID>/<ses>.json
        return (parent === 'info' && grand === 'session') || grand === 'session'
      })
      for (const path of paths) files.push({ agent: 'opencode', path, root })
    }
    return files
  },

  parse(file, options) {
    return parseOpencode(file, options)
  },
}

async function readJson(
  path: string,
): Promise<{ value: Record<string, unknown>; rev: number; text: string } | null> {
  try {
    const [text, st] = await Promise.all([readFile(path, 'utf8'), stat(path)])
    const value = JSON.parse(text) as unknown
    return isRecord(value) ? { value, rev: Math.floor(st.mtimeMs), text } : null
  } catch {
    return null
  }
}

async function jsonFiles(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir))
      .filter((n) => n.endsWith('.json'))
      .sort()
      .map((n) => join(dir, n))
  } catch {
    return []
  }
}

async function parseOpencode(file: SessionFile, _options: ParseOptions = {}): Promise<ParseResult> {
  const sink = new ParseSink('opencode', file.path)
  const info = await readJson(file.path)
  if (!info) {
    sink.errors.push({ path: file.path, message: 'unreadable session info (will retry)' })
    return sink.result(0)
  }
  const sid = str(info.value.id) ?? basename(file.path, '.json')
  const session = sink.session(sid)
  const time = isRecord(info.value.time) ? info.value.time : {}
  session.seen(toIso(time.created))
  session.seen(toIso(time.updated))
  session.version(info.value.version)
  session.cwd = str(info.value.directory) ?? null
  const title = str(info.value.title)
  // opencode names untitled sessions "New session - <date>"; a prompt is a better title.
  if (title && !/^New session - /.test(title)) session.title = title
  if (str(info.value.parentID)) {
    session.parentSourceSessionId = str(info.value.parentID)
    session.relation = 'subagent'
  }

  const legacy = basename(dirname(file.path)) === 'info'
  const storage = legacy ? dirname(dirname(file.path)) : dirname(dirname(dirname(file.path)))
  const msgPaths = await jsonFiles(join(storage, 'message', sid))
  let seq = 0
  for (const mp of msgPaths) {
    const msg = await readJson(mp)
    if (!msg) {
      sink.errors.push({ path: mp, message: 'unreadable message JSON (will retry)' })
      continue
    }
    const m = msg.value
    const mid = str(m.id) ?? basename(mp, '.json')
    const role = str(m.role) ?? 'unknown'
    const mt = isRecord(m.time) ? m.time : {}
    const ts = toIso(mt.created)
    session.seen(ts)
    session.seen(toIso(mt.completed))
    const model = str(m.modelID)
    if (model) session.model = model
    const path = isRecord(m.path) ? m.path : {}
    session.cwd ??= str(path.cwd) ?? null
    const base = { sessionId: sid, thread: 'main', ts, role, model, rev: msg.rev }
    sink.add({
      ...base,
      nativeKey: `m:${mid}`,
      seq: seq++,
      kind: 'meta',
      nativeType: `message/${role}`,
      raw: msg.text,
    })
    if (isRecord(m.error)) {
      const data = isRecord(m.error.data) ? m.error.data : {}
      sink.add({
        ...base,
        nativeKey: `m:${mid}#error`,
        seq: seq++,
        kind: 'error',
        text: str(data.message) ?? str(m.error.name),
      })
    }
    const partDir = legacy ? join(storage, 'part', sid, mid) : join(storage, 'part', mid)
    for (const pp of await jsonFiles(partDir)) {
      const part = await readJson(pp)
      if (!part) {
        sink.errors.push({ path: pp, message: 'unreadable part JSON (will retry)' })
        continue
      }
      const p = part.value
      const pid = str(p.id) ?? basename(pp, '.json')
      const pbase = {
        ...base,
        nativeKey: `p:${pid}`,
        seq: seq++,
        rev: part.rev,
        nativeType: `part/${str(p.type) ?? '?'}`,
        raw: part.text,
      }
      switch (p.type) {
        case 'text':
          sink.add({
            ...pbase,
            kind: role === 'user' ? 'user_message' : 'assistant_message',
            text: str(p.text),
          })
          break
        case 'reasoning':
          sink.add({ ...pbase, kind: 'reasoning', text: str(p.text) })
          break
        case 'tool': {
          const state = isRecord(p.state) ? p.state : {}
          sink.add({
            ...pbase,
            kind: 'tool_call',
            tool: { name: str(p.tool) ?? 'unknown', call_id: str(p.callID), input: state.input },
          })
          if (state.output !== undefined || state.error !== undefined) {
            sink.add({
              ...pbase,
              nativeKey: `p:${pid}#result`,
              seq: seq++,
              kind: 'tool_result',
              raw: undefined,
              tool: {
                name: str(p.tool) ?? 'unknown',
                call_id: str(p.callID),
                output: state.output ?? state.error,
                is_error: state.status === 'error',
              },
            })
          }
          break
        }
        default:
          sink.add({ ...pbase, kind: 'meta' })
      }
    }
    const tokens = isRecord(m.tokens) ? m.tokens : undefined
    if (role === 'assistant' && tokens) {
      const cache = isRecord(tokens.cache) ? tokens.cache : {}
      const usage = usageOf({
        input_tokens: num(tokens.input),
        output_tokens: num(tokens.output) + num(tokens.reasoning),
        cache_read: num(cache.read),
        cache_write: num(cache.write),
        reasoning: num(tokens.reasoning),
      })
      sink.add({ ...base, nativeKey: `m:${mid}#usage`, seq: seq++, kind: 'usage', usage })
    }
  }
  session.fallbackTitle =
    titleFrom(sink.events.find((e) => e.kind === 'user_message')?.text) ?? title ?? null
  return sink.result((await stat(file.path)).size)
}
