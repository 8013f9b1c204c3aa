import { createHash } from 'node:crypto'
import { open, readFile } from 'node:fs/promises'
import { zstdDecompressSync } from 'node:zlib'

/**
 * Lines longer than this are not materialised: they are streamed through SHA-256 and
 * kept as a head plus an oversize stub. 64 MiB covers base64 images and Codex
 * `compacted` records; beyond that the line is still reported, never dropped.
 */
export const MAX_LINE_BYTES = 64 * 1024 * 1024

/** Bytes of an oversize line kept as its head. */
const OVERSIZE_HEAD_BYTES = 256 * 1024

const CHUNK_BYTES = 1024 * 1024
const NL = 0x0a

export interface Line {
  /** Byte offset of the line's first byte. */
  offset: number
  /** 0-based line index in the file. */
  index: number
  /** Length in bytes, without the `\n`. */
  bytes: number
  /** The text (CR stripped), or for an oversize line its head. */
  text: string
  /** Set when the line was longer than `maxLineBytes`. */
  oversize?: { bytes: number; sha256: string }
}

export interface ScanOptions {
  fromOffset?: number
  /** Line index at `fromOffset`, when the caller knows it (else counted). */
  fromIndex?: number
  maxLineBytes?: number
}

export interface ScanResult {
  /** Offset just past the last complete line. */
  nextOffset: number
  /** Index the next line will have. */
  nextIndex: number
}

const decoder = new TextDecoder('utf-8', { fatal: false })

function toText(buf: Buffer): string {
  let s = decoder.decode(buf)
  if (s.endsWith('\r')) s = s.slice(0, -1)
  return s
}

/** True for `.jsonl.zst` (and any `.zst`): Codex compresses finished rollouts. */
export function isZstd(path: string): boolean {
  return path.endsWith('.zst')
}

/**
 * Calls `onLine` for every complete (`\n`-terminated) line from `fromOffset`. A partial
 * last line is left for a later call: `nextOffset` points at its first byte. `.zst` files
 * are decompressed whole (they are written by tmp + rename, so they are complete).
 */
export async function scanLines(
  path: string,
  options: ScanOptions,
  onLine: (line: Line) => void,
): Promise<ScanResult> {
  const from = options.fromOffset ?? 0
  const max = options.maxLineBytes ?? MAX_LINE_BYTES
  if (isZstd(path)) {
    const buf = zstdDecompressSync(await readFile(path))
    return scanBuffer(buf, from, options.fromIndex ?? countLinesInBuffer(buf, from), max, onLine)
  }
  const index = options.fromIndex ?? (from > 0 ? await countLines(path, from) : 0)
  const fh = await open(path, 'r')
  try {
    return await scanHandle(fh, from, index, max, onLine)
  } finally {
    await fh.close()
  }
}

async function scanHandle(
  fh: Awaited<ReturnType<typeof open>>,
  from: number,
  startIndex: number,
  max: number,
  onLine: (line: Line) => void,
): Promise<ScanResult> {
  let pos = from // file position of the next read
  let lineStart = from
  let index = startIndex
  let parts: Buffer[] = []
  let partBytes = 0
  let hash: ReturnType<typeof createHash> | null = null
  const chunk = Buffer.allocUnsafe(CHUNK_BYTES)
  for (;;) {
    const { bytesRead } = await fh.read(chunk, 0, CHUNK_BYTES, pos)
    if (bytesRead === 0) break
    const data = chunk.subarray(0, bytesRead)
    let start = 0
    for (;;) {
      const nl = data.indexOf(NL, start)
      const end = nl === -1 ? bytesRead : nl
      const piece = data.subarray(start, end)
      if (hash) {
        hash.update(piece)
      } else if (partBytes + piece.length > max) {
        hash = createHash('sha256')
        for (const p of parts) hash.update(p)
        hash.update(piece)
        parts = [Buffer.concat([...parts, piece]).subarray(0, OVERSIZE_HEAD_BYTES)]
      } else {
        parts.push(Buffer.from(piece))
      }
      partBytes += piece.length
      if (nl === -1) break
      const bytes = partBytes
      if (hash) {
        onLine({
          offset: lineStart,
          index,
          bytes,
          text: toText(Buffer.concat(parts)),
          oversize: { bytes, sha256: hash.digest('hex') },
        })
      } else {
        onLine({ offset: lineStart, index, bytes, text: toText(Buffer.concat(parts, bytes)) })
      }
      index++
      lineStart += bytes + 1
      parts = []
      partBytes = 0
      hash = null
      start = nl + 1
    }
    pos += bytesRead
  }
  return { nextOffset: lineStart, nextIndex: index }
}

