import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { githubClaims, startOidcIssuer, type LocalOidcIssuer } from '@hivemind/test-utils'
import { startExchangeHarness, type ExchangeHarness } from '../../test/exchange-harness.js'

let h: ExchangeHarness
let gh: LocalOidcIssuer

beforeAll(async () => {
  gh = await startOidcIssuer()
  h = await startExchangeHarness({
    env: {
      HIVEMIND_RATE_LIMIT_EXCHANGE_PER_MIN: '5',
      HIVEMIND_RATE_LIMIT_EXCHANGE_PER_SUBJECT_PER_MIN: '2',
    },
  })
  const sa = await h.serviceAccount('limited')
  await h.provider(sa, { preset: 'github', issuer: gh.issuer, selector: 'repo:octo-org/*' })
})
afterAll(async () => {
  await h?.close()
  await gh?.close()
})

describe('exchange failure rate limits', () => {
  it('per verified (issuer, sub): 429 with Retry-After, other subjects unaffected', async () => {
    const expired = () =>
      gh.mint(githubClaims('octo-org/a'), {
        now: h.clock.now(),
        iat: Math.floor(h.clock.now() / 1000) - 1000,
      })
    expect((await h.exchange(await expired())).status).toBe(400)
    expect((await h.exchange(await expired())).status).toBe(400)
    const limited = await h.exchange(
      await gh.mint(githubClaims('octo-org/a'), { now: h.clock.now() }),
    )
    expect(limited.status).toBe(429)
    expect(limited.body).toMatchObject({ hivemind_error: 'rate_limited' })
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0)
    const otherSub = await h.exchange(
      await gh.mint(githubClaims('octo-org/b'), { now: h.clock.now() }),
    )
    expect(otherSub.status).toBe(200)
  })

  it('per client address: 429 after the limit, again allowed after the window', async () => {
    for (let i = 0; i < 3; i++) expect((await h.exchange('garbage')).status).toBe(400)
    const r = await h.exchange('garbage')
    expect(r.status).toBe(429)
    expect(r.headers.get('retry-after')).toMatch(/^\d+$/)
    h.clock.advance(61)
    expect((await h.exchange('garbage')).status).toBe(400)
  })
})
