import { execFileSync } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair, SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startOidcIssuer, type LocalOidcIssuer } from '@hivemind/test-utils'
import {
  PUBLIC_URL,
  startExchangeHarness,
  type ExchangeHarness,
} from '../../test/exchange-harness.js'

/**
 * Each key source of an identity provider (`jwks_uri`, inline `jwks`, `ca_pem`)
 * in a real exchange against a real issuer, and each failing closed.
 */

let h: ExchangeHarness
const cleanups: (() => Promise<void> | void)[] = []

beforeAll(async () => {
  h = await startExchangeHarness({
    env: {
      HIVEMIND_RATE_LIMIT_EXCHANGE_PER_MIN: '0',
      HIVEMIND_RATE_LIMIT_EXCHANGE_PER_SUBJECT_PER_MIN: '0',
    },
  })
})

afterAll(async () => {
  for (const c of cleanups.reverse()) await c()
  await h?.close()
})

async function issuer(options: Parameters<typeof startOidcIssuer>[0] = {}) {
  const i = await startOidcIssuer(options)
  cleanups.push(() => i.close())
  return i
}

const mint = (
  i: LocalOidcIssuer,
  sub: string,
  options: Parameters<LocalOidcIssuer['mint']>[1] = {},
) => i.mint({ sub, aud: PUBLIC_URL }, { now: h.clock.now(), ...options })

/** PATCH an identity provider, expecting 200. */
async function patchProvider(saId: string, id: string, body: Record<string, unknown>) {
  const r = await h.call('PATCH', `/api/v1/service-accounts/${saId}/identity-providers/${id}`, {
    admin: true,
    body,
  })
  if (r.status !== 200) throw new Error(`patch provider: ${r.status} ${JSON.stringify(r.body)}`)
}

describe('jwks_uri: an issuer without a discovery document', () => {
  it('answers 404 for discovery (test issuer option)', async () => {
    const i = await issuer({ discovery: false })
    expect((await fetch(`${i.issuer}/.well-known/openid-configuration`)).status).toBe(404)
    expect((await fetch(i.jwksUri)).status).toBe(200)
  })

  it('with jwks_uri → 200; keys come from that URL, discovery is never needed', async () => {
    const i = await issuer({ discovery: false })
    const sa = await h.serviceAccount('jwks-uri')
    await h.provider(sa, { issuer: i.issuer, selector: 'jwks-uri', jwks_uri: i.jwksUri })
    const r = await h.exchange(await mint(i, 'jwks-uri'))
    expect(r.status).toBe(200)
    expect(r.body.token_type).toBe('Bearer')
    expect(i.jwksFetches).toBe(1)
  })

  it('the same provider without jwks_uri → 503 jwks_unavailable (discovery 404), then 200 once jwks_uri is set', async () => {
    const i = await issuer({ discovery: false })
    const sa = await h.serviceAccount('no-jwks-uri')
    const id = await h.provider(sa, { issuer: i.issuer, selector: 'no-jwks-uri' })
    const r = await h.exchange(await mint(i, 'no-jwks-uri'))
    expect(r.status).toBe(503)
    expect(r.body).toMatchObject({
      error: 'temporarily_unavailable',
      hivemind_error: 'jwks_unavailable',
    })
    expect(r.body.error_description).toContain('/.well-known/openid-configuration answered 404')
    expect(r.body).not.toHaveProperty('access_token')
    expect(i.jwksFetches).toBe(0)

    await patchProvider(sa, id, { jwks_uri: i.jwksUri })
    const ok = await h.exchange(await mint(i, 'no-jwks-uri'))
    expect(ok.status).toBe(200)
    expect(i.jwksFetches).toBe(1)
  })
})

