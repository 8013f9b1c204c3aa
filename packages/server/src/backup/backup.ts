import { createReadStream, createWriteStream } from 'node:fs'
import { rename, rm } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import type { Readable, Writable } from 'node:stream'
import { finished } from 'node:stream/promises'
import { createGunzip, createGzip } from 'node:zlib'
import type { Db } from '../db/types.js'
import { migrate, migrationNames } from '../db/migrate.js'
import { decryptSecret } from '../keys/encryption.js'

/**
 * Logical backups: one NDJSON file (gzip when the name ends in `.gz`) holding every
 * row of every table, read in one snapshot. Being logical, a dump taken from PGlite
 * restores into PostgreSQL too, and it survives PGlite upgrades that change the
 * on-disk format. Signing keys are included as stored, so encrypted ones still need
 * the HIVEMIND_SECRET_KEY that sealed them.
 */
export const BACKUP_FORMAT = 'hivemind-backup'
export const BACKUP_VERSION = 1

interface Header {
  format: typeof BACKUP_FORMAT
  version: number
  created_at: string
  source: Db['kind']
  migrations: string[]
}

// Table markers use `$table`, a key no column of ours is called, so they never look like rows.
type Line = Header | { $table: string; rows: number } | Record<string, unknown>

/** A backup or restore that cannot proceed; the message says what to do. */
export class BackupError extends Error {
  readonly code = 'ERR_BACKUP'
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'BackupError'
  }
}

async function tablesInDependencyOrder(db: Db): Promise<string[]> {
  const { rows: tables } = await db.query<{ name: string }>(
    `SELECT table_name AS name FROM information_schema.tables
      WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND table_name <> 'schema_migrations'
      ORDER BY table_name`,
  )
  const { rows: fks } = await db.query<{ child: string; parent: string }>(
    `SELECT c.relname AS child, p.relname AS parent FROM pg_constraint k
       JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class p ON p.oid = k.confrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE k.contype = 'f' AND n.nspname = 'public' AND c.relname <> p.relname`,
  )
  // Parents before children, so foreign keys hold while rows go in.
  const order: string[] = []
  const seen = new Set<string>()
  const visit = (t: string, path: Set<string>) => {
    if (seen.has(t) || path.has(t)) return
    path.add(t)
    for (const fk of fks) if (fk.child === t) visit(fk.parent, path)
    seen.add(t)
    order.push(t)
  }
  for (const { name } of tables) visit(name, new Set())
  return order
}

const ident = (name: string) => `"${name.replace(/"/g, '""')}"`

async function writeLine(out: Writable, line: Line): Promise<void> {
  if (!out.write(`${JSON.stringify(line)}\n`)) {
    await new Promise<void>((resolve, reject) => {
      out.once('drain', resolve)
      out.once('error', reject)
    })
  }
}

/**
 * Writes a backup of `db` to `file` (written to a temp name, then renamed, so a
 * failed backup never leaves a truncated file behind; mode 0600: it holds keys).
 */
export async function backupToFile(
  db: Db,
  file: string,
): Promise<{ tables: number; rows: number }> {
  const tmp = `${file}.partial`
  const raw = createWriteStream(tmp, { mode: 0o600 })
  const gzip = file.endsWith('.gz') ? createGzip() : undefined
  if (gzip) gzip.pipe(raw)
  const out: Writable = gzip ?? raw
  try {
    const stats = await db.transaction(async (tx) => {
      // One snapshot for every table (PostgreSQL; PGlite has a single connection anyway).
      await tx.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ')
      const migrations = (
        await tx.query<{ name: string }>('SELECT name FROM schema_migrations ORDER BY name')
      ).rows.map((r) => r.name)
      const header: Header = {
        format: BACKUP_FORMAT,
        version: BACKUP_VERSION,
        created_at: new Date().toISOString(),
        source: db.kind,
        migrations,
      }
      await writeLine(out, header)
      let rows = 0
      const tables = await tablesInDependencyOrder(tx)
      for (const table of tables) {
        const { rows: data } = await tx.query<{ j: string }>(
          `SELECT row_to_json(t)::text AS j FROM ${ident(table)} t`,
        )
        await writeLine(out, { $table: table, rows: data.length })
        for (const r of data) {
          if (!out.write(`${r.j}\n`)) await new Promise((resolve) => out.once('drain', resolve))
        }
        rows += data.length
      }
      return { tables: tables.length, rows }
    })
    out.end()
    await finished(raw)
    await rename(tmp, file)
    return stats
  } catch (err) {
    out.destroy()
    await rm(tmp, { force: true })
    throw err
  }
}

async function* readLines(file: string): AsyncGenerator<string> {
  const raw: Readable = createReadStream(file)
  const input = file.endsWith('.gz') ? raw.pipe(createGunzip()) : raw
  const rl = createInterface({ input, crlfDelay: Infinity })
  for await (const line of rl) if (line.trim()) yield line
}

