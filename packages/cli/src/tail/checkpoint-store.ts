import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { DatabaseSync, type StatementSync } from 'node:sqlite'
import type { AgentId } from '@hivemind/sdk/schemas'
import { STATE_DIR_ENV } from '../daemon/state-dir.js'
import { EXIT, ExitError } from '../errors.js'

/** File name of the checkpoint database inside the state dir. */
export const CHECKPOINT_DB = 'checkpoints.sqlite'

const SCHEMA_VERSION = 1

/** What the store knows about one session file. */
export interface FileCheckpoint {
  id: number
  fileFp: string
  dev: string
  ino: string
  path: string
  agent: AgentId
  /** Size and mtime at the last parse that was fully acknowledged. */
  size: number
  mtimeMs: number
  /** Byte offset up to which the server has acknowledged every record. */
  committedOffset: number
  /** Every record up to the end of the file (as it was at `size`/`mtimeMs`) is acknowledged. */
  synced: boolean
  sessionKeys: string[]
  cwd: string | null
}

/** The identity of a file on disk as the store matches it (SESSION-FORMATS.md §C.2). */
export interface FileIdentity {
  dev: string
  ino: string
  fileFp: string
  path: string
  agent: AgentId
}

/** How {@link CheckpointStore.resolve} matched a file. */
export type Match =
  | { kind: 'new' }
  | { kind: 'same'; checkpoint: FileCheckpoint }
  /** Same file_fp under another path whose file is gone (Codex archive, Gemini slug dir). */
  | { kind: 'moved'; checkpoint: FileCheckpoint }
  /** Same inode, other first line (or shorter than the offset): re-read from 0. */
  | { kind: 'rewritten'; checkpoint: FileCheckpoint }

interface Row {
  id: number
  file_fp: string
  dev: string
  ino: string
  path: string
  agent: string
  size: number
  mtime_ms: number
  committed_offset: number
  synced: number
  session_keys: string
  cwd: string | null
}

/**
 * The checkpoint store shared by `hivemind import` and the daemon: one SQLite file
 * (`node:sqlite`, WAL, no native addon) in the state dir, one row per session file keyed
 * by (dev, inode) and the SHA-256 of its first line. Offsets only move forward after the
 * server acknowledged the records before them.
 */
export class CheckpointStore {
  readonly path: string
  readonly #db: DatabaseSync
  readonly #byInode: StatementSync
  readonly #byFp: StatementSync

  private constructor(path: string, db: DatabaseSync) {
    this.path = path
    this.#db = db
    this.#byInode = db.prepare('SELECT * FROM files WHERE dev = ? AND ino = ?')
    this.#byFp = db.prepare('SELECT * FROM files WHERE file_fp = ? ORDER BY last_seen DESC')
  }

  /**
   * Opens (creating it and the state dir if needed) `<stateDir>/checkpoints.sqlite`; a
   * state dir that is not a writable directory, or a damaged store, is an
   * {@link ExitError} naming the path.
   */
  static open(stateDir: string): CheckpointStore {
    const path = join(stateDir, CHECKPOINT_DB)
    ensureStateDir(stateDir)
    let db: DatabaseSync | undefined
    try {
      db = new DatabaseSync(path, { timeout: 10_000 })
      db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;')
      migrate(db)
      return new CheckpointStore(path, db)
    } catch (err) {
      if (db?.isOpen) db.close()
      throw storeError('checkpoint store', path, err)
    }
  }

  /**
   * Opens an existing store read-only (`--dry-run`); `undefined` when there is none, or
   * when it holds no checkpoints yet (empty: a writing run would set it up).
   */
  static openReadOnly(stateDir: string): CheckpointStore | undefined {
    const path = join(stateDir, CHECKPOINT_DB)
    if (!existsSync(path)) return undefined
    let db: DatabaseSync | undefined
    try {
      db = new DatabaseSync(path, { readOnly: true, timeout: 10_000 })
      const schema = db
        .prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'files'")
        .get() as { n: number }
      if (schema.n === 0) {
        db.close()
        return undefined
      }
      return new CheckpointStore(path, db)
    } catch (err) {
      if (db?.isOpen) db.close()
      throw storeError('checkpoint store', path, err)
    }
  }