describe('inline jwks: an issuer the server cannot reach', () => {
  let i: LocalOidcIssuer
  let sa: string
  let publishedKid: string
  let closed = false

  beforeAll(async () => {
    i = await startOidcIssuer()
    publishedKid = i.currentKid
    sa = await h.serviceAccount('inline')
    await h.provider(sa, { issuer: i.issuer, selector: 'inline', jwks: i.jwks() })
  })

  afterAll(async () => {
    if (!closed) await i?.close()
  })

  it('issuer closed (no network) → 200 with the inline keys', async () => {
    const token = await mint(i, 'inline')
    // A second, unpublished key, minted while the issuer still runs (it is closed below).
    await i.rotateKey()
    const unknownKid = await mint(i, 'inline')
    await i.close()
    closed = true
    await expect(fetch(i.jwksUri)).rejects.toThrow()

    const r = await h.exchange(token)
    expect(r.status).toBe(200)
    expect(i.jwksFetches).toBe(0)

    // 2. A key not in the inline set (its kid is unknown) → 400 unknown_key, no fetch attempted.
    const bad = await h.exchange(unknownKid)
    expect(bad.status).toBe(400)
    expect(bad.body).toMatchObject({ error: 'invalid_grant', hivemind_error: 'unknown_key' })
    expect(bad.body.error_description).toContain('(inline jwks)')
    expect(i.jwksFetches).toBe(0)
  })

  it('a foreign key claiming an inline kid → 400 bad_signature', async () => {
    const { privateKey } = await generateKeyPair('ES256')
    const nowS = Math.floor(h.clock.now() / 1000)
    const forged = await new SignJWT({
      iss: i.issuer,
      sub: 'inline',
      aud: PUBLIC_URL,
      iat: nowS,
      exp: nowS + 300,
      jti: randomUUID(),
    })
      .setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid: publishedKid })
      .sign(privateKey)
    const r = await h.exchange(forged)
    expect(r.status).toBe(400)
    expect(r.body).toMatchObject({ error: 'invalid_grant', hivemind_error: 'bad_signature' })
  })
})

// --- ca_pem: a private https issuer on loopback with a throw-away CA ---

function haveOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

const OPENSSL = haveOpenssl()
if (!OPENSSL && process.env.CI === 'true') {
  throw new Error('the openssl CLI is required under CI=true for the ca_pem exchange tests')
}

interface TestCa {
  caPem: string
  /** Server key and certificate for IP 127.0.0.1, signed by this CA. */
  serverKey: string
  serverCert: string
}

/** A CA and a server certificate for 127.0.0.1 (subjectAltName IP), made with the openssl CLI. */
function makeCa(dir: string, name: string): TestCa {
  const f = (n: string) => join(dir, `${name}-${n}`)
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' })
  writeFileSync(
    f('ca.cnf'),
    [
      '[req]',
      'distinguished_name = dn',
      'prompt = no',
      'x509_extensions = v3_ca',
      '[dn]',
      `CN = HiveMind test CA ${name}`,
      '[v3_ca]',
      'basicConstraints = critical, CA:TRUE',
      'keyUsage = critical, keyCertSign, cRLSign',
      'subjectKeyIdentifier = hash',
      '',
    ].join('\n'),
  )
  writeFileSync(
    f('server.ext'),
    [
      'basicConstraints = CA:FALSE',
      'keyUsage = critical, digitalSignature',
      'extendedKeyUsage = serverAuth',
      'subjectAltName = IP:127.0.0.1',
      'authorityKeyIdentifier = keyid',
      '',
    ].join('\n'),
  )
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  openssl(
    'req',
    '-x509',
    ...ec,
    '-config',
    f('ca.cnf'),
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.pem'),
    '-days',
    '2',
  )
  openssl(
    'req',
    '-new',
    ...ec,
    '-subj',
    '/CN=127.0.0.1',
    '-keyout',
    f('server.key'),
    '-out',
    f('server.csr'),
  )
  openssl(
    'x509',
    '-req',
    '-in',
    f('server.csr'),
    '-CA',
    f('ca.pem'),
    '-CAkey',
    f('ca.key'),
    '-set_serial',
    `0x${randomBytes(8).toString('hex')}`,
    '-days',
    '2',
    '-extfile',
    f('server.ext'),
    '-out',
    f('server.pem'),
  )
  return {
    caPem: readFileSync(f('ca.pem'), 'utf8'),
    serverKey: readFileSync(f('server.key'), 'utf8'),
    serverCert: readFileSync(f('server.pem'), 'utf8'),
  }
}

