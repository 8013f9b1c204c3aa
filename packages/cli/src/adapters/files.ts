import { AsyncLocalStorage } from 'node:async_hooks'
import { readdir, realpath, stat } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'

/** Files the tailer must never read (SESSION-FORMATS.md §C.1). */
const IGNORED = /(\.tmp|\.lock|\.compress\.\d+\.tmp)$|\.unreadable-/

export interface WalkOptions {
  /** Directory names not descended into. */
  skipDirs?: ReadonlySet<string>
  maxDepth?: number
}

/** Told about a directory (or linked entry) that exists but could not be read. */
export type UnreadableSink = (path: string, error: NodeJS.ErrnoException) => void

// The adapters call `walk` from their own `discover`: a sink set around that call (rather
// than an option every adapter would have to pass on) hears what they could not list.
const unreadableSink = new AsyncLocalStorage<UnreadableSink>()

/** Runs `fn`, telling `sink` about every directory a {@link walk} inside it could not read. */
export function reportingUnreadable<T>(sink: UnreadableSink, fn: () => Promise<T>): Promise<T> {
  return unreadableSink.run(sink, fn)
}

/**
 * All files under `dir` (sorted, depth-first) for which `accept` is true; missing dir → [].
 * Symbolic links are followed (each real directory and file is visited once, which also
 * breaks link loops); a directory that exists but cannot be read (EACCES, ELOOP, …) is
 * reported to the sink of {@link reportingUnreadable} rather than silently passed over.
 */
export async function walk(
  dir: string,
  accept: (path: string, name: string) => boolean,
  options: WalkOptions = {},
): Promise<string[]> {
  return walkDir(dir, undefined, accept, options, 0, new Set())
}

/**
 * `known` is `dir`'s real path when the walk can tell it without a syscall: a plain
 * subdirectory's is its parent's plus its name; only the root and linked entries are
 * resolved.
 */
async function walkDir(
  dir: string,
  known: string | undefined,
  accept: (path: string, name: string) => boolean,
  options: WalkOptions,
  depth: number,
  seen: Set<string>,
): Promise<string[]> {
  let real: string
  let entries
  try {
    real = known ?? (await realpath(dir))
    entries = await readdir(dir, { withFileTypes: true })
  } catch (err) {
    unreadable(dir, err)
    return []
  }
  if (seen.has(real)) return []
  seen.add(real)
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  const out: string[] = []
  for (const e of entries) {
    const p = join(dir, e.name)
    let isDirectory = e.isDirectory()
    let isFile = e.isFile()
    if (e.isSymbolicLink()) {
      try {
        const s = await stat(p)
        isDirectory = s.isDirectory()
        isFile = s.isFile()
      } catch (err) {
        unreadable(p, err)
        continue
      }
    }
    if (isDirectory) {
      if (options.skipDirs?.has(e.name)) continue
      if (depth >= (options.maxDepth ?? 8)) continue
      const sub = e.isSymbolicLink() ? undefined : join(real, e.name)
      out.push(...(await walkDir(p, sub, accept, options, depth + 1, seen)))
    } else if (isFile && !IGNORED.test(e.name) && accept(p, e.name)) {
      // A linked file and its target (or two links to it) are one session file.
      const key = e.isSymbolicLink() ? await realpath(p).catch(() => p) : join(real, e.name)
      if (seen.has(key)) continue
      seen.add(key)
      out.push(p)
    }
  }
  return out
}

/** Gone (or not a directory) is normal; anything else means sessions would go missing. */
function unreadable(path: string, err: unknown): void {
  const e = err as NodeJS.ErrnoException
  if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return
  unreadableSink.getStore()?.(path, e)
}

export async function isDir(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory()
  } catch {
    return false
  }
}

/** `~` for default roots; `home` wins when given (tests). */
export const homeOf = (home?: string): string => home ?? homedir()

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))
