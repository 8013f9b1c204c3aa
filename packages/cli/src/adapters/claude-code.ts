import { basename, dirname, join } from 'node:path'
import { fileFingerprint, scanJsonl, type JsonLine } from './jsonl.js'
import {
  ParseSink,
  isRecord,
  num,
  str,
  titleFrom,
  toIso,
  usageOf,
  type EventInput,
} from './normalize.js'
import { homeOf, isDir, walk } from './files.js'
import type { AdapterEnv, AgentAdapter, ParseOptions, ParseResult, SessionFile } from './types.js'

export const ENV_CLAUDE_CONFIG_DIR = 'CLAUDE_CONFIG_DIR'

/** Sidecars next to transcripts: not transcripts themselves (SESSION-FORMATS.md §1). */
const SKIP_DIRS = new Set(['tool-results', 'file-history', 'todos', 'plans', 'session-env'])

/** Record types that only carry metadata; kept raw as `meta` events. */
const META_TYPES = new Set([
  'progress',
  'queue-operation',
  'file-history-snapshot',
  'attachment',
  'last-prompt',
  'permission-mode',
  'pr-link',
  'agent-name',
  'teleported-from',
])

/** `agent-<id>.jsonl` (root-level v2.0.x or `<session>/subagents/` v2.1.x). */
const AGENT_FILE = /^agent-(.+)\.jsonl$/

/**
 * Claude Code: `${CLAUDE_CONFIG_DIR:-~/.claude}/projects/<enc(cwd)>/<sessionId>.jsonl`.
 *
 * - cwd comes from the records (the directory name cannot be decoded).
 * - Subagents are threads of their parent session (thread = `agentId`), in all three
 *   layouts: `<session>/subagents/agent-<id>.jsonl`, root-level `agent-<id>.jsonl`, and
 *   inline `isSidechain` lines without an agent id (thread `sidechain`).
 * - Keys: `u:<uuid>` per thread (fork copies re-use uuids under another agent id);
 *   uuid-less metadata lines `o:<file_fp>:<offset>`.
 * - Usage: one `usage` event per `(message.id, requestId)`, keyed session-wide so the
 *   copies written by `aside_question`/`acompact` forks collapse onto the original, with
 *   `rev` = output tokens (streamed v2.0 lines grow; the last, largest one wins).
 */
export const claudeCodeAdapter: AgentAdapter = {
  id: 'claude-code',

  defaultRoots(env: AdapterEnv = process.env, home?: string) {
    return [env[ENV_CLAUDE_CONFIG_DIR] ?? join(homeOf(home), '.claude')]
  },

  async discover(roots) {
    const files: SessionFile[] = []
    for (const root of roots) {
      // A config dir has projects/; any other root (--path) is searched as it is.
      const projects = join(root, 'projects')
      const base = (await isDir(projects)) ? projects : root
      const paths = await walk(
        base,
        (_p, name) => name.endsWith('.jsonl') && !name.startsWith('history.jsonl'),
        { skipDirs: SKIP_DIRS },
      )
      for (const path of paths) files.push({ agent: 'claude-code', path, root })
    }
    return files
  },

  parse(file, options) {
    return parseClaude(file, options)
  },
}

