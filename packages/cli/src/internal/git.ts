import { execFile } from 'node:child_process'
import { existsSync, realpathSync } from 'node:fs'
import { dirname, join, resolve, sep } from 'node:path'

/** Root of the git work tree containing `cwd` (`git rev-parse`, else the nearest `.git`). */
export async function gitRepoRoot(cwd: string): Promise<string | undefined> {
  const fromGit = await new Promise<string | undefined>((done) => {
    execFile('git', ['rev-parse', '--show-toplevel'], { cwd, timeout: 5_000 }, (err, stdout) =>
      done(err ? undefined : stdout.trim() || undefined),
    )
  })
  if (fromGit) return realpathOr(fromGit)
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    if (existsSync(join(dir, '.git'))) return realpathOr(dir)
    if (dirname(dir) === dir) return undefined
  }
}

/** Whether `path` is `root` or inside it (symlinks resolved when the path still exists). */
export function isInside(path: string | null | undefined, root: string): boolean {
  if (!path) return false
  const p = realpathOr(resolve(path))
  return p === root || p.startsWith(root.endsWith(sep) ? root : root + sep)
}

function realpathOr(path: string): string {
  try {
    return realpathSync(path)
  } catch {
    return path
  }
}
