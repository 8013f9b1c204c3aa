import { describe, expect, it } from 'vitest'
import { bootstrapHint } from './serve.js'

const url = 'http://127.0.0.1:8585'

describe(bootstrapHint, () => {
  it.each([
    [
      'no key, no users, local accounts: register or set the key',
      { hasAdminKey: false, users: 0, forwardAuth: false },
      ['/auth/register', 'ADMIN_API_KEY=$(openssl rand -hex 32)', '/api/v1/service-accounts'],
    ],
    [
      'no key, no users, forward-auth: the IdP or the key',
      { hasAdminKey: false, users: 0, forwardAuth: true },
      ['HIVEMIND_GROUP_ADMIN', 'ADMIN_API_KEY=$(openssl rand -hex 32)'],
    ],
    [
      'an admin key: create the first service account',
      { hasAdminKey: true, users: 0, forwardAuth: false },
      ['no service accounts yet; create the first one with:'],
    ],
    [
      'users but no key: an Admin uses their own API key',
      { hasAdminKey: false, users: 2, forwardAuth: false },
      ['an Admin creates one with their API key (hm-…)'],
    ],
  ])('%s', (_name, state, expected) => {
    const text = bootstrapHint({ url, ...state }).join('\n')
    for (const part of expected) expect(text).toContain(part)
  })

  it('never tells a forward-auth server to register locally (the route answers 404 there)', () => {
    const text = bootstrapHint({ url, hasAdminKey: false, users: 0, forwardAuth: true }).join('\n')
    expect(text).not.toContain('/auth/register')
  })
})
