import { copyFile, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FIXTURES } from '../../test/helpers.js'
import { discoverSessionFiles } from './discovery.js'
import { sniffAgent } from './sniff.js'

describe('sniffAgent and contested discovery', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hivemind-sniff-'))
    const codexDay = join(FIXTURES, 'codex', 'sessions', '2026', '01', '02')
    const [rollout] = await readdir(codexDay)
    // Renamed: nothing in the name says Codex any more.
    await copyFile(join(codexDay, rollout), join(dir, 'renamed-codex.jsonl'))
    const legacy = join(FIXTURES, 'codex-legacy')
    await copyFile(join(legacy, (await readdir(legacy))[0]), join(dir, 'old-codex.jsonl'))
    await copyFile(
      join(
        FIXTURES,
        'claude-code',
        'projects',
        '-tmp-proj',
        '11111111-2222-4333-8444-555555555555.jsonl',
      ),
      join(dir, 'claude.jsonl'),
    )
    await writeFile(join(dir, 'garbage.jsonl'), 'not json\n')
  })
  afterAll(() => rm(dir, { recursive: true, force: true }))

  it('reads the agent from the first line', async () => {
    expect(await sniffAgent(join(dir, 'renamed-codex.jsonl'))).toBe('codex')
    expect(await sniffAgent(join(dir, 'old-codex.jsonl'))).toBe('codex')
    expect(await sniffAgent(join(dir, 'claude.jsonl'))).toBe('claude-code')
    expect(await sniffAgent(join(dir, 'garbage.jsonl'))).toBeUndefined()
    expect(await sniffAgent(join(dir, 'missing.jsonl'))).toBeUndefined()
  })

  it('gives a file two adapters accept to the one its first line names', async () => {
    const files = await discoverSessionFiles([
      { agent: 'claude-code', roots: [dir] },
      { agent: 'codex', roots: [dir] },
    ])
    const agentOf = Object.fromEntries(files.map((f) => [f.path.slice(dir.length + 1), f.agent]))
    expect(agentOf).toMatchObject({
      'renamed-codex.jsonl': 'codex',
      'old-codex.jsonl': 'codex',
      'claude.jsonl': 'claude-code',
    })
  })
})
