// PostgreSQL's binary COPY format (https://www.postgresql.org/docs/current/sql-copy.html,
// "Binary Format"): a header, then per row a field count and each field as a length
// followed by the type's binary send form. Values travel as bytes with no escaping, so
// PostgreSQL stores megabytes of agent output without parsing them as JSON or text.

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1')
/** Microseconds between the Unix epoch and PostgreSQL's (2000-01-01). */
const PG_EPOCH_US = BigInt(Date.UTC(2000, 0, 1)) * 1000n
const CHUNK = 1 << 20
const FRACTION = /\.(\d+)/

/** A timestamp PostgreSQL's binary form cannot carry (it was not a parseable ISO time). */
export class CopyValueError extends Error {
  readonly code = 'copy_value_invalid'
}

/**
 * Writes rows in the binary COPY format into 1 MiB chunks (a larger value gets a chunk
 * of its own size), for `Db.copyIn`.
 */
export class BinaryCopyWriter {
  readonly #chunks: Buffer[] = []
  #buf: Buffer
  #at: number
  #rows = 0

  constructor() {
    this.#buf = Buffer.allocUnsafe(CHUNK)
    this.#at = SIGNATURE.copy(this.#buf, 0)
    this.#at = this.#buf.writeInt32BE(0, this.#at) // flags
    this.#at = this.#buf.writeInt32BE(0, this.#at) // header extension length
  }

  /** Rows started so far. */
  get rows(): number {
    return this.#rows
  }

  /** Starts a row of `fields` values; exactly that many writes must follow. */
  row(fields: number): this {
    this.#room(2)
    this.#at = this.#buf.writeInt16BE(fields, this.#at)
    this.#rows++
    return this
  }

  /** SQL NULL. */
  null(): this {
    this.#room(4)
    this.#at = this.#buf.writeInt32BE(-1, this.#at)
    return this
  }

  /** `text` (any string type): the UTF-8 bytes. */
  text(value: string | null | undefined): this {
    if (value == null) return this.null()
    return this.#string(value, 0)
  }

  /** `jsonb`: version 1, then the JSON text. */
  jsonb(jsonText: string | null | undefined): this {
    if (jsonText == null) return this.null()
    return this.#string(jsonText, 1)
  }

  /** `bigint`. */
  int8(value: number | string | bigint | null | undefined): this {
    if (value == null) return this.null()
    this.#room(12)
    this.#at = this.#buf.writeInt32BE(8, this.#at)
    this.#at = this.#buf.writeBigInt64BE(BigInt(value), this.#at)
    return this
  }

  /** `boolean`. */
  bool(value: boolean | null | undefined): this {
    if (value == null) return this.null()
    this.#room(5)
    this.#at = this.#buf.writeInt32BE(1, this.#at)
    this.#at = this.#buf.writeUInt8(value ? 1 : 0, this.#at)
    return this
  }

  /** `timestamptz` from an ISO 8601 string, to the microsecond as PostgreSQL keeps it. */
  timestamptz(iso: string | null | undefined): this {
    if (iso == null) return this.null()
    this.#room(12)
    this.#at = this.#buf.writeInt32BE(8, this.#at)
    this.#at = this.#buf.writeBigInt64BE(isoToPgMicros(iso), this.#at)
    return this
  }

  /** Ends the data (the trailer) and hands over the chunks. */
  finish(): Buffer[] {
    this.#room(2)
    this.#at = this.#buf.writeInt16BE(-1, this.#at)
    this.#chunks.push(this.#buf.subarray(0, this.#at))
    return this.#chunks
  }

  #string(value: string, version: 0 | 1): this {
    const prefix = 4 + version
    // UTF-8 takes at most 3 bytes per UTF-16 code unit: reserve that, write once.
    this.#room(prefix + value.length * 3)
    const start = this.#at
    const written = this.#buf.write(value, start + prefix, 'utf8')
    this.#buf.writeInt32BE(written + version, start)
    if (version) this.#buf.writeUInt8(version, start + 4)
    this.#at = start + prefix + written
    return this
  }

  #room(bytes: number): void {
    if (this.#at + bytes <= this.#buf.length) return
    this.#chunks.push(this.#buf.subarray(0, this.#at))
    this.#buf = Buffer.allocUnsafe(Math.max(CHUNK, bytes))
    this.#at = 0
  }
}

/**
 * Microseconds since 2000-01-01 UTC. `Date.parse` keeps milliseconds only, so the
 * fraction's further digits are added here (rounded half up at the microsecond, where
 * PostgreSQL's text input would round half to even: they differ only on a nanosecond
 * timestamp ending in exactly 500 ns).
 */
export function isoToPgMicros(iso: string): bigint {
  const ms = Date.parse(iso)
  if (Number.isNaN(ms)) throw new CopyValueError(`not an ISO 8601 timestamp: ${iso.slice(0, 40)}`)
  const digits = FRACTION.exec(iso)?.[1] ?? ''
  let sub = digits.length > 3 ? Number(digits.slice(3, 6).padEnd(3, '0')) : 0
  if (digits.length > 6 && digits.charCodeAt(6) >= 53 /* '5' */) sub += 1
  return BigInt(ms) * 1000n + BigInt(sub) - PG_EPOCH_US
}
