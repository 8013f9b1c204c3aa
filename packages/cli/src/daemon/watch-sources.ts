import { basename, join, resolve } from 'node:path'
import type { AgentId } from '@hivemind/sdk/schemas'
import { ENV } from '@hivemind/sdk/schemas'
import { isDir } from '../adapters/files.js'
import { ADAPTERS, resolveAgent } from '../adapters/index.js'
import type { AdapterEnv } from '../adapters/types.js'
import { UsageError } from '../errors.js'
import type { AgentSource } from '../tail/discovery.js'

/** One `HIVEMIND_WATCH_PATHS` entry: a directory, with its agent when named (`agent=path`). */
export interface WatchPath {
  agent: AgentId | undefined
  path: string
}

/**
 * Parses `HIVEMIND_WATCH_PATHS` (comma list of `dir` or `agent=dir`); a usage error names
 * an unknown agent or an empty entry.
 *
 * @example
 * parseWatchPaths('/watch/.claude, codex=/watch/codex-home', '/')
 */
export function parseWatchPaths(value: string | undefined, cwd: string): WatchPath[] {
  if (value === undefined || value.trim() === '') return []
  const out: WatchPath[] = []
  for (const raw of value.split(',')) {
    const entry = raw.trim()
    if (entry === '') continue
    const eq = entry.indexOf('=')
    // `agent=path`; a path that merely contains `=` after a slash is a path.
    if (eq > 0 && !entry.slice(0, eq).includes('/')) {
      const name = entry.slice(0, eq).trim()
      const agent = resolveAgent(name)
      if (!agent) {
        throw new UsageError(
          `${ENV.watchPaths}: unknown agent "${name}" in "${entry}" (known: ${Object.keys(ADAPTERS).join(', ')})`,
          {
            hint: `Use a directory, or agent=directory, e.g. ${ENV.watchPaths}=/watch/.claude,codex=/watch/codex`,
          },
        )
      }
      const path = entry.slice(eq + 1).trim()
      if (path === '') throw new UsageError(`${ENV.watchPaths}: "${entry}" names no directory`)
      out.push({ agent, path: resolve(cwd, path) })
    } else {
      out.push({ agent: undefined, path: resolve(cwd, entry) })
    }
  }
  return out
}

/** Directory names and marker subdirectories that identify an agent's home. */
const LAYOUTS: readonly { agent: AgentId; names: string[]; markers: string[] }[] = [
  { agent: 'claude-code', names: ['.claude'], markers: ['projects'] },
  { agent: 'codex', names: ['.codex'], markers: ['sessions', 'archived_sessions'] },
  { agent: 'gemini-cli', names: ['.gemini'], markers: ['tmp'] },
  { agent: 'copilot', names: ['.copilot'], markers: ['session-state'] },
  { agent: 'cursor', names: ['.cursor'], markers: ['agent-transcripts'] },
  { agent: 'opencode', names: ['opencode'], markers: ['storage'] },
]

/**
 * The agent whose home layout a directory has (a mounted `.claude`, a `CODEX_HOME` with
 * `sessions/`), or `undefined` when it is not recognisable, in which case every adapter
 * searches it, as `hivemind import --path` does.
 */
export async function recognizeLayout(dir: string): Promise<AgentId | undefined> {
  const name = basename(dir)
  for (const l of LAYOUTS) if (l.names.includes(name)) return l.agent
  for (const l of LAYOUTS) {
    for (const m of l.markers) {
      if (await isDir(join(dir, m))) return l.agent
    }
  }
  return undefined
}

/**
 * What the daemon watches: every agent's home (honouring `CLAUDE_CONFIG_DIR`,
 * `CODEX_HOME`, `GEMINI_CLI_HOME`, `COPILOT_HOME`, `XDG_DATA_HOME`, …) plus each watch path.
 * aider writes into each repository, so it is watched only where named (its history
 * file's env var, or `aider=dir`): walking the working directory of a container (`/`) on
 * every rescan would be all cost.
 */
export async function resolveWatchSources(
  env: AdapterEnv,
  watchPaths: readonly WatchPath[],
  home?: string,
): Promise<AgentSource[]> {
  const roots = new Map<AgentId, Set<string>>()
  const add = (agent: AgentId, root: string) => {
    let set = roots.get(agent)
    if (!set) roots.set(agent, (set = new Set()))
    set.add(root)
  }
  for (const [id, adapter] of Object.entries(ADAPTERS) as [AgentId, (typeof ADAPTERS)[AgentId]][]) {
    if (id === 'aider' && !env.AIDER_CHAT_HISTORY_FILE) continue
    for (const root of adapter.defaultRoots(env, home)) add(id, root)
  }
  for (const w of watchPaths) {
    const agent = w.agent ?? (await recognizeLayout(w.path))
    if (agent) add(agent, w.path)
    else for (const id of Object.keys(ADAPTERS) as AgentId[]) add(id, w.path)
  }
  return [...roots].map(([agent, set]) => ({ agent, roots: [...set] }))
}
