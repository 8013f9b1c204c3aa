import { describe, expect, it } from 'vitest'
import { githubClaims, modalClaims } from '@hivemind/test-utils'
import { compilePolicy, evaluatePolicy } from './policy.js'
import { pickMostSpecific, selectorMatches } from './selector.js'

const DOC_GITHUB =
  'claims.repository == "octo-org/octo-repo" && claims.ref == "refs/heads/main" && claims.workflow_ref.startsWith("octo-org/octo-repo/.github/workflows/release.yml")'
const DOC_MODAL = 'claims.environment_name == "main" && claims.app_name == "agent-runner"'

describe(compilePolicy.name, () => {
  it.each([
    ['syntax error', '1 +', /Unexpected token/],
    ['string result', '"yes"', /must return a bool/],
    ['backreference (not RE2)', 'claims.sub.matches("(a)\\\\1")', /not valid RE2/],
    ['lookahead (not RE2)', 'claims.sub.matches("(?=a)")', /not valid RE2/],
    [
      'deeply nested comprehensions',
      'claims.l.all(a, claims.l.all(b, claims.l.all(c, true)))',
      /nest at most/,
    ],
    ['unknown variable', 'token.sub == "x"', /token/],
  ])('rejects %s at save', (_name, source, message) => {
    expect(() => compilePolicy(source)).toThrow(message)
  })

  it('records the claims a policy reads', () => {
    expect(compilePolicy(DOC_GITHUB).claimNames).toEqual(['repository', 'ref', 'workflow_ref'])
  })
})

describe(evaluatePolicy.name, () => {
  it.each([
    ['doc GitHub example allows', DOC_GITHUB, githubClaims(), true],
    [
      'doc GitHub example denies another ref',
      DOC_GITHUB,
      githubClaims('octo-org/octo-repo', { ref: 'refs/heads/dev' }),
      false,
    ],
    ['doc Modal example allows', DOC_MODAL, modalClaims(), true],
    [
      'doc Modal example denies another app',
      DOC_MODAL,
      modalClaims('ac-1', { app_name: 'x' }),
      false,
    ],
    ['non-boolean result denies', 'claims.sub', { sub: 'x' }, false],
    ['a throw (missing claim) denies', 'claims.nope == "x"', { sub: 'x' }, false],
    ['__proto__ yields nothing', 'claims.__proto__ != null', { sub: 'x' }, false],
    ['constructor yields nothing', 'has(claims.constructor)', { sub: 'x' }, false],
    [
      '__proto__ in the claims is dropped',
      'claims.admin == true',
      JSON.parse('{"__proto__":{"admin":true}}'),
      false,
    ],
    [
      'matches uses RE2 (linear) and still works',
      'claims.sub.matches("^repo:octo-org/.*$")',
      { sub: 'repo:octo-org/x' },
      true,
    ],
    [
      'ReDoS-shaped pattern finishes and denies',
      'claims.sub.matches("^(a+)+$")',
      { sub: `${'a'.repeat(10_000)}b` },
      false,
    ],
    ['numbers compare', 'claims.exp > 1000', { exp: 5000 }, true],
  ])('%s', (_name, source, claims, allow) => {
    const started = performance.now()
    expect(evaluatePolicy(compilePolicy(source), claims as Record<string, unknown>).allow).toBe(
      allow,
    )
    expect(performance.now() - started).toBeLessThan(500)
  })

  it('caps the claim input size', () => {
    const r = evaluatePolicy(compilePolicy('true'), { big: 'x'.repeat(70_000) })
    expect(r).toMatchObject({ allow: false, error: expect.stringContaining('larger') })
  })
})

describe(selectorMatches.name, () => {
  it.each([
    ['repo:o/r', 'repo:o/r', true],
    ['repo:o/r', 'repo:o/rr', false],
    ['repo:o/*', 'repo:o/r', true],
    ['repo:o/*', 'repo:x/r', false],
    ['*:prod', 'env:prod', true],
    ['a*b*c', 'aXbYc', true],
    ['a*b*c', 'aXcYb', false],
    ['system:serviceaccount:team-*:*', 'system:serviceaccount:team-a:bot', true],
  ])('%s vs %s → %s', (selector, subject, expected) => {
    expect(selectorMatches(selector, subject)).toBe(expected)
  })

  it('most specific wins: exact, then longer literal prefix; ties are ambiguous', () => {
    const pick = (...selectors: string[]) =>
      pickMostSpecific(selectors.map((selector) => ({ selector })))
    expect(pick('repo:o/*', 'repo:o/r')).toMatchObject({
      kind: 'match',
      item: { selector: 'repo:o/r' },
    })
    expect(pick('repo:*', 'repo:o/*')).toMatchObject({
      kind: 'match',
      item: { selector: 'repo:o/*' },
    })
    expect(pick('a*x', 'a*y')).toMatchObject({ kind: 'ambiguous' })
    expect(pick()).toMatchObject({ kind: 'none' })
  })
})