  /**
   * Finds the checkpoint of a file: by (dev, inode) with the same first line; else by
   * first line when the file it was recorded under no longer exists (a move).
   */
  resolve(id: FileIdentity): Match {
    const byInode = this.#byInode.get(id.dev, id.ino) as Row | undefined
    if (byInode) {
      const checkpoint = fromRow(byInode)
      return byInode.file_fp === id.fileFp
        ? { kind: 'same', checkpoint }
        : { kind: 'rewritten', checkpoint }
    }
    for (const row of this.#byFp.all(id.fileFp) as unknown as Row[]) {
      if (row.agent === id.agent && row.path !== id.path && !existsSync(row.path)) {
        return { kind: 'moved', checkpoint: fromRow(row) }
      }
    }
    return { kind: 'new' }
  }

  /**
   * Records that the server acknowledged everything before `committedOffset`. Creates
   * the row for a new file, takes over a moved one's row, and never moves an offset backwards
   * unless `reset` (a rewritten file being re-read from 0).
   */
  commit(
    id: FileIdentity,
    update: {
      committedOffset: number
      synced: boolean
      size: number
      mtimeMs: number
      sessionKeys: readonly string[]
      cwd: string | null
      reset?: boolean
      /** Row id of the checkpoint this file moved from (a `moved` match). */
      replaces?: number
    },
  ): void {
    const now = Date.now()
    const keys = JSON.stringify([...new Set(update.sessionKeys)].sort())
    const params = {
      fp: id.fileFp,
      dev: id.dev,
      ino: id.ino,
      path: id.path,
      agent: id.agent,
      size: update.size,
      mtime: update.mtimeMs,
      offset: update.committedOffset,
      synced: update.synced ? 1 : 0,
      keys,
      cwd: update.cwd,
      now,
      reset: update.reset ? 1 : 0,
    }
    this.#db.exec('BEGIN IMMEDIATE')
    try {
      // A moved file's old row (other dev/ino, same fp) is taken over, not duplicated.
      if (update.replaces !== undefined) {
        this.#db
          .prepare('DELETE FROM files WHERE id = ? AND NOT (dev = ? AND ino = ?)')
          .run(update.replaces, id.dev, id.ino)
      }
      this.#db
        .prepare(
          `INSERT INTO files (file_fp, dev, ino, path, agent, size, mtime_ms, committed_offset,
                              synced, session_keys, cwd, first_seen, last_seen)
           VALUES (:fp, :dev, :ino, :path, :agent, :size, :mtime, :offset, :synced, :keys, :cwd, :now, :now)
           ON CONFLICT (dev, ino) DO UPDATE SET
             file_fp = :fp, path = :path, agent = :agent, size = :size, mtime_ms = :mtime,
             committed_offset = CASE WHEN :reset = 1 OR file_fp <> :fp THEN :offset
                                     ELSE max(committed_offset, :offset) END,
             synced = :synced, session_keys = :keys, cwd = coalesce(:cwd, cwd), last_seen = :now`,
        )
        .run(params)
      this.#db.exec('COMMIT')
    } catch (err) {
      this.#db.exec('ROLLBACK')
      throw err
    }
  }

  /** Marks a file as seen (keeps rows of deleted files findable for ≥ 30 days). */
  touch(checkpoint: FileCheckpoint): void {
    this.#db.prepare('UPDATE files SET last_seen = ? WHERE id = ?').run(Date.now(), checkpoint.id)
  }

