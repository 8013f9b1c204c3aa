import { createPublicKey, randomUUID } from 'node:crypto'
import { generateKeyPair, exportJWK, SignJWT, decodeJwt } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  githubClaims,
  kubernetesClaims,
  modalClaims,
  MODAL_TOKEN_TTL_SECONDS,
  startOidcIssuer,
  type LocalOidcIssuer,
} from '@hivemind/test-utils'
import { GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_ID_TOKEN } from '@hivemind/sdk/schemas'
import {
  PUBLIC_URL,
  startExchangeHarness,
  type ExchangeHarness,
} from '../../test/exchange-harness.js'

const b64 = (v: unknown) =>
  Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url')

const DOC_POLICY_GITHUB =
  'claims.repository == "octo-org/octo-repo" && claims.ref == "refs/heads/main" && claims.workflow_ref.startsWith("octo-org/octo-repo/.github/workflows/release.yml")'
const DOC_POLICY_MODAL = 'claims.environment_name == "main" && claims.app_name == "agent-runner"'

let h: ExchangeHarness
let gh: LocalOidcIssuer
let k8s: LocalOidcIssuer
let modal: LocalOidcIssuer
let other: LocalOidcIssuer
let pol: LocalOidcIssuer
const ids: Record<string, string> = {}
/** Every real token sent, to prove none of them reaches logs or the audit log. */
const sent: string[] = []

const now = () => h.clock.now()
const nowS = () => Math.floor(now() / 1000)

async function mint(
  issuer: LocalOidcIssuer,
  claims: Record<string, unknown>,
  options: Parameters<LocalOidcIssuer['mint']>[1] = {},
): Promise<string> {
  const t = await issuer.mint(claims, { now: now(), ...options })
  sent.push(t)
  return t
}

beforeAll(async () => {
  ;[gh, k8s, modal, other, pol] = await Promise.all([
    startOidcIssuer(),
    startOidcIssuer({ alg: 'RS256' }),
    startOidcIssuer(),
    startOidcIssuer(),
    startOidcIssuer({ alg: 'EdDSA' }),
  ])
  h = await startExchangeHarness({
    env: {
      HIVEMIND_RATE_LIMIT_EXCHANGE_PER_MIN: '0',
      HIVEMIND_RATE_LIMIT_EXCHANGE_PER_SUBJECT_PER_MIN: '0',
    },
  })
  ids.gh = await h.serviceAccount('gh-release')
  await h.provider(ids.gh, {
    preset: 'github',
    issuer: gh.issuer,
    selector: 'repo:octo-org/octo-repo',
    policy: DOC_POLICY_GITHUB,
  })
  ids.ghOrg = await h.serviceAccount('gh-org', { scopes: ['write'] })
  await h.provider(ids.ghOrg, { preset: 'github', issuer: gh.issuer, selector: 'repo:octo-org/*' })
  ids.ghShort = await h.serviceAccount('gh-short', { max_ttl_seconds: 1800 })
  await h.provider(ids.ghShort, {
    preset: 'github',
    issuer: gh.issuer,
    selector: 'repo:short/lived',
  })
  ids.ghOff = await h.serviceAccount('gh-off', { disabled: true })
  await h.provider(ids.ghOff, { preset: 'github', issuer: gh.issuer, selector: 'repo:off/repo' })
  ids.k8s = await h.serviceAccount('k8s-runner')
  await h.provider(ids.k8s, {
    preset: 'kubernetes',
    issuer: k8s.issuer,
    selector: 'system:serviceaccount:agents:runner',
  })
  ids.teamAny = await h.serviceAccount('team-any')
  await h.provider(ids.teamAny, {
    preset: 'kubernetes',
    issuer: k8s.issuer,
    selector: 'system:serviceaccount:team-*:*',
  })
  ids.teamA = await h.serviceAccount('team-a')
  await h.provider(ids.teamA, {
    preset: 'kubernetes',
    issuer: k8s.issuer,
    selector: 'system:serviceaccount:team-a:*',
  })
  ids.modal = await h.serviceAccount('modal-agents')
  await h.provider(ids.modal, {
    preset: 'modal',
    issuer: modal.issuer,
    selector: 'modal:workspace_id:ac-12345abcd',
    policy: DOC_POLICY_MODAL,
  })
  ids.pol = await h.serviceAccount('policies')
  const policies: Record<string, string> = {
    nonbool: 'claims.sub',
    throws: 'claims.no_such_claim == "x"',
    proto: 'claims.__proto__ != null',
    ctor: 'has(claims.constructor) || claims.constructor != null',
    redos: 'claims.probe.matches("^(a+)+$")',
    hidden: 'claims.admin == true',
  }
  for (const [name, policy] of Object.entries(policies)) {
    await h.provider(ids.pol, { issuer: pol.issuer, selector: `policy-${name}`, policy })
  }
}, 60_000)

