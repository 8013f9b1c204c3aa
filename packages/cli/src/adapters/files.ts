import { readdir, stat } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'

/** Files the tailer must never read (SESSION-FORMATS.md §C.1). */
const IGNORED = /(\.tmp|\.lock|\.compress\.\d+\.tmp)$|\.unreadable-/

export interface WalkOptions {
  /** Directory names not descended into. */
  skipDirs?: ReadonlySet<string>
  maxDepth?: number
}

/** All files under `dir` (sorted, depth-first) for which `accept` is true; missing dir → []. */
export async function walk(
  dir: string,
  accept: (path: string, name: string) => boolean,
  options: WalkOptions = {},
  depth = 0,
): Promise<string[]> {
  let entries
  try {
    entries = await readdir(dir, { withFileTypes: true })
  } catch {
    return []
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  const out: string[] = []
  for (const e of entries) {
    const p = join(dir, e.name)
    if (e.isDirectory()) {
      if (options.skipDirs?.has(e.name)) continue
      if (depth >= (options.maxDepth ?? 8)) continue
      out.push(...(await walk(p, accept, options, depth + 1)))
    } else if (e.isFile() && !IGNORED.test(e.name) && accept(p, e.name)) {
      out.push(p)
    }
  }
  return out
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