  /** Logs an item the server rejected; the checkpoint moves past it, the line stays on disk. */
  recordRejected(item: { path: string; eventKey?: string | undefined; error: string }): void {
    this.#db
      .prepare('INSERT INTO rejected (path, event_key, error, at) VALUES (?, ?, ?, ?)')
      .run(item.path, item.eventKey ?? null, item.error, Date.now())
  }

  /** Number of rejected items ever logged (for `status`). */
  rejectedCount(): number {
    const row = this.#db.prepare('SELECT count(*) AS n FROM rejected').get() as { n: number }
    return row.n
  }

  /** Every checkpoint row (tests, `status`). */
  all(): FileCheckpoint[] {
    return (this.#db.prepare('SELECT * FROM files ORDER BY path').all() as unknown as Row[]).map(
      fromRow,
    )
  }

  close(): void {
    if (this.#db.isOpen) this.#db.close()
  }
}

/** Why the store cannot be used, as the one line the CLI prints (exit 1). */
/**
 * Creates the state dir (0700) if needed; one that cannot be (a file in the way, no
 * permission) is an {@link ExitError} naming it and the flag or variable to change.
 */
export function ensureStateDir(stateDir: string): void {
  try {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 })
  } catch (err) {
    throw storeError('state dir', stateDir, err)
  }
}

function storeError(what: string, path: string, err: unknown): ExitError {
  const e = err as NodeJS.ErrnoException
  const reason =
    e.code === 'EEXIST'
      ? 'not a directory'
      : e.code === 'ENOTDIR'
        ? 'a parent of it is not a directory'
        : e.code === 'EACCES' || e.code === 'EPERM' || e.code === 'EROFS'
          ? 'permission denied'
          : // SQLite says it in a few words: "file is not a database", "database is locked".
            (e.message ?? String(err)).split('\n')[0]
  return new ExitError(EXIT.failed, `cannot use the ${what} ${path}: ${reason}`, {
    cause: err,
    hint: `Point --state-dir or ${STATE_DIR_ENV} at a writable directory${what === 'state dir' ? '' : `, or move a damaged ${CHECKPOINT_DB} aside (the server keeps what it already has only once)`}.`,
  })
}

function fromRow(r: Row): FileCheckpoint {
  return {
    id: r.id,
    fileFp: r.file_fp,
    dev: r.dev,
    ino: r.ino,
    path: r.path,
    agent: r.agent as AgentId,
    size: r.size,
    mtimeMs: r.mtime_ms,
    committedOffset: r.committed_offset,
    synced: r.synced === 1,
    sessionKeys: JSON.parse(r.session_keys) as string[],
    cwd: r.cwd,
  }
}

function migrate(db: DatabaseSync): void {
  const { user_version: version } = db.prepare('PRAGMA user_version').get() as {
    user_version: number
  }
  if (version >= SCHEMA_VERSION) return
  db.exec(`
    BEGIN IMMEDIATE;
    CREATE TABLE IF NOT EXISTS files (
      id INTEGER PRIMARY KEY,
      file_fp TEXT NOT NULL,
      dev TEXT NOT NULL,
      ino TEXT NOT NULL,
      path TEXT NOT NULL,
      agent TEXT NOT NULL,
      size INTEGER NOT NULL,
      mtime_ms REAL NOT NULL,
      committed_offset INTEGER NOT NULL,
      synced INTEGER NOT NULL,
      session_keys TEXT NOT NULL,
      cwd TEXT,
      first_seen INTEGER NOT NULL,
      last_seen INTEGER NOT NULL,
      UNIQUE (dev, ino)
    );
    CREATE INDEX IF NOT EXISTS files_by_fp ON files (file_fp);
    CREATE TABLE IF NOT EXISTS rejected (
      id INTEGER PRIMARY KEY,
      path TEXT NOT NULL,
      event_key TEXT,
      error TEXT NOT NULL,
      at INTEGER NOT NULL
    );
    PRAGMA user_version = ${SCHEMA_VERSION};
    COMMIT;
  `)
}
