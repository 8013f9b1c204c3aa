import { ADAPTERS } from '../adapters/index.js'
import { fileFingerprint } from '../adapters/jsonl.js'
import type { ParseResult } from '../adapters/types.js'
import type { CheckpointStore, FileCheckpoint, FileIdentity, Match } from './checkpoint-store.js'
import type { Candidate } from './discovery.js'
import type { PendingFile } from './uploader.js'

/** What reading one file against its checkpoint came to (shared by import and the daemon). */
export type FilePlan =
  /** The first line is not complete yet (or the file vanished): not a session file yet. */
  | { kind: 'incomplete' }
  /** Every record was acknowledged at this size and mtime: nothing to read. */
  | { kind: 'unchanged'; identity: FileIdentity; match: Match; checkpoint: FileCheckpoint }
  /** The adapter could not read it; the others go on. */
  | { kind: 'unreadable'; identity: FileIdentity; error: Error }
  /** Records past the committed offset were parsed. */
  | {
      kind: 'read'
      identity: FileIdentity
      match: Match
      checkpoint: FileCheckpoint | undefined
      result: ParseResult
      fromOffset: number
      /** Rewritten or truncated: the offset may move backwards. */
      reset: boolean
      cwd: string | null
      /** Session keys of the file: the ones recorded before plus the ones parsed now. */
      sessionKeys: string[]
    }

/**
 * Matches a file with its checkpoint (SESSION-FORMATS.md §C.2: inode and first-line
 * fingerprint) and parses what the server has not acknowledged yet: from the committed
 * offset, or from 0 for a rewritten or truncated file.
 */
export async function planFile(
  c: Candidate,
  store: CheckpointStore | undefined,
): Promise<FilePlan> {
  const { file } = c
  let fileFp: string | null
  try {
    fileFp = await fileFingerprint(file.path)
  } catch (err) {
    // Gone since it was found (Claude's cleanup, Codex compression): not a file any more.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'incomplete' }
    // A corrupt `.zst`, a permission error: say so, never pass it off as "not written yet".
    return {
      kind: 'unreadable',
      identity: { dev: c.dev, ino: c.ino, fileFp: '', path: file.path, agent: file.agent },
      error: err instanceof Error ? err : new Error(String(err)),
    }
  }
  if (fileFp == null) return { kind: 'incomplete' }
  const identity: FileIdentity = {
    dev: c.dev,
    ino: c.ino,
    fileFp,
    path: file.path,
    agent: file.agent,
  }
  const match: Match = store?.resolve(identity) ?? { kind: 'new' }
  const cp = match.kind === 'new' ? undefined : match.checkpoint
  if (
    cp &&
    match.kind !== 'rewritten' &&
    cp.synced &&
    cp.size === c.size &&
    cp.mtimeMs === c.mtimeMs
  ) {
    return { kind: 'unchanged', identity, match, checkpoint: cp }
  }
  let fromOffset = match.kind === 'rewritten' ? 0 : (cp?.committedOffset ?? 0)
  let reset = match.kind === 'rewritten'
  // Smaller than what was acknowledged: truncated and rewritten in place.
  if (!file.path.endsWith('.zst') && c.size < fromOffset) {
    fromOffset = 0
    reset = true
  }
  let result: ParseResult
  try {
    result = await ADAPTERS[file.agent].parse(file, { fromOffset })
  } catch (err) {
    return {
      kind: 'unreadable',
      identity,
      error: err instanceof Error ? err : new Error(String(err)),
    }
  }
  const cwd = result.sessions.find((s) => s.cwd)?.cwd ?? cp?.cwd ?? null
  const sessionKeys = [
    ...new Set([...(cp?.sessionKeys ?? []), ...result.sessions.map((s) => s.session_key)]),
  ]
  return {
    kind: 'read',
    identity,
    match,
    checkpoint: cp,
    result,
    fromOffset,
    reset,
    cwd,
    sessionKeys,
  }
}

/** The uploader's view of a parsed file. */
export function toPending(c: Candidate, plan: Extract<FilePlan, { kind: 'read' }>): PendingFile {
  const { result, fromOffset, match } = plan
  return {
    identity: plan.identity,
    // Nothing new past the checkpoint: the sessions were sent with the earlier records.
    sessions: result.events.length === 0 && fromOffset > 0 ? [] : result.sessions,
    events: result.events,
    fromOffset,
    nextOffset: result.nextOffset,
    size: c.size,
    mtimeMs: c.mtimeMs,
    cwd: plan.cwd,
    reset: plan.reset,
    replaces: match.kind === 'moved' ? match.checkpoint.id : undefined,
  }
}

/**
 * An unchanged file found under a new path (a rename keeps the inode; a copy across
 * filesystems keeps the first line): the checkpoint follows it, nothing is re-sent.
 */
export function followMove(
  store: CheckpointStore,
  c: Candidate,
  plan: Extract<FilePlan, { kind: 'unchanged' }>,
): void {
  const { checkpoint: cp, match, identity } = plan
  if (match.kind !== 'moved' && cp.path === c.file.path) return
  store.commit(identity, {
    committedOffset: cp.committedOffset,
    synced: true,
    size: c.size,
    mtimeMs: c.mtimeMs,
    sessionKeys: cp.sessionKeys,
    cwd: cp.cwd,
    ...(match.kind === 'moved' ? { replaces: cp.id } : {}),
  })
}
