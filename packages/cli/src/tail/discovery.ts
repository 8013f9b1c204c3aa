import { statSync, type BigIntStats } from 'node:fs'
import { basename } from 'node:path'
import type { AgentId } from '@hivemind/sdk/schemas'
import { reportingUnreadable, type UnreadableSink } from '../adapters/files.js'
import { ADAPTERS } from '../adapters/index.js'
import type { SessionFile } from '../adapters/types.js'
import { sniffAgent } from './sniff.js'

/** Where one agent's files are searched. */
export interface AgentSource {
  agent: AgentId
  roots: string[]
}

/** A session file with what `stat` said about it when it was found. */
export interface Candidate {
  file: SessionFile
  size: number
  mtimeMs: number
  dev: string
  ino: string
}

export interface DiscoveryOptions {
  /**
   * Told once per directory (or linked entry) that exists but could not be read: the
   * session files in it are missing from the result.
   */
  onUnreadable?: UnreadableSink | undefined
}

/** Order in which overlapping roots are claimed: specific layouts first. */
const CLAIM_ORDER: readonly AgentId[] = [
  'copilot',
  'cursor',
  'gemini-cli',
  'opencode',
  'aider',
  'claude-code',
  'codex',
]

/**
 * Every session file under the sources, each claimed by exactly one adapter: two
 * adapters searching the same directory (`--path`, a watch path named by no agent) may
 * both accept a `.jsonl`; the file's first line decides when it is clear (a renamed Codex
 * rollout), else Codex keeps its `rollout-*` files and the more specific layout wins.
 */
export async function discoverSessionFiles(
  sources: readonly AgentSource[],
  options: DiscoveryOptions = {},
): Promise<SessionFile[]> {
  const claimed = new Map<string, SessionFile>()
  const contested = new Map<string, SessionFile[]>()
  // Several agents may search the same directory (`--path`): name it once.
  const reported = new Set<string>()
  const sink: UnreadableSink = (path, error) => {
    if (reported.has(path)) return
    reported.add(path)
    options.onUnreadable?.(path, error)
  }
  for (const { agent, roots } of sources) {
    if (roots.length === 0) continue
    const found = await reportingUnreadable(sink, () => ADAPTERS[agent].discover(roots))
    for (const file of found) {
      const prev = claimed.get(file.path)
      if (prev) contested.set(file.path, [...(contested.get(file.path) ?? [prev]), file])
      if (!prev || claimsBefore(file, prev)) claimed.set(file.path, file)
    }
  }
  // Claimed by several adapters: the first line, when it is clear, decides.
  for (const [path, files] of contested) {
    const agent = await sniffAgent(path)
    const match = files.find((f) => f.agent === agent)
    if (match) claimed.set(path, match)
  }
  return [...claimed.values()]
}

/**
 * `stat` of a found file; `undefined` when it is gone (Claude's cleanup, Codex
 * compression). Synchronous on purpose: for a thousand files that is a few milliseconds,
 * where awaiting each stat through the thread pool costs ten times that.
 */
export function statCandidate(file: SessionFile): Candidate | undefined {
  let s: BigIntStats | undefined
  try {
    s = statSync(file.path, { bigint: true, throwIfNoEntry: false })
  } catch {
    return undefined
  }
  if (!s?.isFile()) return undefined
  return {
    file,
    size: Number(s.size),
    mtimeMs: Number(s.mtimeMs),
    dev: s.dev.toString(),
    ino: s.ino.toString(),
  }
}

function claimsBefore(a: SessionFile, b: SessionFile): boolean {
  if (basename(a.path).startsWith('rollout-')) return a.agent === 'codex'
  if (basename(b.path).startsWith('rollout-')) return false
  return CLAIM_ORDER.indexOf(a.agent) < CLAIM_ORDER.indexOf(b.agent)
}
