import { readFile } from 'node:fs/promises'
import { join } from 'node:path'

/** Claude Code's default `cleanupPeriodDays`: transcripts older than this are deleted. */
export const CLAUDE_DEFAULT_CLEANUP_DAYS = 30

/**
 * `cleanupPeriodDays` from `<config dir>/settings.json` (Claude Code deletes session
 * transcripts older than that at startup), or the default when unset or unreadable.
 */
export async function claudeCleanupDays(configDir: string): Promise<number> {
  try {
    const settings = JSON.parse(await readFile(join(configDir, 'settings.json'), 'utf8')) as {
      cleanupPeriodDays?: unknown
    }
    const days = settings.cleanupPeriodDays
    return typeof days === 'number' && Number.isFinite(days) && days > 0
      ? days
      : CLAUDE_DEFAULT_CLEANUP_DAYS
  } catch {
    return CLAUDE_DEFAULT_CLEANUP_DAYS
  }
}

/**
 * The warning SESSION-FORMATS.md §C.6 asks for, when an import of Claude Code sessions
 * reaches back further than Claude keeps them (no `--since`, or one older than the
 * retention): what is older is gone from disk, and only regular uploads keep it.
 */
export async function claudeRetentionWarning(
  configDirs: readonly string[],
  sinceMs: number | undefined,
  now: number,
): Promise<string | undefined> {
  for (const dir of configDirs) {
    const days = await claudeCleanupDays(dir)
    if (sinceMs !== undefined && now - sinceMs <= days * 86_400_000) continue
    return `Claude Code deletes session transcripts older than ${days} days (cleanupPeriodDays in ${join(dir, 'settings.json')}${days === CLAUDE_DEFAULT_CLEANUP_DAYS ? ', default' : ''}): older sessions can no longer be imported. Run the daemon or a regular import, or raise cleanupPeriodDays.`
  }
  return undefined
}