const BATCH = 500

/**
 * Restores a backup into an empty database: applies the backup's schema version,
 * loads every row, resets sequences, then applies any newer migrations.
 * Refuses a non-empty target and signing keys that `secretKey` cannot decrypt.
 */
export async function restoreFromFile(
  db: Db,
  file: string,
  options: { secretKey: string | undefined },
): Promise<{ tables: number; rows: number }> {
  const lines = readLines(file)
  const first = await lines.next()
  let header: Header
  try {
    header = JSON.parse(first.done ? '{}' : first.value) as Header
  } catch {
    header = {} as Header
  }
  if (header.format !== BACKUP_FORMAT) throw new BackupError(`${file} is not a HiveMind backup`)
  if (header.version !== BACKUP_VERSION) {
    throw new BackupError(
      `${file} has backup format version ${header.version}; this server reads ${BACKUP_VERSION}`,
    )
  }
  const known = new Set(await migrationNames())
  const unknown = header.migrations.filter((m) => !known.has(m))
  if (unknown.length) {
    throw new BackupError(
      `the backup comes from a newer server (unknown migration ${unknown[0]}); restore it with that version`,
    )
  }
  const inBackup = new Set(header.migrations)
  const stats = await db.transaction(async (tx) => {
    await migrate(tx, { only: (name) => inBackup.has(name) })
    const tables = await tablesInDependencyOrder(tx)
    for (const t of tables) {
      const { rows } = await tx.query(`SELECT 1 FROM ${ident(t)} LIMIT 1`)
      if (rows.length) {
        throw new BackupError(
          `restore needs an empty database but table ${t} has rows; point HIVEMIND_DATA_DIR (or DATABASE_URL) at a new one`,
        )
      }
    }
    const columns = new Map<string, string[]>()
    for (const t of tables) {
      const { rows } = await tx.query<{ c: string }>(
        `SELECT column_name AS c FROM information_schema.columns
          WHERE table_schema = 'public' AND table_name = $1 AND is_generated = 'NEVER'
          ORDER BY ordinal_position`,
        [t],
      )
      columns.set(
        t,
        rows.map((r) => r.c),
      )
    }
    let table: string | undefined
    let batch: Record<string, unknown>[] = []
    let total = 0
    let tableCount = 0
    const flush = async () => {
      if (!table || !batch.length) return
      if (table === 'signing_keys') await checkKeys(batch, options.secretKey)
      const cols = columns.get(table)!.map(ident).join(', ')
      await tx.query(
        `INSERT INTO ${ident(table)} (${cols}) OVERRIDING SYSTEM VALUE
         SELECT ${cols} FROM json_populate_recordset(NULL::${ident(table)}, $1::json)`,
        [JSON.stringify(batch)],
      )
      total += batch.length
      batch = []
    }
    for await (const line of lines) {
      const parsed = JSON.parse(line) as Record<string, unknown>
      const marker = parsed.$table
      if (typeof marker === 'string') {
        await flush()
        table = marker
        tableCount++
        if (!columns.has(marker))
          throw new BackupError(`the backup has a table ${table} this database does not`)
        continue
      }
      batch.push(parsed)
      if (batch.length >= BATCH) await flush()
    }
    await flush()
    await resetSequences(tx)
    return { tables: tableCount, rows: total }
  })
  await migrate(db)
  return stats
}

async function checkKeys(
  rows: Record<string, unknown>[],
  secretKey: string | undefined,
): Promise<void> {
  for (const row of rows) {
    if (row.encrypted !== true) continue
    const kid = String(row.kid)
    if (!secretKey) {
      throw new BackupError(
        `the backup's signing key ${kid} is encrypted: set HIVEMIND_SECRET_KEY to the key the backed-up server used`,
      )
    }
    try {
      await decryptSecret(secretKey, String(row.private_key), kid)
    } catch (cause) {
      throw new BackupError(
        `the backup's signing key ${kid} cannot be decrypted: HIVEMIND_SECRET_KEY differs from the key the backed-up server used`,
        { cause },
      )
    }
  }
}

async function resetSequences(db: Db): Promise<void> {
  const { rows } = await db.query<{ t: string; c: string; seq: string }>(
    `SELECT c.relname AS t, a.attname AS c, pg_get_serial_sequence(quote_ident(c.relname), a.attname) AS seq
       FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
        AND pg_get_serial_sequence(quote_ident(c.relname), a.attname) IS NOT NULL`,
  )
  for (const r of rows) {
    await db.query(
      `SELECT setval($1::regclass, COALESCE((SELECT max(${ident(r.c)}) FROM ${ident(r.t)}), 0) + 1, false)`,
      [r.seq],
    )
  }
}
