import type { AgentId, NormalizedEvent, NormalizedSession } from '@hivemind/sdk/schemas'

/** Environment the adapters read their home overrides from (`process.env` shape). */
export type AdapterEnv = Readonly<Record<string, string | undefined>>

/** A session file (or, for whole-object stores, a session's main file) found on disk. */
export interface SessionFile {
  agent: AgentId
  /** Absolute path. */
  path: string
  /** The root it was discovered under; adapters look up sibling indexes there. */
  root: string
}

/** A problem reading one file. Parsing goes on; the caller logs and counts it. */
export interface ParseError {
  path: string
  message: string
  offset?: number
  line?: number
}

export interface ParseResult {
  /** Sessions the file describes (usually one; several files can share a session key). */
  sessions: NormalizedSession[]
  /** Events in file order. */
  events: NormalizedEvent[]
  /**
   * Where the next read should start: the byte after the last complete line for
   * append-only files (a partial last line is left for later), the size read for
   * whole-file documents (which are always re-read in full).
   */
  nextOffset: number
  errors: ParseError[]
}

export interface ParseOptions {
  /** Byte offset to continue from (a previous `nextOffset`). @default 0 */
  fromOffset?: number
}

/** One agent's reader: where its files live, how to find them, how to normalise them. */
export interface AgentAdapter {
  id: AgentId
  /** Directories to search when no `--path` is given, honouring the agent's home override. */
  defaultRoots(env?: AdapterEnv, home?: string): string[]
  /** Session files under the roots (missing roots are skipped, not errors). */
  discover(roots: readonly string[]): Promise<SessionFile[]>
  /** Reads one file. Never throws for bad content: problems land in `errors`/`error` events. */
  parse(file: SessionFile, options?: ParseOptions): Promise<ParseResult>
}
