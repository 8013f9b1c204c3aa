import type { NormalizedEvent, NormalizedSession } from '@hivemind/sdk/schemas'
import type { CheckpointStore, FileIdentity } from './checkpoint-store.js'

/** What the server answers for one batch (`POST /api/v1/sessions/batch`). */
export interface BatchAck {
  accepted: number
  duplicates: number
  rejected: readonly {
    kind?: 'session' | 'event' | undefined
    index: number
    event_key?: string | undefined
    error: string
  }[]
}

/** Sends one batch; throws when the server did not acknowledge it. */
export type SendBatch = (batch: {
  sessions: NormalizedSession[]
  events: NormalizedEvent[]
}) => Promise<BatchAck>

/** One parsed file waiting to be uploaded and checkpointed. */
export interface PendingFile {
  identity: FileIdentity
  sessions: NormalizedSession[]
  events: NormalizedEvent[]
  /** Committed offset the parse started from. */
  fromOffset: number
  /** Where the next read starts once everything here is acknowledged. */
  nextOffset: number
  size: number
  mtimeMs: number
  cwd: string | null
  /** The file was rewritten: its offset may move backwards. */
  reset: boolean
  /** Row id of the checkpoint of the path this file moved from. */
  replaces?: number | undefined
}

/** A rejected item, as logged. */
export interface Rejection {
  path: string
  eventKey: string | undefined
  error: string
}

export interface UploaderOptions {
  send: SendBatch
  /** Where acknowledged offsets go; none in tests of the batching alone. */
  store?: CheckpointStore | undefined
  /** @default 1000 */
  maxEvents?: number
  /** Estimated JSON bytes per batch. @default 8 MiB */
  maxBytes?: number
  /** Batches in flight at once. @default 3 */
  concurrency?: number
  onRejected?: (r: Rejection) => void
  onAck?: (events: number) => void
  /** A 413 is answered by splitting the batch; this tells whether an error is one. */
  isTooLarge?: (err: unknown) => boolean
}

interface Chunk {
  file: FileState
  events: NormalizedEvent[]
  /** Lowest source offset of this chunk's and every later chunk's events. */
  resumeOffset: number
  acked: boolean
}

interface FileState {
  pending: PendingFile
  chunks: Chunk[]
  sessionKeys: string[]
  /** Every chunk exists and has its resume offset: safe to commit. */
  sealed: boolean
  done: boolean
}

interface Batch {
  sessions: Map<string, NormalizedSession>
  chunks: Chunk[]
  events: number
  bytes: number
}

/** Totals of an upload run. */
export interface UploadStats {
  batches: number
  eventsSent: number
  accepted: number
  duplicates: number
  rejected: number
}

/**
 * Packs the events of parsed files into batches (by count and estimated size), sends a
 * few at a time, and advances each file's checkpoint only over records the server has
 * acknowledged: up to the first unacknowledged chunk, or to the file's `nextOffset` once
 * every chunk is in. Rejected items are logged and counted, and the checkpoint moves
 * past them (DESIGN.md "Batch upload"). After the first failed batch nothing new is
 * sent; `finish()` waits for the batches in flight and reports the failure.
 */
export class Uploader {
  readonly stats: UploadStats = {
    batches: 0,
    eventsSent: 0,
    accepted: 0,
    duplicates: 0,
    rejected: 0,
  }
  readonly #send: SendBatch
  readonly #store: CheckpointStore | undefined
  readonly #maxEvents: number
  readonly #maxBytes: number
  readonly #concurrency: number
  readonly #options: UploaderOptions
  readonly #files: FileState[] = []
  readonly #inflight = new Set<Promise<void>>()
  #current: Batch = emptyBatch()
  #failure: unknown

  constructor(options: UploaderOptions) {
    this.#options = options
    this.#send = options.send
    this.#store = options.store
    this.#maxEvents = options.maxEvents ?? 1000
    this.#maxBytes = options.maxBytes ?? 8 * 1024 * 1024
    this.#concurrency = options.concurrency ?? 3
  }

