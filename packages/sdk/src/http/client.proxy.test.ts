import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { startForwardProxy, type ForwardProxy } from '@hivemind/test-utils'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { HiveMindClient } from './client.js'

// Real loopback servers (no msw in this file): the client honours HTTPS_PROXY /
// HTTP_PROXY / NO_PROXY for the HiveMind endpoint, token exchange included.
describe(`${HiveMindClient.name} through a proxy`, () => {
  let proxy: ForwardProxy
  let server: Server
  let endpoint: string
  const seen: string[] = []

  beforeEach(async () => {
    seen.length = 0
    proxy = await startForwardProxy()
    server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`)
      res.setHeader('content-type', 'application/json')
      if (req.url === '/api/v1/health') {
        res.end(JSON.stringify({ status: 'ok', version: 't', audience: endpoint, checks: {} }))
      } else if (req.url === '/oauth/token') {
        res.end(
          JSON.stringify({
            access_token: 'eyJhbGciOiJFUzI1NiJ9.e30.c2ln',
            issued_token_type: 'urn:ietf:params:oauth:token-type:jwt',
            token_type: 'Bearer',
            expires_in: 3600,
            scope: 'write',
          }),
        )
      } else res.writeHead(404).end('{}')
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  afterEach(async () => {
    await proxy.close()
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })

  it('sends health and the token exchange through HTTP_PROXY', async () => {
    const client = new HiveMindClient({
      endpoint,
      env: { HTTP_PROXY: proxy.url, HTTPS_PROXY: proxy.url },
    })
    await expect(client.health()).resolves.toMatchObject({ status: 'ok' })
    await expect(client.exchange('a.b.c')).resolves.toMatchObject({ token_type: 'Bearer' })
    expect(proxy.requests).toEqual([
      `GET ${endpoint}/api/v1/health`,
      `POST ${endpoint}/oauth/token`,
    ])
    expect(seen).toEqual(['GET /api/v1/health', 'POST /oauth/token'])
  })

  it('goes direct for hosts in NO_PROXY', async () => {
    const client = new HiveMindClient({
      endpoint,
      env: { HTTP_PROXY: proxy.url, HTTPS_PROXY: proxy.url, NO_PROXY: '127.0.0.1' },
    })
    await expect(client.health()).resolves.toMatchObject({ status: 'ok' })
    expect(proxy.requests).toEqual([])
    expect(seen).toEqual(['GET /api/v1/health'])
  })
})
