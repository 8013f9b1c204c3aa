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

/** First duplicate key in already-valid JSON `text`, or undefined. */
export function findDuplicateKey(text: string): string | undefined {
  let i = 0
  const ws = () => {
    while (i < text.length && ' \t\r\n'.includes(text[i])) i++
  }
  const str = (): string => {
    const start = i
    i++ // opening quote
    while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1
    i++
    return JSON.parse(text.slice(start, i)) as string
  }
  const value = (depth: number): string | undefined => {
    if (depth > MAX_DEPTH) throw new SyntaxError('JSON nested too deeply')
    ws()
    const c = text[i]
    if (c === '{') {
      i++
      const keys = new Set<string>()
      ws()
      if (text[i] === '}') {
        i++
        return undefined
      }
      for (;;) {
        ws()
        const key = str()
        if (keys.has(key)) return key
        keys.add(key)
        ws()
        i++ // colon
        const d = value(depth + 1)
        if (d !== undefined) return d
        ws()
        if (text[i++] === '}') return undefined
      }
    }
    if (c === '[') {
      i++
      ws()
      if (text[i] === ']') {
        i++
        return undefined
      }
      for (;;) {
        const d = value(depth + 1)
        if (d !== undefined) return d
        ws()
        if (text[i++] === ']') return undefined
      }
    }
    if (c === '"') {
      str()
      return undefined
    }
    while (i < text.length && !',]} \t\r\n'.includes(text[i])) i++
    return undefined
  }
  return value(0)
}
