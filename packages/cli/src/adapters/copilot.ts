import { readFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { scanJsonl, scanLines } from './jsonl.js'
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

export const ENV_COPILOT_HOME = 'COPILOT_HOME'

/**
 * GitHub Copilot CLI / agent: `${COPILOT_HOME:-~/.copilot}/session-state/<id>/events.jsonl`
 * (and the legacy flat `session-state/<id>.jsonl`).
 *
 * - Key `e:<id>`; a resume appends to the same file (several `session.shutdown`s).
 * - Usage comes only from `session.shutdown` `modelMetrics` (per-call `assistant.usage`
 *   is ephemeral, never written): one event per model per shutdown, for what that run
 *   used. See {@link shutdownUsage} for how runs are told apart.
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

/** One model's counters in a `session.shutdown` `modelMetrics`. */
interface ModelCounters {
  input: number
  output: number
  cacheRead: number
  cacheWrite: number
  reasoning: number
}

type Metrics = Map<string, ModelCounters>

function metricsOf(data: Record<string, unknown>): Metrics {
  const out: Metrics = new Map()
  const metrics = isRecord(data.modelMetrics) ? data.modelMetrics : {}
  for (const [model, m] of Object.entries(metrics)) {
    const u = isRecord(m) && isRecord(m.usage) ? m.usage : {}
    out.set(model, {
      input: num(u.inputTokens),
      output: num(u.outputTokens),
      cacheRead: num(u.cacheReadTokens),
      cacheWrite: num(u.cacheWriteTokens),
      reasoning: num(u.reasoningTokens),
    })
  }
  return out
}

const COUNTERS = ['input', 'output', 'cacheRead', 'cacheWrite', 'reasoning'] as const

/**
 * What the run ending at a shutdown used, per model. Copilot CLI releases disagree:
 * older ones restarted `modelMetrics` from zero on every resume (github/copilot-cli#524,
 * #1628), newer ones (from about April 2026, #1394) restore the session's totals, so each
 * shutdown is cumulative (`sessionStartTime` is the session's start, not the run's).
 * Summing would double count the newer files, so a shutdown that still has every model of
 * the previous one with no counter lower is taken as cumulative and its difference is
 * the run's use; anything else is a restart. A restarted run that used at least as much
 * of the same models as the one before is undercounted: there is no way to tell.
 */
function shutdownUsage(prev: Metrics | undefined, cur: Metrics): Metrics {
  const cumulative =
    prev !== undefined &&
    [...prev].every(([model, p]) => {
      const c = cur.get(model)
      return c !== undefined && COUNTERS.every((k) => c[k] >= p[k])
    })
  if (!cumulative) return cur
  const out: Metrics = new Map()
  for (const [model, c] of cur) {
    const p = prev.get(model)
    out.set(model, {
      input: c.input - (p?.input ?? 0),
      output: c.output - (p?.output ?? 0),
      cacheRead: c.cacheRead - (p?.cacheRead ?? 0),
      cacheWrite: c.cacheWrite - (p?.cacheWrite ?? 0),
      reasoning: c.reasoning - (p?.reasoning ?? 0),
    })
  }
  return out
}

/** The metrics of the last `session.shutdown` that starts before `offset`, if any. */
async function shutdownBefore(path: string, offset: number): Promise<Metrics | undefined> {
  let last: Metrics | undefined
  await scanLines(path, {}, (line) => {
    if (line.offset >= offset || !line.text.includes('"session.shutdown"')) return
    try {
      const o = JSON.parse(line.text) as unknown
      if (isRecord(o) && o.type === 'session.shutdown') {
        last = metricsOf(isRecord(o.data) ? o.data : {})
      }
    } catch {
      // a malformed line was reported when it was read
    }
  })
  return last
}

async function parseCopilot(file: SessionFile, options: ParseOptions = {}): Promise<ParseResult> {
  const sink = new ParseSink('copilot', file.path)
  const dir = dirname(file.path)
  const from = options.fromOffset ?? 0
  const fallbackId =
    basename(file.path) === 'events.jsonl'
      ? basename(dir)
      : basename(file.path).replace(/\.jsonl$/, '')
  const lines: Parameters<Parameters<typeof scanJsonl>[2]>[0][] = []
  const { nextOffset } = await scanJsonl(file.path, { fromOffset: from }, (l) => lines.push(l))
  // A shutdown's usage is relative to the one before it, which may lie before this read.
  const hasShutdown = lines.some((l) => isRecord(l.value) && l.value.type === 'session.shutdown')
  let prevShutdown = from > 0 && hasShutdown ? await shutdownBefore(file.path, from) : undefined
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
        sink.add({
          ...base,
          kind: 'compaction',
          text: str(d.summaryContent) ?? str(d.summary) ?? str(d.error),
        })
        break
      case 'session.shutdown': {
        sink.add({ ...base, kind: 'system' })
        const metrics = metricsOf(d)
        for (const [model, c] of shutdownUsage(prevShutdown, metrics)) {
          // `inputTokens` is taken as the whole prompt, cache reads and writes included: the
          // schema only says "input tokens consumed", but readers that checked it against
          // the per-type `tokenDetails` found it gross. One below the cache counts is net.
          const cached = c.cacheRead + c.cacheWrite
          const usage = usageOf({
            input_tokens: c.input >= cached ? c.input - cached : c.input,
            output_tokens: c.output,
            cache_read: c.cacheRead,
            cache_write: c.cacheWrite,
            reasoning: c.reasoning,
          })
          if (usageIsZero(usage)) continue
          sink.add({
            ...base,
            nativeKey: `${nativeKey}#usage:${model}`,
            kind: 'usage',
            model,
            raw: undefined,
            usage,
          })
        }
        prevShutdown = metrics
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
