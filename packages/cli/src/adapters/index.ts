import { AGENT_ALIASES, AgentId } from '@hivemind/sdk/schemas'
import { aiderAdapter } from './aider.js'
import { claudeCodeAdapter } from './claude-code.js'
import { codexAdapter } from './codex.js'
import { copilotAdapter } from './copilot.js'
import { cursorAdapter } from './cursor.js'
import { geminiCliAdapter } from './gemini-cli.js'
import { opencodeAdapter } from './opencode.js'
import type { AgentAdapter } from './types.js'

/** Every adapter, by the agent ids of DESIGN.md ("Names"). */
export const ADAPTERS: Readonly<Record<AgentId, AgentAdapter>> = {
  'claude-code': claudeCodeAdapter,
  codex: codexAdapter,
  'gemini-cli': geminiCliAdapter,
  copilot: copilotAdapter,
  cursor: cursorAdapter,
  opencode: opencodeAdapter,
  aider: aiderAdapter,
}

/**
 * Resolves an agent id or alias (`claude`, `gemini`) as the CLI's `--agents` takes it.
 * Returns `undefined` for unknown names so the caller can print a usage error.
 *
 * @example
 * resolveAgent('claude') // 'claude-code'
 */
export function resolveAgent(name: string): AgentId | undefined {
  const n = name.trim().toLowerCase()
  const alias = AGENT_ALIASES[n]
  if (alias) return alias
  const parsed = AgentId.safeParse(n)
  return parsed.success ? parsed.data : undefined
}

/** The adapter for an agent id or alias. */
export function adapterFor(name: string): AgentAdapter | undefined {
  const id = resolveAgent(name)
  return id ? ADAPTERS[id] : undefined
}

export {
  aiderAdapter,
  claudeCodeAdapter,
  codexAdapter,
  copilotAdapter,
  cursorAdapter,
  geminiCliAdapter,
  opencodeAdapter,
}
export { createGeminiCliAdapter } from './gemini-cli.js'
export { MAX_LINE_BYTES } from './jsonl.js'
export type { GeminiAdapterOptions } from './gemini-cli.js'
export type {
  AdapterEnv,
  AgentAdapter,
  ParseError,
  ParseOptions,
  ParseResult,
  SessionFile,
} from './types.js'