  /** The first error a batch failed with, if any. */
  get failure(): unknown {
    return this.#failure
  }

  /** Queues a parsed file; resolves when there is room for more (backpressure). */
  async add(pending: PendingFile): Promise<void> {
    if (this.#failure !== undefined) return
    const file: FileState = {
      pending,
      chunks: [],
      sessionKeys: pending.sessions.map((s) => s.session_key),
      sealed: false,
      done: false,
    }
    this.#files.push(file)
    if (pending.events.length === 0 && pending.sessions.length === 0) {
      file.sealed = true
      this.#commit(file)
      return
    }
    // A file that fits in a batch of its own is not split across two: batches in flight
    // together then touch different sessions, and the server (which serialises batches
    // sharing a session) stores them in parallel.
    const sizes = pending.events.map(estimateBytes)
    const fileBytes = sizes.reduce((a, b) => a + b, 0)
    const cur = this.#current
    if (
      cur.events > 0 &&
      pending.events.length <= this.#maxEvents &&
      fileBytes <= this.#maxBytes &&
      (cur.events + pending.events.length > this.#maxEvents ||
        cur.bytes + fileBytes > this.#maxBytes)
    ) {
      await this.#flush()
    }
    let chunk = this.#openChunk(file)
    for (const [i, event] of pending.events.entries()) {
      const size = sizes[i]
      const b = this.#current
      if (b.events > 0 && (b.events >= this.#maxEvents || b.bytes + size > this.#maxBytes)) {
        await this.#flush()
        chunk = this.#openChunk(file)
      }
      chunk.events.push(event)
      this.#current.events++
      this.#current.bytes += size
    }
    // Resume offsets: the smallest source offset from each chunk onwards.
    let min = pending.nextOffset
    for (let i = file.chunks.length - 1; i >= 0; i--) {
      const c = file.chunks[i]
      for (const e of c.events) min = Math.min(min, e.src?.offset ?? pending.fromOffset)
      c.resumeOffset = Math.max(pending.fromOffset, min)
    }
    file.sealed = true
    // Chunks sent while this file was still being packed may already be acknowledged.
    if (file.chunks.some((c) => c.acked)) this.#commit(file)
    if (this.#current.events >= this.#maxEvents || this.#current.bytes >= this.#maxBytes) {
      await this.#flush()
    }
  }

  /** Sends what is left, waits for every batch; returns the files not fully acknowledged. */
  async finish(): Promise<PendingFile[]> {
    if (this.#failure === undefined && this.#current.chunks.length > 0) await this.#flush()
    while (this.#inflight.size > 0) await Promise.race(this.#inflight)
    return this.#files.filter((f) => !f.done).map((f) => f.pending)
  }

  #openChunk(file: FileState): Chunk {
    const chunk: Chunk = { file, events: [], resumeOffset: file.pending.fromOffset, acked: false }
    file.chunks.push(chunk)
    this.#current.chunks.push(chunk)
    for (const s of file.pending.sessions) mergeSession(this.#current.sessions, s)
    return chunk
  }

  async #flush(): Promise<void> {
    const batch = this.#current
    this.#current = emptyBatch()
    if (batch.chunks.length === 0) return
    while (this.#inflight.size >= this.#concurrency) await Promise.race(this.#inflight)
    if (this.#failure !== undefined) return
    const p = this.#sendBatch(batch).then(
      () => this.#acked(batch),
      (err: unknown) => {
        this.#failure ??= err
      },
    )
    const tracked = p.finally(() => this.#inflight.delete(tracked))
    this.#inflight.add(tracked)
  }

  async #sendBatch(batch: Batch): Promise<void> {
    const events = batch.chunks.flatMap((c) => c.events)
    await this.#sendEvents([...batch.sessions.values()], events)
  }

  /** Sends events (splitting in halves on 413) and logs rejections. */
  async #sendEvents(sessions: NormalizedSession[], events: NormalizedEvent[]): Promise<void> {
    let ack: BatchAck
    try {
      ack = await this.#send({ sessions, events })
    } catch (err) {
      if (events.length > 1 && this.#options.isTooLarge?.(err)) {
        const half = Math.ceil(events.length / 2)
        const keys = (evs: NormalizedEvent[]) => new Set(evs.map((e) => e.session_key))
        const [a, b] = [events.slice(0, half), events.slice(half)]
        await this.#sendEvents(
          sessions.filter((s) => keys(a).has(s.session_key)),
          a,
        )
        await this.#sendEvents(
          sessions.filter((s) => keys(b).has(s.session_key)),
          b,
        )
        return
      }
      throw err
    }
    this.stats.batches++
    this.stats.eventsSent += events.length
    this.stats.accepted += ack.accepted
    this.stats.duplicates += ack.duplicates
    this.stats.rejected += ack.rejected.length
    for (const r of ack.rejected) {
      const rejection: Rejection =
        r.kind === 'session'
          ? {
              path: sessions[r.index]?.source_paths[0] ?? '(session record)',
              eventKey: undefined,
              error: `session record: ${r.error}`,
            }
          : rejectedEvent(r, events)
      this.#store?.recordRejected(rejection)
      this.#options.onRejected?.(rejection)
    }
    this.#options.onAck?.(events.length)
  }

  #acked(batch: Batch): void {
    const touched = new Set<FileState>()
    for (const c of batch.chunks) {
      c.acked = true
      touched.add(c.file)
    }
    for (const f of touched) this.#commit(f)
  }

  #commit(file: FileState): void {
    const { pending } = file
    if (!file.sealed || file.done) return
    const firstOpen = file.chunks.find((c) => !c.acked)
    const synced = firstOpen === undefined
    const committedOffset = firstOpen ? firstOpen.resumeOffset : pending.nextOffset
    if (synced) {
      file.done = true
      // Acknowledged in full: drop the events, so a long import holds only what is in flight.
      file.pending = { ...pending, sessions: [], events: [] }
      for (const c of file.chunks) c.events = []
    }
    if (!synced && committedOffset <= pending.fromOffset && !pending.reset) return
    this.#store?.commit(pending.identity, {
      committedOffset,
      synced,
      size: pending.size,
      mtimeMs: pending.mtimeMs,
      sessionKeys: file.sessionKeys,
      cwd: pending.cwd,
      reset: pending.reset,
      ...(pending.replaces === undefined ? {} : { replaces: pending.replaces }),
    })
  }
}