afterAll(async () => {
  await h?.close()
  await Promise.all([gh, k8s, modal, other, pol].map((i) => i?.close()))
})

describe('POST /oauth/token: success and request shape', () => {
  it('exchanges a GitHub token (form body) and answers RFC 8693 with no-store', async () => {
    const r = await h.exchange(await mint(gh, githubClaims()))
    expect(r.status).toBe(200)
    expect(r.headers.get('cache-control')).toBe('no-store')
    expect(r.body).toMatchObject({
      issued_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      token_type: 'Bearer',
      expires_in: 3600,
      scope: 'read write',
    })
    const jwt = decodeJwt(r.body.access_token)
    expect(jwt).toMatchObject({
      sub: ids.gh,
      scope: 'read write',
      src_iss: gh.issuer,
      aud: PUBLIC_URL,
    })
    expect(jwt.src_sub).toBe('repo:octo-org/octo-repo:ref:refs/heads/main')
  })

  it('accepts a JSON body and a narrowing scope', async () => {
    const token = await mint(gh, githubClaims())
    const res = await fetch(`${h.url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        grant_type: GRANT_TYPE_TOKEN_EXCHANGE,
        subject_token: token,
        subject_token_type: TOKEN_TYPE_ID_TOKEN,
        scope: 'read',
      }),
    })
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ scope: 'read' })
  })

  it.each([
    [
      'unsupported grant_type',
      { grant_type: 'authorization_code' },
      'unsupported_grant_type',
      'unsupported_grant_type',
    ],
    [
      'unknown subject_token_type',
      { subject_token_type: 'urn:x' },
      'invalid_request',
      'unsupported_token_type',
    ],
    ['widening scope', { scope: 'read admin' }, 'invalid_scope', 'invalid_scope'],
    [
      'foreign audience parameter',
      { audience: 'https://elsewhere.example.com' },
      'invalid_target',
      'invalid_target',
    ],
  ])('%s → 400 %s', async (_name, params, error, hivemindError) => {
    const r = await h.exchange(await mint(gh, githubClaims()), params)
    expect(r.status).toBe(400)
    expect(r.body).toMatchObject({ error, hivemind_error: hivemindError })
  })

  it('missing subject_token → invalid_request', async () => {
    const r = await h.exchange('', {})
    expect(r.status).toBe(400)
    expect(r.body.error).toBe('invalid_request')
  })

  it('a disabled service account is refused', async () => {
    const r = await h.exchange(await mint(gh, githubClaims('off/repo')))
    expect(r.body).toMatchObject({
      error: 'invalid_grant',
      hivemind_error: 'service_account_disabled',
    })
  })
})

describe('token shape', () => {
  const header = { alg: 'ES256', typ: 'JWT', kid: 'k' }
  const payload = { iss: 'x', sub: 's' }
  it.each([
    ['garbage', () => 'not a jwt at all'],
    ['two parts', () => `${b64(header)}.${b64(payload)}`],
    ['four parts', () => `${b64(header)}.${b64(payload)}.c2ln.c2ln`],
    ['five parts (JWE)', () => 'a.b.c.d.e'],
    [
      'JSON serialisation',
      () => JSON.stringify({ payload: b64(payload), protected: b64(header), signature: 'c2ln' }),
    ],
    ['header not JSON', () => `${b64('hello')}.${b64(payload)}.c2ln`],
    ['payload an array', () => `${b64(header)}.${b64([1])}.c2ln`],
    [
      'duplicate key in header',
      () => `${b64('{"alg":"ES256","alg":"none"}')}.${b64(payload)}.c2ln`,
    ],
    [
      'duplicate key in payload',
      () => `${b64(header)}.${b64('{"sub":"a","iss":"x","sub":"b"}')}.c2ln`,
    ],
    ['escaped duplicate key', () => `${b64(header)}.${b64('{"sub":"a","\\u0073ub":"b"}')}.c2ln`],
    ['nested duplicate key', () => `${b64(header)}.${b64('{"x":{"a":1,"a":2}}')}.c2ln`],
  ])('%s → malformed_token', async (_name, token) => {
    const r = await h.exchange(token())
    expect(r.status).toBe(400)
    expect(r.body).toMatchObject({ error: 'invalid_grant', hivemind_error: 'malformed_token' })
  })

  it('oversized token → invalid_request malformed_token', async () => {
    const r = await h.exchange(`${b64(header)}.${b64({ pad: 'x'.repeat(20_000) })}.c2ln`)
    expect(r.status).toBe(400)
    expect(r.body).toMatchObject({ error: 'invalid_request', hivemind_error: 'malformed_token' })
  })

  it('missing kid: every key of the issuer usable with alg is tried (documented)', async () => {
    const r = await h.exchange(await mint(gh, githubClaims(), { omitKid: true }))
    expect(r.status).toBe(200)
  })

  it('never echoes the token in an error', async () => {
    const token = await mint(gh, githubClaims(), { ttlSeconds: -3600 })
    const r = await h.exchange(token)
    expect(r.status).toBe(400)
    expect(JSON.stringify(r.body)).not.toContain(token.split('.')[1])
  })
})

describe('algorithms', () => {
  const attackerKey = async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true })
    return { privateKey, jwk: await exportJWK(publicKey) }
  }

  it.each([
    [
      'alg none',
      () =>
        `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ ...githubClaims(), iss: gh.issuer, iat: nowS(), exp: nowS() + 300 })}.`,
      'disallowed_algorithm',
    ],
    [
      'HS256 signed with the issuer public key bytes',
      async () => {
        const secret = new TextEncoder().encode(JSON.stringify(gh.jwks().keys[0]))
        return new SignJWT({ ...githubClaims(), iss: gh.issuer })
          .setProtectedHeader({ alg: 'HS256', kid: gh.currentKid })
          .setIssuedAt(nowS())
          .setExpirationTime(nowS() + 300)
          .sign(secret)
      },
      'disallowed_algorithm',
    ],
    [
      'HS256 signed with the RSA issuer public key as PEM (key confusion)',
      async () => {
        const rsa = k8s.jwks().keys[0]
        const pem = createPublicKey({ key: rsa, format: 'jwk' })
          .export({ type: 'spki', format: 'pem' })
          .toString()
        return new SignJWT({
          ...kubernetesClaims('agents', 'runner'),
          aud: PUBLIC_URL,
          iss: k8s.issuer,
        })
          .setProtectedHeader({ alg: 'HS256', kid: k8s.currentKid })
          .setIssuedAt(nowS())
          .setExpirationTime(nowS() + 300)
          .sign(new TextEncoder().encode(pem))
      },
      'disallowed_algorithm',
    ],
    [
      'alg outside the allow-list',
      () => `${b64({ alg: 'ES256K', kid: gh.currentKid })}.${b64({ iss: gh.issuer })}.c2ln`,
      'disallowed_algorithm',
    ],
    [
      'jku header pointing at the attacker',
      async () => {
        const { privateKey } = await attackerKey()
        return new SignJWT({ ...githubClaims(), iss: gh.issuer })
          .setProtectedHeader({ alg: 'ES256', kid: gh.currentKid, jku: 'http://127.0.0.1:1/jwks' })
          .setIssuedAt(nowS())
          .setExpirationTime(nowS() + 300)
          .sign(privateKey)
      },
      'bad_signature',
    ],
    [
      'x5u header pointing at the attacker',
      async () => {
        const { privateKey } = await attackerKey()
        return new SignJWT({ ...githubClaims(), iss: gh.issuer })
          .setProtectedHeader({
            alg: 'ES256',
            kid: gh.currentKid,
            x5u: 'http://127.0.0.1:1/cert.pem',
          })
          .setIssuedAt(nowS())
          .setExpirationTime(nowS() + 300)
          .sign(privateKey)
      },
      'bad_signature',
    ],
    [
      'embedded jwk header with the attacker key',
      async () => {
        const { privateKey, jwk } = await attackerKey()
        return new SignJWT({ ...githubClaims(), iss: gh.issuer })
          .setProtectedHeader({ alg: 'ES256', kid: gh.currentKid, jwk })
          .setIssuedAt(nowS())
          .setExpirationTime(nowS() + 300)
          .sign(privateKey)
      },
      'bad_signature',
    ],
    [
      'embedded jwk with an unknown kid',
      async () => {
        const { privateKey, jwk } = await attackerKey()
        return new SignJWT({ ...githubClaims(), iss: gh.issuer })
          .setProtectedHeader({ alg: 'ES256', kid: 'attacker', jwk })
          .setIssuedAt(nowS())
          .setExpirationTime(nowS() + 300)
          .sign(privateKey)
      },
      'unknown_key',
    ],
  ])('%s → %s', async (_name, token, code) => {
    const r = await h.exchange(await token())
    expect(r.status).toBe(400)
    expect(r.body).toMatchObject({ error: 'invalid_grant', hivemind_error: code })
  })

  it('RS256 (Kubernetes) and EdDSA issuers verify', async () => {
    expect(
      (
        await h.exchange(
          await mint(k8s, { ...kubernetesClaims(), aud: PUBLIC_URL }, { noJti: true }),
        )
      ).status,
    ).toBe(200)
    const r = await h.exchange(await mint(pol, { sub: 'policy-none', aud: PUBLIC_URL }))
    // EdDSA verified; no provider has that selector.
    expect(r.body.hivemind_error).toBe('no_matching_service_account')
  })
})

describe('keys', () => {
  it('bad signature (payload changed after signing) → bad_signature', async () => {
    const [hd, , sig] = (await mint(gh, githubClaims())).split('.')
    const forged = b64({
      ...githubClaims('octo-org/other'),
      iss: gh.issuer,
      iat: nowS(),
      exp: nowS() + 300,
    })
    const r = await h.exchange(`${hd}.${forged}.${sig}`)
    expect(r.body).toMatchObject({ error: 'invalid_grant', hivemind_error: 'bad_signature' })
  })

  it("another issuer's key → unknown_key, and no extra fetch within the cooldown", async () => {
    await h.exchange(await mint(gh, githubClaims()))
    const before = gh.jwksFetches
    const r = await h.exchange(await mint(other, { ...githubClaims(), iss: gh.issuer }))
    expect(r.body).toMatchObject({ error: 'invalid_grant', hivemind_error: 'unknown_key' })
    expect(gh.jwksFetches - before).toBeLessThanOrEqual(1)
  })

  it('key rotation: a new kid triggers one refetch and then verifies', async () => {
    const rot = await startOidcIssuer()
    try {
      const sa = await h.serviceAccount('rotating')
      await h.provider(sa, { issuer: rot.issuer, selector: 'rot' })
      expect((await h.exchange(await mint(rot, { sub: 'rot', aud: PUBLIC_URL }))).status).toBe(200)
      expect(rot.jwksFetches).toBe(1)
      await rot.rotateKey()
      h.clock.advance(31)
      expect((await h.exchange(await mint(rot, { sub: 'rot', aud: PUBLIC_URL }))).status).toBe(200)
      expect(rot.jwksFetches).toBe(2)
      // Rotated again inside the cooldown: no fetch, unknown_key, until the cooldown passes.
      await rot.rotateKey()
      const early = await h.exchange(await mint(rot, { sub: 'rot', aud: PUBLIC_URL }))
      expect(early.body.hivemind_error).toBe('unknown_key')
      expect(rot.jwksFetches).toBe(2)
      h.clock.advance(31)
      expect((await h.exchange(await mint(rot, { sub: 'rot', aud: PUBLIC_URL }))).status).toBe(200)
      expect(rot.jwksFetches).toBe(3)
    } finally {
      await rot.close()
    }
  })

  it('a flood of unknown kids costs the issuer one fetch per cooldown', async () => {
    const flood = await startOidcIssuer()
    try {
      const sa = await h.serviceAccount('flooded')
      await h.provider(sa, { issuer: flood.issuer, selector: 'flood' })
      expect((await h.exchange(await mint(flood, { sub: 'flood', aud: PUBLIC_URL }))).status).toBe(
        200,
      )
      const hidden = await flood.rotateKey()
      flood.unpublish(hidden)
      h.clock.advance(31)
      const tokens = await Promise.all(
        Array.from({ length: 20 }, () => mint(flood, { sub: 'flood', aud: PUBLIC_URL })),
      )
      const burst = await Promise.all(tokens.map((t) => h.exchange(t)))
      expect(burst.every((r) => r.body.hivemind_error === 'unknown_key')).toBe(true)
      expect(flood.jwksFetches).toBe(2)
      const again = await Promise.all(tokens.slice(0, 10).map((t) => h.exchange(t)))
      expect(again.every((r) => r.status === 400)).toBe(true)
      expect(flood.jwksFetches).toBe(2)
    } finally {
      await flood.close()
    }
  })

  it('JWKS endpoint down → the last good keys are used', async () => {
    const flaky = await startOidcIssuer()
    try {
      const sa = await h.serviceAccount('flaky')
      await h.provider(sa, { issuer: flaky.issuer, selector: 'flaky' })
      expect((await h.exchange(await mint(flaky, { sub: 'flaky', aud: PUBLIC_URL }))).status).toBe(
        200,
      )
      flaky.setDown(true)
      h.clock.advance(11 * 60) // past the cache age: a refetch is attempted and fails
      const r = await h.exchange(await mint(flaky, { sub: 'flaky', aud: PUBLIC_URL }))
      expect(r.status).toBe(200)
    } finally {
      await flaky.close()
    }
  })

  it('issuer never reachable → 503 jwks_unavailable', async () => {
    const gone = await startOidcIssuer()
    const sa = await h.serviceAccount('gone')
    await h.provider(sa, { issuer: gone.issuer, selector: 'gone' })
    const token = await mint(gone, { sub: 'gone', aud: PUBLIC_URL })
    gone.setDown(true)
    const r = await h.exchange(token)
    await gone.close()
    expect(r.status).toBe(503)
    expect(r.body).toMatchObject({
      error: 'temporarily_unavailable',
      hivemind_error: 'jwks_unavailable',
    })
  })

  it('inline jwks (private issuer the server cannot reach)', async () => {
    const offline = await startOidcIssuer()
    const sa = await h.serviceAccount('inline-jwks')
    await h.provider(sa, { issuer: offline.issuer, selector: 'offline', jwks: offline.jwks() })
    const token = await mint(offline, { sub: 'offline', aud: PUBLIC_URL })
    offline.setDown(true)
    const r = await h.exchange(token)
    await offline.close()
    expect(r.status).toBe(200)
    expect(offline.jwksFetches).toBe(0)
  })
})

describe('issuer and audience', () => {
  it.each([
    ['wrong issuer', { iss: 'https://evil.example.com' }, 'unknown_issuer'],
    ['trailing-slash variant', { iss: 'TRAILING' }, 'unknown_issuer'],
    ['missing aud', { aud: undefined }, 'audience_mismatch'],
    ['empty aud', { aud: '' }, 'audience_mismatch'],
    ['wrong aud', { aud: 'https://other.example.com' }, 'audience_mismatch'],
    [
      'array aud without ours',
      { aud: ['https://a.example.com', 'https://b.example.com'] },
      'audience_mismatch',
    ],
  ])('%s → %s', async (_name, override, code) => {
    const claims: Record<string, unknown> = { ...githubClaims(), ...override }
    if (claims.iss === 'TRAILING') claims.iss = `${gh.issuer}/`
    const r = await h.exchange(await mint(gh, claims))
    expect(r.status).toBe(400)
    expect(r.body).toMatchObject({
      error: 'invalid_grant',
      hivemind_error: code,
      ...(code === 'audience_mismatch' ? { expected_audience: PUBLIC_URL } : {}),
    })
    // The trailing-slash case says why the near-identical issuer did not match.
    expect(r.body.error_description).toContain(
      _name === 'trailing-slash variant' ? 'must match exactly' : '',
    )
  })

  it.each([
    ['array aud containing ours', ['https://a.example.com', PUBLIC_URL]],
    ['aud with a trailing slash (normalised)', `${PUBLIC_URL}/`],
  ])('%s → 200', async (_name, aud) => {
    expect(
      (await h.exchange(await mint(gh, githubClaims('octo-org/octo-repo', { aud })))).status,
    ).toBe(200)
  })
})

describe('time', () => {
  it.each([
    ['expired', () => ({ options: { iat: nowS() - 1000, ttlSeconds: 300 } }), 'expired'],
    ['future nbf', () => ({ claims: { nbf: nowS() + 600 } }), 'not_yet_valid'],
    ['future iat', () => ({ options: { iat: nowS() + 600 } }), 'not_yet_valid'],
    ['non-numeric exp', () => ({ claims: { exp: String(nowS() + 300) } }), 'invalid_claim'],
    ['missing iat', () => ({ options: { omit: ['iat'] } }), 'missing_claim'],
    ['missing sub', () => ({ options: { omit: ['sub'] } }), 'missing_claim'],
    ['missing exp', () => ({ options: { omit: ['exp'] } }), 'missing_claim'],
  ])('%s → %s', async (_name, make, code) => {
    const { claims = {}, options = {} } = make() as {
      claims?: Record<string, unknown>
      options?: object
    }
    const r = await h.exchange(await mint(gh, githubClaims('octo-org/octo-repo', claims), options))
    expect(r.status).toBe(400)
    expect(r.body).toMatchObject({ error: 'invalid_grant', hivemind_error: code })
  })

  it.each([
    ['expired 30 s ago, inside the 60 s leeway', { iat: () => nowS() - 330, ttl: 300 }],
    ['nbf 30 s ahead, inside the leeway', { iat: () => nowS() + 30, ttl: 300 }],
  ])('%s → 200', async (_name, t) => {
    const r = await h.exchange(await mint(gh, githubClaims(), { iat: t.iat(), ttlSeconds: t.ttl }))
    expect(r.status).toBe(200)
  })
})

describe('selectors and policy', () => {
  it.each([
    ['exact selector beats the org glob', () => githubClaims(), () => ids.gh],
    ['org glob for another repo', () => githubClaims('octo-org/other'), () => ids.ghOrg],
    [
      'longer literal prefix wins (team-a:* over team-*:*)',
      () => kubernetesClaims('team-a', 'bot', { aud: PUBLIC_URL }),
      () => ids.teamA,
    ],
    [
      'shorter glob still matches other teams',
      () => kubernetesClaims('team-b', 'bot', { aud: PUBLIC_URL }),
      () => ids.teamAny,
    ],
  ])('%s', async (_name, claims, sa) => {
    const c = claims()
    const issuer = 'repository' in c ? gh : k8s
    const r = await h.exchange(await mint(issuer, c))
    expect(r.status).toBe(200)
    expect(decodeJwt(r.body.access_token).sub).toBe(sa())
  })

  it('GitHub selectors read the repository claim, not a customised sub', async () => {
    const r = await h.exchange(
      await mint(
        gh,
        githubClaims('octo-org/octo-repo', { sub: 'repo:octo-org/octo-repo:environment:prod' }),
      ),
    )
    expect(decodeJwt(r.body.access_token).sub).toBe(ids.gh)
  })

  it('no selector matches → no_matching_service_account', async () => {
    const r = await h.exchange(await mint(gh, githubClaims('evil/repo')))
    expect(r.body).toMatchObject({
      error: 'invalid_grant',
      hivemind_error: 'no_matching_service_account',
    })
  })

  it.each([
    ['doc GitHub policy: main branch, release workflow', {}, 200],
    ['doc GitHub policy: other branch', { ref: 'refs/heads/dev' }, 400],
    [
      'doc GitHub policy: other workflow',
      { workflow_ref: 'octo-org/octo-repo/.github/workflows/ci.yml@refs/heads/main' },
      400,
    ],
  ])(
    '%s → %i (the exact selector wins, no fallback to the glob)',
    async (_name, override, status) => {
      const r = await h.exchange(await mint(gh, githubClaims('octo-org/octo-repo', override)))
      expect(r.status).toBe(status)
      expect(r.body).toMatchObject(
        status === 400 ? { hivemind_error: 'policy_denied' } : { token_type: 'Bearer' },
      )
    },
  )

  it.each([
    ['doc Modal policy: main / agent-runner', {}, 200],
    ['doc Modal policy: other app', { app_name: 'other' }, 400],
    ['doc Modal policy: other environment', { environment_name: 'dev' }, 400],
  ])('%s → %i', async (_name, override, status) => {
    const r = await h.exchange(await mint(modal, modalClaims('ac-12345abcd', override)))
    expect(r.status).toBe(status)
    expect(r.body).toMatchObject(
      status === 400 ? { hivemind_error: 'policy_denied' } : { token_type: 'Bearer' },
    )
  })

  it.each([
    ['non-boolean result', 'policy-nonbool', {}],
    ['throwing policy (missing claim)', 'policy-throws', {}],
    ['__proto__ access', 'policy-proto', {}],
    ['constructor access', 'policy-ctor', {}],
    ['__proto__ smuggled in the token', 'policy-hidden', { __proto__: { admin: true } }],
  ])('%s → policy_denied', async (_name, sub, extra) => {
    const claims = JSON.parse(JSON.stringify({ sub, aud: PUBLIC_URL })) as Record<string, unknown>
    if ('__proto__' in extra)
      Object.defineProperty(claims, '__proto__', { value: { admin: true }, enumerable: true })
    const r = await h.exchange(await mint(pol, claims))
    expect(r.body).toMatchObject({ error: 'invalid_grant', hivemind_error: 'policy_denied' })
  })

  it('a ReDoS-shaped matches() runs on RE2 in linear time', async () => {
    const started = performance.now()
    const r = await h.exchange(
      await mint(pol, { sub: 'policy-redos', aud: PUBLIC_URL, probe: `${'a'.repeat(5000)}b` }),
    )
    expect(r.body.hivemind_error).toBe('policy_denied')
    expect(performance.now() - started).toBeLessThan(1000)
    const ok = await h.exchange(
      await mint(pol, { sub: 'policy-redos', aud: PUBLIC_URL, probe: 'aaaa' }),
    )
    expect(ok.status).toBe(200)
  })
})

describe('TTL clamp', () => {
  it.each([
    ['10 min ID token → 1 h', 'gh', () => githubClaims(), 600, 3600],
    ['4 h ID token → 4 h', 'gh', () => githubClaims(), 4 * 3600, 4 * 3600],
    ['48 h Modal token → 24 h', 'modal', () => modalClaims(), MODAL_TOKEN_TTL_SECONDS, 86_400],
    [
      'service-account maximum lower → the maximum',
      'gh',
      () => githubClaims('short/lived'),
      4 * 3600,
      1800,
    ],
  ] as const)('%s', async (_name, issuer, claims, ttl, expected) => {
    const r = await h.exchange(
      await mint(issuer === 'modal' ? modal : gh, claims(), { ttlSeconds: ttl }),
    )
    expect(r.status).toBe(200)
    expect(r.body.expires_in).toBe(expected)
    const jwt = decodeJwt(r.body.access_token)
    expect(jwt.exp! - jwt.iat!).toBe(expected)
  })

  it('the replay entry of a 48 h Modal token outlives 24 h (exp + leeway)', async () => {
    const token = await mint(modal, modalClaims(), { ttlSeconds: MODAL_TOKEN_TTL_SECONDS })
    expect((await h.exchange(token)).status).toBe(200)
    const { rows } = await h.db.query<{ s: number }>(
      'SELECT max(extract(epoch from expires_at))::float8 AS s FROM replay_claims',
    )
    expect(rows[0].s).toBeGreaterThanOrEqual(nowS() + MODAL_TOKEN_TTL_SECONDS + 60 - 2)
    h.clock.advance(25 * 3600)
    expect((await h.exchange(token)).body.hivemind_error).toBe('replayed_token')
  })
})

describe('replay', () => {
  it('the same jti twice → replayed_token', async () => {
    const token = await mint(gh, githubClaims())
    expect((await h.exchange(token)).status).toBe(200)
    expect((await h.exchange(token)).body).toMatchObject({
      error: 'invalid_grant',
      hivemind_error: 'replayed_token',
    })
  })

  it('the same jti from two issuers never collides', async () => {
    const a = await h.exchange(await mint(gh, { ...githubClaims(), jti: 'shared-jti' }))
    const b = await h.exchange(
      await mint(k8s, { ...kubernetesClaims(), aud: PUBLIC_URL, jti: 'shared-jti' }),
    )
    expect([a.status, b.status]).toEqual([200, 200])
  })

  it.each([
    [
      'signature with base64 padding',
      async () => {
        const t = await mint(
          k8s,
          { ...kubernetesClaims(), aud: PUBLIC_URL, nonce: randomUUID() },
          { noJti: true },
        )
        return [t, `${t}==`]
      },
    ],
    [
      'signature with other unused trailing bits',
      async () => {
        const t = await mint(
          k8s,
          { ...kubernetesClaims(), aud: PUBLIC_URL, nonce: randomUUID() },
          { noJti: true },
        )
        const abc = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
        const last = t.at(-1)!
        return [t, t.slice(0, -1) + abc[abc.indexOf(last) ^ 1]]
      },
    ],
    [
      'malleated ECDSA signature (s → n − s)',
      async () => {
        const t = await mint(gh, githubClaims('octo-org/octo-repo', { nonce: randomUUID() }), {
          noJti: true,
        })
        const [hd, pl, s] = t.split('.') as [string, string, string]
        const sig = Buffer.from(s, 'base64url')
        const n = BigInt('0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551')
        const sv = BigInt(`0x${sig.subarray(32).toString('hex')}`)
        const s2 = Buffer.from((n - sv).toString(16).padStart(64, '0'), 'hex')
        return [t, `${hd}.${pl}.${Buffer.concat([sig.subarray(0, 32), s2]).toString('base64url')}`]
      },
    ],
  ])('jti-less token re-encoded (%s) is still a replay', async (_name, make) => {
    const [original, reencoded] = await make()
    expect(reencoded).not.toBe(original)
    expect((await h.exchange(original)).status).toBe(200)
    const r = await h.exchange(reencoded)
    expect(r.body).toMatchObject({ error: 'invalid_grant', hivemind_error: 'replayed_token' })
  })

  it('50 concurrent identical exchanges → exactly one 200 (PGlite)', async () => {
    const token = await mint(gh, githubClaims())
    const results = await Promise.all(Array.from({ length: 50 }, () => h.exchange(token)))
    expect(results.filter((r) => r.status === 200)).toHaveLength(1)
    expect(results.filter((r) => r.body.hivemind_error === 'replayed_token')).toHaveLength(49)
  })
})

describe('POST /api/v1/exchange/explain', () => {
  it('explains without consuming the replay key', async () => {
    const token = await mint(gh, githubClaims())
    const first = await h.call('POST', '/api/v1/exchange/explain', {
      admin: true,
      body: { subject_token: token },
    })
    expect(first.status).toBe(200)
    expect(first.body).toMatchObject({ result: 'allow', service_account: { id: ids.gh } })
    expect((first.body.checks as { name: string }[]).map((c) => c.name)).toEqual([
      'token_size',
      'token_format',
      'algorithm',
      'issuer',
      'signature',
      'required_claims',
      'audience',
      'time',
      'selector',
      'service_account',
      'policy',
      'scope',
      'replay',
      'ttl',
    ])
    expect((await h.exchange(token)).status).toBe(200)
    const after = await h.call('POST', '/api/v1/exchange/explain', {
      admin: true,
      body: { subject_token: token },
    })
    expect(after.body.result).toBe('deny')
    expect(
      (after.body.checks as { name: string }[]).find((c) => c.name === 'replay'),
    ).toMatchObject({
      ok: false,
      hivemind_error: 'replayed_token',
    })
  })

  it('names the claims that decided a policy denial and keeps going after soft failures', async () => {
    const token = await mint(gh, githubClaims('octo-org/octo-repo', { ref: 'refs/heads/dev' }), {
      iat: nowS() - 1000,
    })
    const r = await h.call('POST', '/api/v1/exchange/explain', {
      admin: true,
      body: { subject_token: token },
    })
    expect(r.body.result).toBe('deny')
    const byName = Object.fromEntries((r.body.checks as { name: string }[]).map((c) => [c.name, c]))
    expect(byName.time).toMatchObject({ ok: false, hivemind_error: 'expired' })
    expect(byName.policy).toMatchObject({
      ok: false,
      hivemind_error: 'policy_denied',
      claims: { ref: 'refs/heads/dev', repository: 'octo-org/octo-repo' },
    })
    expect(JSON.stringify(r.body)).not.toContain(token)
  })

  it('needs an admin', async () => {
    const r = await h.call('POST', '/api/v1/exchange/explain', { body: { subject_token: 'x' } })
    expect(r.status).toBe(401)
  })
})

describe('audit, logs and metrics', () => {
  it('audits every exchange without the token, logs none, counts them', async () => {
    const { rows } = await h.db.query<{ result: string; details: Record<string, unknown> }>(
      "SELECT result, details FROM audit_log WHERE action = 'token.exchange'",
    )
    expect(rows.some((r) => r.result === 'success')).toBe(true)
    expect(
      rows.find(
        (r) => r.details.hivemind_error === 'replayed_token' && r.details.issuer === gh.issuer,
      ),
    ).toMatchObject({
      result: 'failure',
      details: { issuer: gh.issuer, service_account: ids.gh },
    })
    const audit = JSON.stringify(rows)
    const logs = h.logs.join('\n')
    expect(sent.length).toBeGreaterThan(50)
    for (const token of sent) {
      expect(audit).not.toContain(token)
      expect(logs).not.toContain(token)
      expect(logs).not.toContain(token.split('.')[2])
    }
    const metrics = await h.server.deps.metrics.registry.metrics()
    expect(metrics).toMatch(
      /hivemind_token_exchanges_total\{result="success",hivemind_error=""\} \d+/,
    )
    expect(metrics).toMatch(
      /hivemind_token_exchanges_total\{result="failure",hivemind_error="replayed_token"\} \d+/,
    )
    expect(metrics).toMatch(
      /hivemind_token_exchange_duration_seconds_count\{result="success"\} \d+/,
    )
  })
})
