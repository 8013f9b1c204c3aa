import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ExitError } from '../errors.js'
import { CHECKPOINT_DB, CheckpointStore, type FileIdentity } from './checkpoint-store.js'

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

  describe('a state dir it cannot use: an ExitError (exit 1) naming the path, never a bug', () => {
    const failure = (fn: () => unknown): ExitError => {
      try {
        fn()
      } catch (err) {
        if (err instanceof ExitError) return err
        throw err
      }
      throw new Error('did not throw')
    }

    it('a regular file, or a path under one', async () => {
      const file = join(dir, 'file')
      await writeFile(file, '')
      expect(failure(() => CheckpointStore.open(file))).toMatchObject({
        exitCode: 1,
        message: `cannot use the state dir ${file}: not a directory`,
        hint: 'Point --state-dir or HIVEMIND_STATE_DIR at a writable directory.',
      })
      expect(failure(() => CheckpointStore.open(join(file, 'sub'))).message).toBe(
        `cannot use the state dir ${join(file, 'sub')}: a parent of it is not a directory`,
      )
    })

    it('a damaged store, read-write or read-only', async () => {
      const bad = join(dir, 'bad')
      await mkdir(bad)
      await writeFile(join(bad, CHECKPOINT_DB), 'this is not a database, just text in its place')
      for (const open of [
        (d: string) => CheckpointStore.open(d),
        (d: string) => CheckpointStore.openReadOnly(d),
      ]) {
        const err = failure(() => open(bad))
        expect(err.exitCode).toBe(1)
        expect(err.message).toBe(
          `cannot use the checkpoint store ${join(bad, CHECKPOINT_DB)}: file is not a database`,
        )
        expect(err.hint).toMatch(/--state-dir or HIVEMIND_STATE_DIR.*move a damaged/)
      }
    })

    it('an empty store has no checkpoints: read-only finds none, read-write sets it up', async () => {
      const empty = join(dir, 'empty')
      await mkdir(empty)
      await writeFile(join(empty, CHECKPOINT_DB), '')
      expect(CheckpointStore.openReadOnly(empty)).toBeUndefined()
      const rw = CheckpointStore.open(empty)
      expect(rw.all()).toEqual([])
      rw.close()
    })
  })
})
