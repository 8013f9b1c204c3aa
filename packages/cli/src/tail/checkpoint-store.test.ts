import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { CheckpointStore, type FileIdentity } from './checkpoint-store.js'

describe(CheckpointStore.name, () => {
  let dir: string
  let store: CheckpointStore
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hivemind-cp-'))
    store = CheckpointStore.open(join(dir, 'state'))
  })
  afterEach(async () => {
    store.close()
    await rm(dir, { recursive: true, force: true })
  })

  const id = (over: Partial<FileIdentity> = {}): FileIdentity => ({
    dev: '1',
    ino: '100',
    fileFp: 'fp-a',
    path: join(dir, 'a.jsonl'),
    agent: 'codex',
    ...over,
  })
  const commit = (
    i: FileIdentity,
    committedOffset: number,
    extra: { reset?: boolean; replaces?: number } = {},
  ) =>
    store.commit(i, {
      committedOffset,
      synced: false,
      size: 1000,
      mtimeMs: 1,
      sessionKeys: ['k'],
      cwd: '/repo',
      ...extra,
    })

  it('matches by (dev, inode) and first-line fingerprint; offsets never move backwards', () => {
    expect(store.resolve(id())).toEqual({ kind: 'new' })
    commit(id(), 500)
    commit(id(), 200)
    expect(store.resolve(id())).toMatchObject({
      kind: 'same',
      checkpoint: { committedOffset: 500, cwd: '/repo', sessionKeys: ['k'] },
    })
  })

  it('same inode with another first line is a rewrite; a reset commit moves the offset back', () => {
    commit(id(), 500)
    const rewritten = id({ fileFp: 'fp-b' })
    expect(store.resolve(rewritten)).toMatchObject({ kind: 'rewritten' })
    commit(rewritten, 40, { reset: true })
    expect(store.resolve(rewritten)).toMatchObject({
      kind: 'same',
      checkpoint: { committedOffset: 40 },
    })
  })

  it('a file moved to a new path (old one gone) keeps its checkpoint and takes over the row', async () => {
    commit(id({ path: join(dir, 'gone.jsonl') }), 500)
    const moved = id({ ino: '200', path: join(dir, 'archived.jsonl') })
    await writeFile(moved.path, 'x\n')
    const match = store.resolve(moved)
    expect(match).toMatchObject({ kind: 'moved', checkpoint: { committedOffset: 500 } })
    if (match.kind !== 'moved') throw new Error('unreachable')
    commit(moved, 500, { replaces: match.checkpoint.id })
    expect(store.all()).toHaveLength(1)
    expect(store.all()[0]).toMatchObject({ path: moved.path, ino: '200' })
  })

  it('two live files with the same first line stay apart', async () => {
    const a = id({ path: join(dir, 'a.jsonl') })
    await writeFile(a.path, 'x\n')
    commit(a, 500)
    const b = id({ ino: '300', path: join(dir, 'b.jsonl') })
    expect(store.resolve(b)).toEqual({ kind: 'new' })
  })

  it('is read by a second connection (the daemon) and read-only for --dry-run', () => {
    commit(id(), 700)
    const ro = CheckpointStore.openReadOnly(join(dir, 'state'))
    expect(ro?.resolve(id())).toMatchObject({ kind: 'same', checkpoint: { committedOffset: 700 } })
    expect(() => ro?.recordRejected({ path: 'p', error: 'e' })).toThrow(/readonly/i)
    ro?.close()
    expect(CheckpointStore.openReadOnly(join(dir, 'nothing-here'))).toBeUndefined()
  })
})
