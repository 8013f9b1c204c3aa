import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { claudeCleanupDays, claudeRetentionWarning } from './claude-retention.js'

const DAY = 86_400_000
const dirs: string[] = []
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true })
})
async function configDir(settings?: unknown): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'hivemind-claude-'))
  dirs.push(d)
  if (settings !== undefined) await writeFile(join(d, 'settings.json'), JSON.stringify(settings))
  return d
}

describe('Claude Code transcript retention', () => {
  it('reads cleanupPeriodDays, defaulting to 30', async () => {
    expect(await claudeCleanupDays(await configDir())).toBe(30)
    expect(await claudeCleanupDays(await configDir({ cleanupPeriodDays: 99 }))).toBe(99)
    expect(await claudeCleanupDays(await configDir({ cleanupPeriodDays: 'x' }))).toBe(30)
  })

  it('warns when the import reaches back further than Claude keeps transcripts', async () => {
    const now = Date.parse('2026-11-26T00:00:00Z')
    const d = await configDir()
    expect(await claudeRetentionWarning([d], undefined, now)).toMatch(
      /older than 30 days \(cleanupPeriodDays in .*settings\.json, default\)/,
    )
    expect(await claudeRetentionWarning([d], now - 60 * DAY, now)).toMatch(/30 days/)
    expect(await claudeRetentionWarning([d], now - DAY, now)).toBeUndefined()
    const long = await configDir({ cleanupPeriodDays: 365 })
    expect(await claudeRetentionWarning([long], now - 60 * DAY, now)).toBeUndefined()
    expect(await claudeRetentionWarning([long], undefined, now)).toMatch(/older than 365 days/)
  })
})
