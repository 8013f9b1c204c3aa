/**
 * Selectors bind an ID token to a service account: an exact value or a glob in
 * which `*` matches any run of characters (including none). When several match,
 * the most specific wins: exact beats glob, then the longer literal prefix (the
 * text before the first `*`), then more literal characters overall. Two equally
 * specific matches are ambiguous and match nothing, so a tie never picks an
 * account arbitrarily.
 */

/** Whether `selector` matches `subject`. Linear-time, no RegExp built from input. */
export function selectorMatches(selector: string, subject: string): boolean {
  if (!selector.includes('*')) return selector === subject
  const parts = selector.split('*')
  const first = parts[0]
  const last = parts[parts.length - 1]
  if (subject.length < first.length + last.length) return false
  if (!subject.startsWith(first) || !subject.endsWith(last)) return false
  // Greedy left-to-right placement of the middle literals is optimal for `*` globs.
  let pos = first.length
  const end = subject.length - last.length
  for (let i = 1; i < parts.length - 1; i++) {
    const part = parts[i]
    if (part === '') continue
    const at = subject.indexOf(part, pos)
    if (at < 0 || at + part.length > end) return false
    pos = at + part.length
  }
  return true
}

/** Sort key: larger is more specific. */
export function selectorSpecificity(selector: string): [number, number, number] {
  const star = selector.indexOf('*')
  if (star < 0) return [1, selector.length, selector.length]
  return [0, star, selector.replaceAll('*', '').length]
}

function compare(a: [number, number, number], b: [number, number, number]): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2]
}

/** Result of {@link pickMostSpecific}. */
export type SelectorPick<T> =
  { kind: 'match'; item: T } | { kind: 'none' } | { kind: 'ambiguous'; items: T[] }

/** Among items whose selector matched, picks the single most specific one. */
export function pickMostSpecific<T extends { selector: string }>(
  matched: readonly T[],
): SelectorPick<T> {
  if (matched.length === 0) return { kind: 'none' }
  const ranked = [...matched].sort((a, b) =>
    compare(selectorSpecificity(b.selector), selectorSpecificity(a.selector)),
  )
  const best = ranked[0]
  const ties = ranked.filter(
    (r) => compare(selectorSpecificity(r.selector), selectorSpecificity(best.selector)) === 0,
  )
  return ties.length === 1 ? { kind: 'match', item: best } : { kind: 'ambiguous', items: ties }
}
