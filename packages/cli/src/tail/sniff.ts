import { open } from 'node:fs/promises'
import type { AgentId } from '@hivemind/sdk/schemas'

const CODEX_TYPES = new Set([
  'session_meta',
  'response_item',
  'event_msg',
  'turn_context',
  'compacted',
])

/**
 * Which agent wrote a JSONL file, from its first line, for files two adapters both
 * accept (a `--path` or watch path named by no agent: a renamed Codex rollout looks like
 * any `.jsonl` by name). `undefined` when the line says nothing clear (or is not there).
 */
export async function sniffAgent(path: string): Promise<AgentId | undefined> {
  if (!path.endsWith('.jsonl')) return undefined
  let text: string
  try {
    const fh = await open(path, 'r')
    try {
      const buf = Buffer.alloc(64 * 1024)
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0)
      text = buf.subarray(0, bytesRead).toString('utf8')
    } finally {
      await fh.close()
    }
  } catch {
    return undefined
  }
  const nl = text.indexOf('\n')
  let first: unknown
  try {
    first = JSON.parse(nl === -1 ? text : text.slice(0, nl))
  } catch {
    return undefined
  }
  if (typeof first !== 'object' || first == null) return undefined
  const r = first as Record<string, unknown>
  const type = typeof r.type === 'string' ? r.type : undefined
  if (type !== undefined && CODEX_TYPES.has(type)) return 'codex'
  // Codex before the envelope: {id, timestamp, instructions, git?}.
  if ('instructions' in r && typeof r.id === 'string' && typeof r.timestamp === 'string')
    return 'codex'
  if (type?.startsWith('session.')) return 'copilot'
  if (typeof r.projectHash === 'string') return 'gemini-cli'
  if (typeof r.sessionId === 'string' || type === 'summary' || 'parentUuid' in r)
    return 'claude-code'
  return undefined
}
