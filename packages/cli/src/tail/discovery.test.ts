import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { discoverSessionFiles } from './discovery.js'

describe(discoverSessionFiles.name, () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hivemind-discovery-'))
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('names a directory it cannot read once, however many agents search it', async () => {
    await mkdir(join(dir, 'root'))
    await writeFile(join(dir, 'root', 's.jsonl'), '{"type":"user"}\n')
    await symlink('loop', join(dir, 'root', 'loop'))
    const reported: string[] = []
    const files = await discoverSessionFiles(
      [
        { agent: 'claude-code', roots: [join(dir, 'root')] },
        { agent: 'codex', roots: [join(dir, 'root')] },
      ],
      { onUnreadable: (path, error) => reported.push(`${path} ${error.code}`) },
    )
    expect(files.map((f) => f.path)).toEqual([join(dir, 'root', 's.jsonl')])
    expect(reported).toEqual([`${join(dir, 'root', 'loop')} ELOOP`])
  })
})
