import { readFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { scanJsonl } from './jsonl.js'
import { ParseSink, isRecord, str, titleFrom } from './normalize.js'
import { homeOf, walk } from './files.js'
import type { AdapterEnv, AgentAdapter, ParseOptions, ParseResult, SessionFile } from './types.js'

export const ENV_CURSOR_HOME = 'CURSOR_HOME'

/**
 * Cursor agent (cursor-agent CLI and the IDE's agent transcripts).
 *
 * NO REAL SAMPLE: no real Cursor transcript was found in public repositories. This reader
 * follows the publicly documented layout (SESSION-FORMATS.md §4, secondary sources):
 * `~/.cursor/projects/<slug(path)>/agent-transcripts/<id>.txt` (blocks `user:`,
 * `assistant:`, `[Thinking]`, `[Tool call] X`, `[Tool result] X`) and, since about
 * February 2026, `…/agent-transcripts/<id>/<id>.jsonl` (`{role, message:{content:[…]}}`
 * and `{type:"turn_ended"}`, no timestamps, no ids).
 *
 * - Session = the transcript id (file stem); no cwd (the slug cannot be decoded), no
 *   model, no timestamps, no token usage: the transcripts don't carry them.
 * - Keys: `l:<line>` for JSONL; `o:<offset>` + `rev` = block length for `.txt` (the last
 *   block can still grow).
 * - Left out: `~/.cursor/chats/<md5(cwd)>/<id>/store.db` and the IDE's `state.vscdb`
 *   (SQLite stores rewritten in place; they need a poller, not this reader).
 */
export const cursorAdapter: AgentAdapter = {
  id: 'cursor',

  defaultRoots(env: AdapterEnv = process.env, home?: string) {
    return [env[ENV_CURSOR_HOME] ?? join(homeOf(home), '.cursor')]
  },

  async discover(roots) {
    const files: SessionFile[] = []
    for (const root of roots) {
      const paths = await walk(
        root,
        (p, name) => /\.(txt|jsonl)$/.test(name) && p.split(/[\\/]/).includes('agent-transcripts'),
        { skipDirs: new Set(['extensions', 'chats']) },
      )
      for (const path of paths) files.push({ agent: 'cursor', path, root })
    }
    return files
  },

  parse(file, options) {
    return file.path.endsWith('.jsonl') ? parseJsonl(file, options) : parseTxt(file, options)
  },
}

async function parseJsonl(file: SessionFile, options: ParseOptions = {}): Promise<ParseResult> {
  const sink = new ParseSink('cursor', file.path)
  const sid = basename(file.path).replace(/\.jsonl$/, '')
  const session = sink.session(sid)
  let turn = 0
  const { nextOffset } = await scanJsonl(
    file.path,
    { fromOffset: options.fromOffset ?? 0 },
    (line) => {
      const o = line.value
      const base = {
        sessionId: sid,
        thread: 'main',
        nativeKey: `l:${line.index}`,
        seq: line.index,
        ts: null,
        raw: line.text,
        offset: line.offset,
        line: line.index,
      }
      if (!isRecord(o)) {
        sink.badLine(sid, 'main', line, base.nativeKey)
        return
      }
      if (o.type === 'turn_ended') {
        sink.add({
          ...base,
          kind: 'system',
          nativeType: 'turn_ended',
          text: `turn ${++turn} ended`,
        })
        return
      }
      const role = str(o.role)
      const msg = isRecord(o.message) ? o.message : {}
      const content =
        typeof msg.content === 'string' ? [{ type: 'text', text: msg.content }] : msg.content
      if (!role || !Array.isArray(content)) {
        sink.add({
          ...base,
          kind: 'meta',
          nativeType: str(o.type) ?? 'unknown',
          text: 'unknown record',
        })
        return
      }
      let n = 0
      for (const c of content as unknown[]) {
        if (!isRecord(c)) continue
        const key = n === 0 ? base.nativeKey : `${base.nativeKey}#${n}`
        const withRaw = n === 0 ? {} : { raw: undefined }
        n++
        if (c.type === 'tool_use') {
          sink.add({
            ...base,
            ...withRaw,
            nativeKey: key,
            role,
            kind: 'tool_call',
            tool: { name: str(c.name) ?? 'unknown', call_id: str(c.id), input: c.input },
          })
        } else if (c.type === 'tool_result') {
          sink.add({
            ...base,
            ...withRaw,
            nativeKey: key,
            role,
            kind: 'tool_result',
            tool: { name: 'unknown', call_id: str(c.tool_use_id), output: c.content },
          })
        } else if (c.type === 'thinking' || c.type === 'reasoning') {
          sink.add({
            ...base,
            ...withRaw,
            nativeKey: key,
            role,
            kind: 'reasoning',
            text: str(c.thinking) ?? str(c.text),
          })
        } else {
          sink.add({
            ...base,
            ...withRaw,
            nativeKey: key,
            role,
            kind: role === 'user' ? 'user_message' : 'assistant_message',
            text: str(c.text),
          })
        }
      }
    },
  )
  session.fallbackTitle = titleFrom(sink.events.find((e) => e.kind === 'user_message')?.text)
  return sink.result(nextOffset)
}

const TXT_BLOCK = /^(user:|assistant:|\[Thinking\]|\[Tool call\]|\[Tool result\])\s*(.*)$/

async function parseTxt(file: SessionFile, options: ParseOptions = {}): Promise<ParseResult> {
  const sink = new ParseSink('cursor', file.path)
  const from = options.fromOffset ?? 0
  const sid = basename(file.path).replace(/\.txt$/, '')
  const session = sink.session(sid)
  const buf = await readFile(file.path)
  const end = buf.lastIndexOf(0x0a) + 1
  const lines = buf.subarray(0, end).toString('utf8').split('\n')
  let offset = 0
  let cur: { tag: string; head: string; offset: number; body: string[]; bytes: number } | undefined
  let seq = 0
  const flush = () => {
    if (!cur) return
    const b = cur
    cur = undefined
    if (b.offset + b.bytes <= from) return
    const text = [b.head, ...b.body].join('\n').trim()
    const base = {
      sessionId: sid,
      thread: 'main',
      nativeKey: `o:${b.offset}`,
      rev: b.bytes,
      seq: seq++,
      ts: null,
      offset: b.offset,
      raw: `${b.tag} ${text}`,
    }
    switch (b.tag) {
      case 'user:':
        sink.add({ ...base, kind: 'user_message', role: 'user', text })
        break
      case 'assistant:':
        sink.add({ ...base, kind: 'assistant_message', role: 'assistant', text })
        break
      case '[Thinking]':
        sink.add({ ...base, kind: 'reasoning', text })
        break
      case '[Tool call]':
        sink.add({
          ...base,
          kind: 'tool_call',
          tool: { name: b.head || 'unknown', input: b.body.join('\n').trim() },
        })
        break
      case '[Tool result]':
        sink.add({
          ...base,
          kind: 'tool_result',
          tool: { name: b.head || 'unknown', output: b.body.join('\n').trim() },
        })
        break
      default:
        sink.add({ ...base, kind: 'meta', text })
    }
  }
  for (let i = 0; i < lines.length - 1; i++) {
    const line = lines[i].replace(/\r$/, '')
    const bytes = Buffer.byteLength(lines[i]) + 1
    const m = TXT_BLOCK.exec(line)
    if (m) {
      flush()
      cur = { tag: m[1], head: m[2].trim(), offset, body: [], bytes }
    } else if (cur) {
      cur.body.push(line)
      cur.bytes += bytes
    } else if (line.trim() !== '') {
      cur = { tag: 'text', head: line, offset, body: [], bytes }
    }
    offset += bytes
  }
  flush()
  session.fallbackTitle = titleFrom(sink.events.find((e) => e.kind === 'user_message')?.text)
  return sink.result(end)
}
