import { describe, expect, it } from 'vitest'
import { newId, newStaticToken } from './store.js'

describe(newId, () => {
  it.each(['sa', 'sat'] as const)('always yields %s_ + 20 lower-case base32 chars', (prefix) => {
    // A regression guard: ids once came out short when random bytes held '-' or '_'.
    const ids = Array.from({ length: 2000 }, () => newId(prefix))
    for (const id of ids) expect(id).toMatch(new RegExp(`^${prefix}_[a-z2-7]{20}$`))
    expect(new Set(ids).size).toBe(ids.length)
  })
})

describe(newStaticToken, () => {
  it('yields hmsa_ + 43 base64url chars', () => {
    expect(newStaticToken()).toMatch(/^hmsa_[A-Za-z0-9_-]{43}$/)
  })
})
