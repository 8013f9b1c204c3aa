// What agents write is not always storable as PostgreSQL text or jsonb: tool output can
// hold NUL, and text cut in the middle of an emoji leaves a lone UTF-16 surrogate, which
// has no UTF-8 form. Both would fail a whole batch's transaction, so they are replaced
// (by U+FFFD, as a UTF-8 decoder does) before anything reaches the database.

/** Deepest JSON nesting an event may carry; deeper values are rejected, not stored. */
export const MAX_JSON_DEPTH = 512

// In JSON text: a NUL, or a surrogate that JSON.stringify escaped because it is unpaired
// (paired ones are written as the characters themselves).
const UNSTORABLE_ESCAPE = /\\u(?:0000|d[89a-f][0-9a-f]{2})/i

/** `s` with NUL and lone surrogates replaced by U+FFFD. */
export function storableText(s: string): string
export function storableText(s: string | null | undefined): string | null
export function storableText(s: string | null | undefined): string | null {
  if (s == null) return null
  const wellFormed = s.isWellFormed() ? s : s.toWellFormed()
  return wellFormed.includes('\0') ? wellFormed.replaceAll('\0', '\uFFFD') : wellFormed
}

/** JSON text of `v` for a jsonb column, with every string and key made storable. */
export function storableJson(v: unknown): string | undefined {
  if (v === undefined) return undefined
  const text = JSON.stringify(v)
  // The common case costs one scan of the text; only a hit pays for a rebuilt copy.
  return UNSTORABLE_ESCAPE.test(text) ? JSON.stringify(storableValue(v)) : text
}

function storableValue(v: unknown): unknown {
  if (typeof v === 'string') return storableText(v)
  if (Array.isArray(v)) return v.map(storableValue)
  if (v != null && typeof v === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(v)) out[storableText(k)] = storableValue(x)
    return out
  }
  return v
}

/**
 * Whether `v` nests arrays and objects deeper than `max`, checked without recursion (a
 * value from a hostile client may be nested deep enough to overflow the stack).
 */
export function nestedDeeperThan(v: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[v, 0]]
  while (stack.length > 0) {
    const [x, depth] = stack.pop()!
    if (x == null || typeof x !== 'object') continue
    if (depth >= max) return true
    for (const child of Array.isArray(x) ? x : Object.values(x)) stack.push([child, depth + 1])
  }
  return false
}
