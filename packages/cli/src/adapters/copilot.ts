import { readFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { scanJsonl } from './jsonl.js'
import { ParseSink, isRecord, num, str, titleFrom, toIso, usageOf } from './normalize.js'
import { homeOf, isDir, walk } from './files.js'
import type { AdapterEnv, AgentAdapter, ParseOptions, ParseResult, SessionFile } from './types.js'

export const ENV_COPILOT_HOME = 'COPILOT_HOME'

/**
 * GitHub Copilot CLI / agent: `${COPILOT_HOME:-~/.copilot}/session-state/<id>/events.jsonl`
 * (and the legacy flat `session-state/<id>.jsonl`).
 *
 * - Key `e:<id>`; a resume appends to the same file (several `session.shutdown`s).
 * - Usage comes only from `session.shutdown` `modelMetrics` (one event per model per
 *   shutdown, each covering its process's run); per-message counts are not persisted.
 * - Tool calls come from `tool.execution_start`/`_complete` (the `toolRequests` of
 *   `assistant.message` announce the same calls and are not repeated).
 * - cwd/branch from `session.start` context, else `workspace.yaml`; title from
 *   `vscode.metadata.json` `customTitle`, else the workspace summary.
 * - Left out: `history-session-state/*.json` (older whole-JSON era) and `session-store.db`.
 */
export const copilotAdapter: AgentAdapter = {
  id: 'copilot',

  defaultRoots(env: AdapterEnv = process.env, home?: string) {
    return [env[ENV_COPILOT_HOME] ?? join(homeOf(home), '.copilot')]
  },

  async discover(roots) {
    const files: SessionFile[] = []
    for (const root of roots) {
      const state = join(root, 'session-state')
      const base = (await isDir(state)) ? state : root
      const paths = await walk(
        base,
        (p, name) =>
          name === 'events.jsonl' ||
          (name.endsWith('.jsonl') && basename(dirname(p)) === 'session-state'),
        { skipDirs: new Set(['checkpoints']) },
      )
      for (const path of paths) files.push({ agent: 'copilot', path, root })
    }
    return files
  },

  parse(file, options) {
    return parseCopilot(file, options)
  },
}

async function parseCopilot(file: SessionFile, options: ParseOptions = {}): Promise<ParseResult> {
  const sink = new ParseSink('copilot', file.path)
  const dir = dirname(file.path)
  const fallbackId =
    basename(file.path) === 'events.jsonl'
      ? basename(dir)
      : basename(file.path).replace(/\.jsonl$/, '')
  const lines: Parameters<Parameters<typeof scanJsonl>[2]>[0][] = []
  const { nextOffset } = await scanJsonl(file.path, { fromOffset: options.fromOffset ?? 0 }, (l) =>
    lines.push(l),
  )
  const sid =
    lines
      .map((l) =>
        isRecord(l.value) && isRecord(l.value.data) ? str(l.value.data.sessionId) : undefined,
      )
      .find(Boolean) ?? fallbackId
  const session = sink.session(sid)
  const toolNames = new Map<string, string>()

  for (const line of lines) {
    const o = line.value
    const nativeKey = isRecord(o) && str(o.id) ? `e:${str(o.id)}` : `l:${line.index}`
    if (!isRecord(o)) {
      sink.badLine(sid, 'main', line, nativeKey)
      continue
    }
    const type = str(o.type) ?? 'unknown'
    const d = isRecord(o.data) ? o.data : {}
    const ts = toIso(o.timestamp)
    session.seen(ts)
    const base = {
      sessionId: sid,
      thread: 'main',
      nativeKey,
      seq: line.index,
      ts,
      nativeType: type,
      raw: line.text,
      offset: line.offset,
      line: line.index,
    }
    const ctx = isRecord(d.context) ? d.context : undefined
    if (ctx) {
      session.cwd ??= str(ctx.cwd) ?? null
      session.gitBranch = str(ctx.branch) ?? session.gitBranch
    }
    switch (type) {
      case 'session.start':
      case 'session.resume':
        session.model = str(d.selectedModel) ?? session.model
        session.host ??= str(d.producer)
        session.version(d.copilotVersion)
        sink.add({ ...base, kind: 'system' })
        break
      case 'session.model_change':
        session.model = str(d.newModel) ?? session.model
        sink.add({
          ...base,
          kind: 'system',
          text: `model ${str(d.previousModel) ?? '?'} → ${str(d.newModel) ?? '?'}`,
        })
        break
      case 'session.error':
        sink.add({ ...base, kind: 'error', text: str(d.message) })
        break
      case 'session.compaction_start':
      case 'session.compaction_complete':
        sink.add({ ...base, kind: 'compaction', text: str(d.summary) })
        break
      case 'session.shutdown': {
        sink.add({ ...base, kind: 'system' })
        const metrics = isRecord(d.modelMetrics) ? d.modelMetrics : {}
        for (const [model, m] of Object.entries(metrics)) {
          const u = isRecord(m) && isRecord(m.usage) ? m.usage : {}
          sink.add({
            ...base,
            nativeKey: `${nativeKey}#usage:${model}`,
            kind: 'usage',
            model,
            raw: undefined,
            usage: usageOf({
              input_tokens: num(u.inputTokens),
              output_tokens: num(u.outputTokens),
              cache_read: num(u.cacheReadTokens),
              cache_write: num(u.cacheWriteTokens),
            }),
          })
        }
        break
      }
      case 'user.message':
        sink.add({ ...base, kind: 'user_message', role: 'user', text: str(d.content) })
        break
      case 'assistant.message':
        sink.add({ ...base, kind: 'assistant_message', role: 'assistant', text: str(d.content) })
        break
      case 'assistant.reasoning':
        sink.add({ ...base, kind: 'reasoning', role: 'assistant', text: str(d.content) })
        break
      case 'tool.execution_start': {
        const name = str(d.toolName) ?? 'unknown'
        const callId = str(d.toolCallId)
        if (callId) toolNames.set(callId, name)
        sink.add({
          ...base,
          kind: 'tool_call',
          tool: { name, call_id: callId, input: d.arguments },
        })
        break
      }
      case 'tool.execution_complete': {
        const callId = str(d.toolCallId)
        const result = isRecord(d.result) ? (d.result.content ?? d.result) : d.result
        sink.add({
          ...base,
          kind: 'tool_result',
          tool: {
            name: str(d.toolName) ?? toolNames.get(callId ?? '') ?? 'unknown',
            call_id: callId,
            output: result ?? d.error,
            is_error: d.success === false,
          },
        })
        break
      }
      default:
        sink.add({
          ...base,
          kind: type.startsWith('session.') || type.startsWith('assistant.') ? 'system' : 'meta',
        })
    }
  }

  const ws = await readWorkspace(dir)
  session.cwd ??= ws.cwd ?? null
  session.gitBranch ??= ws.branch ?? null
  const custom = await readFile(join(dir, 'vscode.metadata.json'), 'utf8')
    .then((t) => (JSON.parse(t) as { customTitle?: unknown }).customTitle)
    .catch(() => undefined)
  session.title = str(custom) ?? null
  session.fallbackTitle =
    titleFrom(ws.summary) ?? titleFrom(sink.events.find((e) => e.kind === 'user_message')?.text)
  return sink.result(nextOffset)
}

/** Top-level scalars of `workspace.yaml` (flat `key: value`, quoted values unescaped). */
async function readWorkspace(dir: string): Promise<Record<string, string>> {
  const text = await readFile(join(dir, 'workspace.yaml'), 'utf8').catch(() => '')
  const out: Record<string, string> = {}
  for (const m of text.matchAll(/^([a-z_]+):[ \t]*(.*)$/gm)) {
    let v = m[2].trim()
    if (v.startsWith("'")) {
      v = v.slice(1).replace(/''/g, "'")
      if (v.endsWith("'")) v = v.slice(0, -1)
    } else if (v.startsWith('"')) {
      v = v.slice(1).replace(/\\"/g, '"')
      if (v.endsWith('"')) v = v.slice(0, -1)
    }
    out[m[1]] = v
  }
  return out
}