function rejectedEvent(
  r: BatchAck['rejected'][number],
  events: readonly NormalizedEvent[],
): Rejection {
  const event =
    (r.event_key !== undefined ? events.find((e) => e.event_key === r.event_key) : undefined) ??
    events[r.index]
  return {
    path: event?.src?.path ?? '(unknown file)',
    eventKey: r.event_key ?? event?.event_key,
    error: r.error,
  }
}

function emptyBatch(): Batch {
  return { sessions: new Map(), chunks: [], events: 0, bytes: 0 }
}

/** JSON size of an event without serialising it twice: its raw line dominates. */
function estimateBytes(e: NormalizedEvent): number {
  return 600 + (e.raw?.length ?? 0) * 1.1 + (e.text?.length ?? 0) * 1.1
}

/** Several files can describe one session: one entry per key, fields merged. */
function mergeSession(into: Map<string, NormalizedSession>, s: NormalizedSession): void {
  const prev = into.get(s.session_key)
  if (!prev) {
    into.set(s.session_key, s)
    return
  }
  const min = (a: string | null, b: string | null) => (a && b ? (a < b ? a : b) : (a ?? b))
  const max = (a: string | null, b: string | null) => (a && b ? (a > b ? a : b) : (a ?? b))
  into.set(s.session_key, {
    ...s,
    ...prev,
    cwd: prev.cwd ?? s.cwd,
    git_branch: prev.git_branch ?? s.git_branch,
    model: prev.model ?? s.model,
    title: prev.title ?? s.title,
    started_at: min(prev.started_at, s.started_at),
    ended_at: max(prev.ended_at, s.ended_at),
    source_paths: [...new Set([...prev.source_paths, ...s.source_paths])],
  })
}