describe.skipIf(!OPENSSL)(
  `ca_pem: a private https issuer${OPENSSL ? '' : ' (skipped: the openssl CLI is not installed)'}`,
  () => {
    let dir: string
    let ca: TestCa
    let otherCa: TestCa
    let i: LocalOidcIssuer
    let sa: string
    let id: string

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'hivemind-ca-'))
      ca = makeCa(dir, 'a')
      otherCa = makeCa(dir, 'b')
      i = await startOidcIssuer({ tls: { key: ca.serverKey, cert: ca.serverCert } })
      sa = await h.serviceAccount('private-https')
      id = await h.provider(sa, { issuer: i.issuer, selector: 'private', ca_pem: ca.caPem })
    })

    afterAll(async () => {
      await i?.close()
      if (dir) rmSync(dir, { recursive: true, force: true })
    })

    it('serves https on 127.0.0.1', () => {
      expect(i.issuer).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/)
      expect(i.jwksUri.startsWith(`${i.issuer}/`)).toBe(true)
    })

    it('provider with ca_pem = the CA → 200 (discovery and JWKS over verified TLS)', async () => {
      const r = await h.exchange(await mint(i, 'private'))
      expect(r.status).toBe(200)
      expect(r.body.token_type).toBe('Bearer')
      expect(i.jwksFetches).toBe(1)
    })

    it('the same issuer, provider without ca_pem → TLS verification fails → 503 jwks_unavailable', async () => {
      await patchProvider(sa, id, { ca_pem: null })
      const before = i.jwksFetches
      const r = await h.exchange(await mint(i, 'private'))
      expect(r.status).toBe(503)
      expect(r.body).toMatchObject({
        error: 'temporarily_unavailable',
        hivemind_error: 'jwks_unavailable',
      })
      expect(r.body.error_description).toMatch(/certificate/i)
      expect(r.body).not.toHaveProperty('access_token')
      expect(i.jwksFetches).toBe(before)
    })

    it('the same issuer, provider with a different CA → TLS verification fails → 503 jwks_unavailable', async () => {
      await patchProvider(sa, id, { ca_pem: otherCa.caPem })
      const before = i.jwksFetches
      const r = await h.exchange(await mint(i, 'private'))
      expect(r.status).toBe(503)
      expect(r.body).toMatchObject({
        error: 'temporarily_unavailable',
        hivemind_error: 'jwks_unavailable',
      })
      expect(r.body.error_description).toMatch(/certificate/i)
      expect(i.jwksFetches).toBe(before)
    })

    it('the right CA again → 200', async () => {
      await patchProvider(sa, id, { ca_pem: ca.caPem })
      // Past the key cache's age, so the keys are fetched again over verified TLS.
      h.clock.advance(11 * 60)
      const before = i.jwksFetches
      const r = await h.exchange(await mint(i, 'private'))
      expect(r.status).toBe(200)
      expect(i.jwksFetches).toBe(before + 1)
    })
  },
)

describe('providers of one issuer with different key sources', () => {
  it("a key trusted by one provider cannot vouch for another provider's subjects", async () => {
    // Provider "real" trusts the issuer's published keys (discovery); provider "pinned" of
    // the same issuer pins, inline, a key the issuer never publishes (stale or planted).
    // A token signed with that key must only ever bind to "pinned".
    const i = await issuer()
    const realKid = i.currentKid
    const pinnedKid = await i.rotateKey()
    i.unpublish(pinnedKid)

    const real = await h.serviceAccount('multi-real')
    await h.provider(real, { issuer: i.issuer, selector: 'multi:real' })
    const pinned = await h.serviceAccount('multi-pinned')
    await h.provider(pinned, {
      issuer: i.issuer,
      selector: 'multi:pinned',
      jwks: { keys: [i.publicJwk(pinnedKid)] },
    })

    const okPinned = await h.exchange(await mint(i, 'multi:pinned', { kid: pinnedKid }))
    expect(okPinned.status).toBe(200)
    const spoofed = await h.exchange(await mint(i, 'multi:real', { kid: pinnedKid }))
    expect(spoofed.status).toBe(400)
    expect(spoofed.body).toMatchObject({ error: 'invalid_grant', hivemind_error: 'unknown_key' })
    expect(spoofed.body).not.toHaveProperty('access_token')
    const okReal = await h.exchange(await mint(i, 'multi:real', { kid: realKid }))
    expect(okReal.status).toBe(200)
  })
})
