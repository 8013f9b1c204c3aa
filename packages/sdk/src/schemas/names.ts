import { z } from 'zod'

/** Agent ids as stored and sent on the wire. */
export const AgentId = z.enum([
  'claude-code',
  'codex',
  'gemini-cli',
  'copilot',
  'cursor',
  'opencode',
  'aider',
])
export type AgentId = z.infer<typeof AgentId>

/** Short names the CLI accepts besides the ids. */
export const AGENT_ALIASES: Readonly<Record<string, AgentId>> = {
  claude: 'claude-code',
  gemini: 'gemini-cli',
}

/** Normalised event kinds. */
export const EventKind = z.enum([
  'user_message',
  'assistant_message',
  'reasoning',
  'tool_call',
  'tool_result',
  'usage',
  'compaction',
  'summary',
  'title',
  'meta',
  'error',
  'system',
])
export type EventKind = z.infer<typeof EventKind>

/** API scopes carried by tokens. */
export const Scope = z.enum(['read', 'write'])
export type Scope = z.infer<typeof Scope>

/** Expiry choices for static service-account tokens and PATs. */
export const TokenExpiry = z.enum(['30d', '90d', '6m', '1y', 'never'])
export type TokenExpiry = z.infer<typeof TokenExpiry>
