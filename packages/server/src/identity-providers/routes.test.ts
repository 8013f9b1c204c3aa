import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateKeyPair, exportJWK } from 'jose'
import { startExchangeHarness, type ExchangeHarness } from '../../test/exchange-harness.js'

let h: ExchangeHarness
let sa: string
let sa2: string
const base = () => `/api/v1/service-accounts/${sa}/identity-providers`

beforeAll(async () => {
  h = await startExchangeHarness()
  sa = await h.serviceAccount('idp-admin')
  sa2 = await h.serviceAccount('idp-admin-2')
})
afterAll(() => h?.close())

describe('identity providers admin API', () => {
  it('fills preset defaults', async () => {
    const gh = await h.call('POST', base(), {
      admin: true,
      body: { preset: 'github', selector: 'repo:acme/app' },
    })
    expect(gh.status).toBe(201)
    expect(gh.body).toMatchObject({
      id: expect.stringMatching(/^idp_/),
      issuer: 'https://token.actions.githubusercontent.com',
      audience: ['https://hivemind.example.com'],
      audience_default: true,
      replay: 'single-use',
    })
    const modal = await h.call('POST', base(), {
      admin: true,
      body: { preset: 'modal', selector: 'modal:workspace_id:ac-9' },
    })
    expect(modal.body).toMatchObject({
      issuer: 'https://oidc.modal.com',
      audience: ['https://oidc.modal.com'],
      audience_default: false,
    })
  })

  it.each([
    [
      'kubernetes without issuer',
      { preset: 'kubernetes', selector: 'system:serviceaccount:a:b' },
      'invalid_request',
      /issuer/,
    ],
    [
      'github selector of the wrong shape',
      { preset: 'github', selector: 'octo/repo' },
      'invalid_request',
      /repo:OWNER\/REPO/,
    ],
    [
      'kubernetes selector of the wrong shape',
      { preset: 'kubernetes', issuer: 'https://k8s.example.com', selector: 'agents:runner' },
      'invalid_request',
      /system:serviceaccount/,
    ],
    [
      'bad CEL policy',
      { issuer: 'https://idp.example.com', selector: 's', policy: 'claims.sub ==' },
      'invalid_policy',
      /Unexpected token/,
    ],
    [
      'policy that cannot be bool',
      { issuer: 'https://idp.example.com', selector: 's', policy: '"x" + "y"' },
      'invalid_policy',
      /bool/,
    ],
    [
      'ReDoS-prone backreference',
      {
        issuer: 'https://idp.example.com',
        selector: 's',
        policy: 'claims.sub.matches("(a+)\\\\1")',
      },
      'invalid_policy',
      /RE2/,
    ],
    [
      'plain-http issuer off loopback',
      { issuer: 'http://idp.example.com', selector: 's' },
      'invalid_request',
      /https/,
    ],
    [
      'jwks and jwks_uri together',
      {
        issuer: 'https://idp.example.com',
        selector: 's',
        jwks_uri: 'https://idp.example.com/k',
        jwks: { keys: [{ kty: 'EC' }] },
      },
      'invalid_request',
      /either/,
    ],
    [
      'symmetric inline key',
      {
        issuer: 'https://idp.example.com',
        selector: 's',
        jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] },
      },
      'invalid_request',
      /asymmetric/,
    ],
    [
      'bad CA bundle',
      { issuer: 'https://idp.example.com', selector: 's', ca_pem: 'not a pem' },
      'invalid_request',
      /PEM/,
    ],
    [
      'unknown field',
      { issuer: 'https://idp.example.com', selector: 's', bogus: 1 },
      'invalid_request',
      /unknown field/,
    ],
  ])('%s → 400 %s', async (_name, body, code, message) => {
    const r = await h.call('POST', base(), { admin: true, body })
    expect(r.status).toBe(400)
    expect(r.body).toMatchObject({ code })
    expect(r.body.error).toMatch(message)
  })

  it('rejects a private key in inline jwks', async () => {
    const { privateKey } = await generateKeyPair('ES256', { extractable: true })
    const r = await h.call('POST', base(), {
      admin: true,
      body: {
        issuer: 'https://idp.example.com',
        selector: 'p',
        jwks: { keys: [await exportJWK(privateKey)] },
      },
    })
    expect(r.status).toBe(400)
    expect(r.body.error).toMatch(/public key/)
  })

  it('(issuer, selector) is unique across service accounts → 409', async () => {
    const body = { issuer: 'https://dup.example.com', selector: 'same' }
    expect((await h.call('POST', base(), { admin: true, body })).status).toBe(201)
    const r = await h.call('POST', `/api/v1/service-accounts/${sa2}/identity-providers`, {
      admin: true,
      body,
    })
    expect(r.status).toBe(409)
    expect(r.body.code).toBe('conflict')
  })

  it('lists, reads, patches and deletes', async () => {
    const created = await h.call('POST', base(), {
      admin: true,
      body: { issuer: 'https://crud.example.com', selector: 'crud' },
    })
    const id = created.body.id as string
    const list = await h.call('GET', base(), { admin: true })
    expect((list.body.items as { id: string }[]).map((p) => p.id)).toContain(id)
    const patched = await h.call('PATCH', `${base()}/${id}`, {
      admin: true,
      body: { policy: 'claims.sub == "crud"', audience: ['https://a.example.com/'] },
    })
    expect(patched.status).toBe(200)
    expect(patched.body).toMatchObject({
      policy: 'claims.sub == "crud"',
      audience: ['https://a.example.com'],
      selector: 'crud',
    })
    const badPatch = await h.call('PATCH', `${base()}/${id}`, {
      admin: true,
      body: { policy: 'nope(' },
    })
    expect(badPatch.status).toBe(400)
    const cleared = await h.call('PATCH', `${base()}/${id}`, {
      admin: true,
      body: { policy: null, audience: null },
    })
    expect(cleared.body).toMatchObject({ policy: null, audience_default: true })
    expect((await h.call('DELETE', `${base()}/${id}`, { admin: true })).status).toBe(204)
    expect((await h.call('GET', `${base()}/${id}`, { admin: true })).status).toBe(404)
  })

  it('404 for an unknown service account, 401 without the admin key', async () => {
    expect(
      (await h.call('GET', '/api/v1/service-accounts/sa_nope/identity-providers', { admin: true }))
        .status,
    ).toBe(404)
    expect((await h.call('GET', base())).status).toBe(401)
  })
})