async function parseClaude(file: SessionFile, options: ParseOptions = {}): Promise<ParseResult> {
  const sink = new ParseSink('claude-code', file.path)
  const fp = await fileFingerprint(file.path).catch(() => null)
  if (fp == null) return sink.result(options.fromOffset ?? 0)

  const name = basename(file.path)
  const agentFile = AGENT_FILE.exec(name)
  const fileThread = agentFile?.[1]
  const dir = dirname(file.path)
  // <session>/subagents/agent-x.jsonl → the parent session id is the grandparent dir.
  const stemSession =
    agentFile && basename(dir) === 'subagents'
      ? basename(dirname(dir))
      : agentFile
        ? undefined
        : name.replace(/\.jsonl$/, '')
  let currentSession: string | undefined

  // One usage event per (message.id, requestId): the largest within this read.
  const usage = new Map<string, EventInput>()
  const toolNames = new Map<string, string>()
  const firstPrompt = new Map<string, string>()

  const lines: JsonLine[] = []
  const { nextOffset } = await scanJsonl(
    file.path,
    { fromOffset: options.fromOffset ?? 0 },
    (line) => lines.push(line),
  )
  // Lines without a sessionId (summary, file-history-snapshot) belong to the file's
  // session: the first sessionId in it, else the file name.
  currentSession =
    lines.map((l) => (isRecord(l.value) ? str(l.value.sessionId) : undefined)).find(Boolean) ??
    stemSession
  for (const line of lines) {
    {
      const o = line.value
      const sid = (isRecord(o) ? str(o.sessionId) : undefined) ?? currentSession ?? stemSession
      if (sid === undefined) {
        // An agent file whose first line has no sessionId: nothing to attach it to.
        sink.errors.push({
          path: file.path,
          offset: line.offset,
          line: line.index,
          message: 'record without sessionId in a subagent file',
        })
        continue
      }
      currentSession = sid
      if (!isRecord(o)) {
        if (line.value === undefined) {
          sink.badLine(sid, fileThread ?? 'main', line, `o:${fp}:${line.offset}`)
        } else {
          sink.add({
            sessionId: sid,
            thread: fileThread ?? 'main',
            nativeKey: `o:${fp}:${line.offset}`,
            seq: line.index,
            ts: null,
            kind: 'meta',
            raw: line.text,
            offset: line.offset,
            line: line.index,
          })
        }
        continue
      }
      const session = sink.session(sid)
      const type = str(o.type) ?? 'unknown'
      const subtype = str(o.subtype)
      const thread = str(o.agentId) ?? fileThread ?? (o.isSidechain === true ? 'sidechain' : 'main')
      const uuid = str(o.uuid)
      const ts = toIso(o.timestamp)
      session.seen(ts)
      if (thread === 'main' || session.cwd == null) {
        session.cwd ??= str(o.cwd) ?? null
      }
      if (str(o.gitBranch)) session.gitBranch = str(o.gitBranch) ?? null
      session.version(o.version)
      session.host ??= str(o.entrypoint)

      const base = {
        sessionId: sid,
        thread,
        seq: line.index,
        ts,
        nativeType: subtype ? `${type}/${subtype}` : type,
        offset: line.offset,
        line: line.index,
      }
      let n = 0
      const emit = (e: Omit<EventInput, keyof typeof base | 'nativeKey'>, withRaw: boolean) => {
        const nativeKey = uuid
          ? n === 0
            ? `u:${uuid}`
            : `u:${uuid}#${n}`
          : n === 0
            ? `o:${fp}:${line.offset}`
            : `o:${fp}:${line.offset}#${n}`
        n++
        sink.add({ ...base, ...e, nativeKey, ...(withRaw ? { raw: line.text } : {}) })
      }

      switch (type) {
        case 'user':
        case 'assistant': {
          const msg = isRecord(o.message) ? o.message : {}
          const role = str(msg.role) ?? type
          const model = str(msg.model)
          if (model && model !== '<synthetic>' && thread === 'main') session.model = model
          else if (model && model !== '<synthetic>') session.model ??= model
          const blocks = typeof msg.content === 'string' ? [msg.content] : msg.content
          const userKind =
            o.isCompactSummary === true ? 'summary' : o.isMeta === true ? 'system' : 'user_message'
          let first = true
          const texts: string[] = []
          const flushText = () => {
            if (texts.length === 0) return
            const text = texts.join('\n')
            texts.length = 0
            const kind =
              type === 'user'
                ? userKind
                : o.isApiErrorMessage === true
                  ? 'error'
                  : 'assistant_message'
            if (kind === 'user_message' && thread === 'main' && !firstPrompt.has(sid)) {
              firstPrompt.set(sid, text)
            }
            emit({ kind, role, model, text }, first)
            first = false
          }
          for (const b of Array.isArray(blocks) ? (blocks as unknown[]) : []) {
            if (typeof b === 'string') {
              texts.push(b)
              continue
            }
            if (!isRecord(b)) continue
            switch (b.type) {
              case 'text':
                texts.push(typeof b.text === 'string' ? b.text : '')
                break
              case 'image':
                texts.push('[image]')
                break
              case 'thinking':
              case 'redacted_thinking':
                flushText()
                emit({ kind: 'reasoning', role, model, text: str(b.thinking) }, first)
                first = false
                break
              case 'tool_use':
              case 'server_tool_use':
                flushText()
                emit(
                  {
                    kind: 'tool_call',
                    role,
                    model,
                    tool: { name: rememberTool(toolNames, b), call_id: str(b.id), input: b.input },
                  },
                  first,
                )
                first = false
                break
              case 'tool_result':
                flushText()
                emit(
                  {
                    kind: 'tool_result',
                    role,
                    tool: {
                      name: toolNames.get(str(b.tool_use_id) ?? '') ?? 'unknown',
                      call_id: str(b.tool_use_id),
                      output: b.content,
                      is_error: b.is_error === true,
                    },
                  },
                  first,
                )
                first = false
                break
              default:
                flushText()
                emit({ kind: 'meta', role, text: `content block ${String(b.type)}` }, first)
                first = false
            }
          }
          flushText()
          if (first) emit({ kind: type === 'user' ? userKind : 'assistant_message', role }, true)

          const u = isRecord(msg.usage) ? msg.usage : undefined
          const msgId = str(msg.id)
          if (type === 'assistant' && u && msgId) {
            const key = `r:${msgId}:${str(o.requestId) ?? ''}`
            const e: EventInput = {
              ...base,
              nativeKey: key,
              keyThread: '*',
              kind: 'usage',
              model,
              usage: usageOf({
                input_tokens: num(u.input_tokens),
                output_tokens: num(u.output_tokens),
                cache_read: num(u.cache_read_input_tokens),
                cache_write: num(u.cache_creation_input_tokens),
              }),
              rev: num(u.output_tokens),
            }
            const prev = usage.get(key)
            if (!prev || (prev.rev ?? 0) < (e.rev ?? 0)) {
              usage.set(key, prev ? { ...e, seq: prev.seq, ts: prev.ts } : e)
            }
          }
          break
        }
        case 'system': {
          const kind =
            subtype === 'compact_boundary'
              ? 'compaction'
              : subtype === 'api_error'
                ? 'error'
                : 'system'
          emit({ kind, text: str(o.content) }, true)
          break
        }
        case 'summary': {
          const text = str(o.summary)
          session.fallbackTitle = text ?? session.fallbackTitle
          emit({ kind: 'summary', text }, true)
          break
        }
        case 'custom-title':
        case 'ai-title': {
          const text = str(o.customTitle) ?? str(o.aiTitle) ?? str(o.title)
          if (text && (type === 'custom-title' || session.title == null)) session.title = text
          emit({ kind: 'title', text }, true)
          break
        }
        default:
          emit(
            {
              kind: 'meta',
              text: META_TYPES.has(type) ? undefined : `unknown record type ${type}`,
            },
            true,
          )
      }
    }
  }
  for (const e of usage.values()) sink.add(e)
  sink.events.sort((a, b) => a.seq - b.seq)
  // A summary-only file still names its session by the file stem.
  if (stemSession && sink.events.length > 0 && sink.result(0).sessions.length === 0) {
    sink.session(stemSession)
  }
  for (const [sid, text] of firstPrompt) sink.session(sid).fallbackTitle ??= titleFrom(text)
  return sink.result(nextOffset)
}

function rememberTool(names: Map<string, string>, block: Record<string, unknown>): string {
  const name = str(block.name) ?? 'unknown'
  const id = str(block.id)
  if (id) names.set(id, name)
  return name
}