function scanBuffer(
  buf: Buffer,
  from: number,
  startIndex: number,
  max: number,
  onLine: (line: Line) => void,
): ScanResult {
  let start = from
  let index = startIndex
  for (;;) {
    const nl = buf.indexOf(NL, start)
    if (nl === -1) break
    const piece = buf.subarray(start, nl)
    if (piece.length > max) {
      onLine({
        offset: start,
        index,
        bytes: piece.length,
        text: toText(piece.subarray(0, OVERSIZE_HEAD_BYTES)),
        oversize: { bytes: piece.length, sha256: sha256Hex(piece) },
      })
    } else {
      onLine({ offset: start, index, bytes: piece.length, text: toText(piece) })
    }
    index++
    start = nl + 1
  }
  return { nextOffset: start, nextIndex: index }
}

function countLinesInBuffer(buf: Buffer, upTo: number): number {
  let n = 0
  let i = buf.indexOf(NL)
  while (i !== -1 && i < upTo) {
    n++
    i = buf.indexOf(NL, i + 1)
  }
  return n
}

/** Number of `\n` before `upTo`: the index of the line that starts there. */
export async function countLines(path: string, upTo: number): Promise<number> {
  const fh = await open(path, 'r')
  try {
    const chunk = Buffer.allocUnsafe(CHUNK_BYTES)
    let pos = 0
    let n = 0
    while (pos < upTo) {
      const { bytesRead } = await fh.read(chunk, 0, Math.min(CHUNK_BYTES, upTo - pos), pos)
      if (bytesRead === 0) break
      let i = chunk.indexOf(NL, 0)
      while (i !== -1 && i < bytesRead) {
        n++
        i = chunk.indexOf(NL, i + 1)
      }
      pos += bytesRead
    }
    return n
  } finally {
    await fh.close()
  }
}

/**
 * `file_fp` of SESSION-FORMATS.md §B: SHA-256 of the first complete line (of the
 * decompressed content for `.zst`), so a moved, archived or compressed file keeps its
 * identity. `null` while the first line is still incomplete: don't register the file yet.
 */
export async function fileFingerprint(path: string): Promise<string | null> {
  if (isZstd(path)) {
    const buf = zstdDecompressSync(await readFile(path))
    const nl = buf.indexOf(NL)
    return nl === -1 ? null : sha256Hex(buf.subarray(0, nl))
  }
  const fh = await open(path, 'r')
  try {
    const hash = createHash('sha256')
    const chunk = Buffer.allocUnsafe(64 * 1024)
    let pos = 0
    for (;;) {
      const { bytesRead } = await fh.read(chunk, 0, chunk.length, pos)
      if (bytesRead === 0) return null
      const nl = chunk.subarray(0, bytesRead).indexOf(NL)
      if (nl !== -1) {
        hash.update(chunk.subarray(0, nl))
        return hash.digest('hex')
      }
      hash.update(chunk.subarray(0, bytesRead))
      pos += bytesRead
    }
  } finally {
    await fh.close()
  }
}

export interface JsonLine extends Line {
  /** The parsed record; `undefined` when the line is malformed, oversize or blank. */
  value?: unknown
  /** Why `value` is missing: the kind of parse error and its position, or the line's size. */
  problem?: string
}

/** {@link scanLines} plus `JSON.parse`; blank lines are skipped. */
export async function scanJsonl(
  path: string,
  options: ScanOptions,
  onLine: (line: JsonLine) => void,
): Promise<ScanResult> {
  return scanLines(path, options, (line) => {
    if (line.oversize) {
      onLine({ ...line, problem: `line of ${line.oversize.bytes} bytes exceeds the line limit` })
      return
    }
    if (line.text.trim() === '') return
    try {
      onLine({ ...line, value: JSON.parse(line.text) as unknown })
    } catch (err) {
      onLine({ ...line, problem: parseProblem(err) })
    }
  })
}

/**
 * What is wrong with a line, by kind and position only: `JSON.parse` quotes a stretch of
 * the line in its messages, which could be part of a secret, and these messages end up in
 * logs and event texts. The line itself is still kept, capped, in the event's `raw`.
 */
function parseProblem(err: unknown): string {
  const message = err instanceof Error ? err.message : ''
  const kind = /end of (JSON )?input|Unterminated/i.test(message)
    ? 'unexpected end of input'
    : /after JSON/i.test(message)
      ? 'data after the JSON value'
      : /control character/i.test(message)
        ? 'control character in a string'
        : /escape/i.test(message)
          ? 'bad escape in a string'
          : 'invalid JSON'
  const at = /at position (\d+)/.exec(message)?.[1]
  return at === undefined ? kind : `${kind} at character ${at}`
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex')
}

/** Reads `"type":"…"` from the head of a record that could not be parsed. */
export function sniffType(text: string): string | undefined {
  return /"type"\s*:\s*"([^"]{1,64})"/.exec(text.slice(0, 4096))?.[1]
}
