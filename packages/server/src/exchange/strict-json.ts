/**
 * JSON.parse keeps the last of duplicate keys, so `{"sub":"a","sub":"b"}` reads
 * differently in different parsers (RFC 7515 §5.2 says reject). This parses a JSON
 * object and throws on a duplicate key at any depth, comparing keys after
 * unescaping (`"a"` and `"\u0061"` are the same key).
 */
export function parseJsonObjectStrict(text: string): Record<string, unknown> {
  const value: unknown = JSON.parse(text)
  if (value == null || typeof value !== 'object' || Array.isArray(value)) {
    throw new SyntaxError('not a JSON object')
  }
  const dup = findDuplicateKey(text)
  if (dup !== undefined) throw new SyntaxError(`duplicate key ${JSON.stringify(dup)}`)
  return value as Record<string, unknown>
}

const MAX_DEPTH = 64

const QUOTE = 0x22
const BACKSLASH = 0x5c

const isSpace = (c: number) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d

/**
 * First duplicate key in already-valid JSON `text`, or undefined. It runs on every
 * token exchange (header and payload), so it scans by char code and unescapes only
 * keys that contain a backslash; string values are skipped, never decoded.
 */
export function findDuplicateKey(text: string): string | undefined {
  let i = 0
  const ws = () => {
    while (i < text.length && isSpace(text.charCodeAt(i))) i++
  }
  /** Skips the string starting at `i`; returns whether it contains an escape. */
  const skipString = (): boolean => {
    let escaped = false
    i++ // opening quote
    for (;;) {
      const c = text.charCodeAt(i)
      if (c === QUOTE) break
      if (c === BACKSLASH) {
        escaped = true
        i += 2
      } else i++
    }
    i++ // closing quote
    return escaped
  }
  const key = (): string => {
    const start = i
    // `"a"` and `"\u0061"` are the same key: unescape through JSON.parse when needed.
    return skipString()
      ? (JSON.parse(text.slice(start, i)) as string)
      : text.slice(start + 1, i - 1)
  }
  const value = (depth: number): string | undefined => {
    if (depth > MAX_DEPTH) throw new SyntaxError('JSON nested too deeply')
    ws()
    const c = text.charCodeAt(i)
    if (c === 0x7b /* { */) {
      i++
      const keys = new Set<string>()
      ws()
      if (text.charCodeAt(i) === 0x7d /* } */) {
        i++
        return undefined
      }
      for (;;) {
        ws()
        const k = key()
        if (keys.has(k)) return k
        keys.add(k)
        ws()
        i++ // colon
        const d = value(depth + 1)
        if (d !== undefined) return d
        ws()
        if (text.charCodeAt(i++) === 0x7d /* } */) return undefined
      }
    }
    if (c === 0x5b /* [ */) {
      i++
      ws()
      if (text.charCodeAt(i) === 0x5d /* ] */) {
        i++
        return undefined
      }
      for (;;) {
        const d = value(depth + 1)
        if (d !== undefined) return d
        ws()
        if (text.charCodeAt(i++) === 0x5d /* ] */) return undefined
      }
    }
    if (c === QUOTE) {
      skipString()
      return undefined
    }
    // A number, true, false or null: up to the next delimiter.
    for (; i < text.length; i++) {
      const d = text.charCodeAt(i)
      if (d === 0x2c || d === 0x5d || d === 0x7d || isSpace(d)) break
    }
    return undefined
  }
  return value(0)
}
