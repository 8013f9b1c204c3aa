import { describe, expect, it } from 'vitest'
import { hashPassword, verifyPassword } from './password.js'

describe(verifyPassword.name, () => {
  it('stores Argon2id with OWASP parameters', async () => {
    expect(await hashPassword('correct horse battery')).toMatch(
      /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/,
    )
  })

  it('does the same Argon2 work for an unknown user as for a wrong password', async () => {
    const stored = await hashPassword('correct horse battery')
    await verifyPassword(null, 'warm-up the dummy hash')
    const time = async (fn: () => Promise<boolean>) => {
      const t0 = performance.now()
      expect(await fn()).toBe(false)
      return performance.now() - t0
    }
    const wrong: number[] = []
    const unknown: number[] = []
    for (let i = 0; i < 5; i++) {
      wrong.push(await time(() => verifyPassword(stored, 'wrong password!!')))
      unknown.push(await time(() => verifyPassword(null, 'wrong password!!')))
    }
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[2]
    // An unknown user must not be answered without hashing (that would be ~0 ms).
    expect(median(unknown)).toBeGreaterThan(median(wrong) * 0.5)
    expect(await verifyPassword(stored, 'correct horse battery')).toBe(true)
    expect(await verifyPassword('not a phc string', 'x')).toBe(false)
  })
})
