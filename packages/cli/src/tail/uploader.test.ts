import {
  eventKey,
  sessionKey,
  type NormalizedEvent,
  type NormalizedSession,
} from '@hivemind/sdk/schemas'
import { describe, expect, it } from 'vitest'
import type { CheckpointStore, FileIdentity } from './checkpoint-store.js'
import { Uploader, type BatchAck, type PendingFile, type SendBatch } from './uploader.js'

const SID = 's1'
const session: NormalizedSession = {
  agent: 'codex',
  source_session_id: SID,
  session_key: sessionKey('codex', SID),
  cwd: '/repo',
  git_branch: null,
  model: null,
  title: null,
  started_at: null,
  ended_at: null,
  source_paths: ['/f.jsonl'],
}

/** A file whose event i sits at byte offset 100·i; the next read starts at 100·n. */
function file(n: number, path = '/f.jsonl', fromOffset = 0): PendingFile {
  const events: NormalizedEvent[] = Array.from({ length: n }, (_, i) => ({
    event_key: eventKey('codex', SID, 'main', `l:${path}:${i}`),
    session_key: session.session_key,
    thread: 'main',
    seq: i,
    ts: null,
    kind: 'user_message',
    src: { path, offset: fromOffset + 100 * i },
  }))
  const identity: FileIdentity = { dev: '1', ino: path, fileFp: 'fp', path, agent: 'codex' }
  return {
    identity,
    sessions: [session],
    events,
    fromOffset,
    nextOffset: fromOffset + 100 * n,
    size: fromOffset + 100 * n,
    mtimeMs: 1,
    cwd: '/repo',
    reset: false,
  }
}

/** A fake store recording commits (the real one is tested on its own). */
function recordingStore() {
  const commits: { path: string; offset: number; synced: boolean }[] = []
  const rejected: string[] = []
  const store = {
    commit: (id: FileIdentity, u: { committedOffset: number; synced: boolean }) =>
      commits.push({ path: id.path, offset: u.committedOffset, synced: u.synced }),
    recordRejected: (r: { error: string }) => rejected.push(r.error),
  } as unknown as CheckpointStore
  return { store, commits, rejected }
}

const ok = (n: number): BatchAck => ({ accepted: n, duplicates: 0, rejected: [] })

describe(Uploader.name, () => {
  it('batches by count and advances the checkpoint only over acknowledged chunks', async () => {
    const { store, commits } = recordingStore()
    const sizes: number[] = []
    const send: SendBatch = ({ events }) => {
      sizes.push(events.length)
      return Promise.resolve(ok(events.length))
    }
    const u = new Uploader({ send, store, maxEvents: 4, concurrency: 1 })
    await u.add(file(10))
    expect(await u.finish()).toEqual([])
    expect(sizes).toEqual([4, 4, 2])
    expect(commits).toEqual([
      { path: '/f.jsonl', offset: 400, synced: false },
      { path: '/f.jsonl', offset: 800, synced: false },
      { path: '/f.jsonl', offset: 1000, synced: true },
    ])
    expect(u.stats).toMatchObject({ batches: 3, eventsSent: 10, accepted: 10 })
  })

  it('stops after a failed batch and never commits past it', async () => {
    const { store, commits } = recordingStore()
    let calls = 0
    const send: SendBatch = ({ events }) =>
      ++calls === 2 ? Promise.reject(new Error('ECONNREFUSED')) : Promise.resolve(ok(events.length))
    const u = new Uploader({ send, store, maxEvents: 4, concurrency: 1 })
    await u.add(file(10))
    await u.add(file(3, '/g.jsonl'))
    const failed = await u.finish()
    expect(u.failure).toMatchObject({ message: 'ECONNREFUSED' })
    expect(failed.map((f) => f.identity.path)).toEqual(['/f.jsonl', '/g.jsonl'])
    expect(commits).toEqual([{ path: '/f.jsonl', offset: 400, synced: false }])
  })

  it('splits a batch the server finds too large (413) and logs rejected items, moving past them', async () => {
    const { store, commits, rejected } = recordingStore()
    const sizes: number[] = []
    const tooLarge = new Error('413')
    const send: SendBatch = ({ events }) => {
      sizes.push(events.length)
      if (events.length > 2) return Promise.reject(tooLarge)
      return Promise.resolve({
        accepted: events.length - 1,
        duplicates: 0,
        rejected: [{ kind: 'event', index: 0, error: 'ts: Invalid ISO datetime' }],
      })
    }
    const u = new Uploader({ send, store, isTooLarge: (e) => e === tooLarge })
    await u.add(file(4))
    expect(await u.finish()).toEqual([])
    expect(sizes).toEqual([4, 2, 2])
    expect(rejected).toEqual(['ts: Invalid ISO datetime', 'ts: Invalid ISO datetime'])
    expect(u.stats).toMatchObject({ rejected: 2, accepted: 2 })
    expect(commits).toEqual([{ path: '/f.jsonl', offset: 400, synced: true }])
  })

  it('acknowledges out of order safely: the offset waits for the earliest open chunk', async () => {
    const { store, commits } = recordingStore()
    const gates: (() => void)[] = []
    const send: SendBatch = ({ events }) =>
      new Promise((resolve) => gates.push(() => resolve(ok(events.length))))
    const u = new Uploader({ send, store, maxEvents: 2, concurrency: 3 })
    await u.add(file(6))
    const done = u.finish()
    await new Promise((r) => setTimeout(r, 0))
    gates[2]()
    gates[1]()
    await new Promise((r) => setTimeout(r, 0))
    expect(commits).toEqual([])
    gates[0]()
    await done
    expect(commits.at(-1)).toEqual({ path: '/f.jsonl', offset: 600, synced: true })
  })
})
