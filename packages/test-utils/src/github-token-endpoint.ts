import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { LocalOidcIssuer } from './oidc-issuer.js'
import { githubClaims } from './claims.js'

export interface GitHubTokenEndpoint {
  /** Value for `ACTIONS_ID_TOKEN_REQUEST_URL` (already carries a query, like GitHub's). */
  readonly url: string
  /** Value for `ACTIONS_ID_TOKEN_REQUEST_TOKEN`. */
  readonly requestToken: string
  /** Audiences requested, in order. */
  readonly requests: { audience: string | null; authorization: string | undefined }[]
  /** Answer the next N requests with GitHub's 403 "Pending" (or "Delayed") body. */
  failPendingTimes(n: number, state?: 'Pending' | 'Delayed'): void
  /** Answer the next N requests with this status. */
  failTimes(n: number, status: number): void
  close(): Promise<void>
}

/**
 * A runner-like ID-token endpoint: checks the bearer request token and mints a
 * real signed GitHub-shaped token from the local issuer for the audience asked.
 */
export async function startGitHubTokenEndpoint(
  issuer: LocalOidcIssuer,
  options: { repo?: string; claims?: Record<string, unknown>; ttlSeconds?: number } = {},
): Promise<GitHubTokenEndpoint> {
  const requestToken = `ghs_test_${Math.random().toString(36).slice(2)}`
  const requests: GitHubTokenEndpoint['requests'] = []
  let pending = 0
  let pendingState: 'Pending' | 'Delayed' = 'Pending'
  let failures: { n: number; status: number } = { n: 0, status: 500 }
  const server: Server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://x')
      const audience = url.searchParams.get('audience')
      requests.push({ audience, authorization: req.headers.authorization })
      if (req.headers.authorization !== `Bearer ${requestToken}`) {
        res
          .writeHead(401, { 'content-type': 'application/json' })
          .end('{"message":"Bad credentials"}')
        return
      }
      if (pending > 0) {
        pending--
        res
          .writeHead(403, { 'content-type': 'application/json' })
          .end(
            JSON.stringify({ message: `Can't issue ID_TOKEN for job in '${pendingState}' state` }),
          )
        return
      }
      if (failures.n > 0) {
        failures = { ...failures, n: failures.n - 1 }
        res.writeHead(failures.status).end('upstream error')
        return
      }
      const value = await issuer.mint(
        { ...githubClaims(options.repo, options.claims), ...(audience ? { aud: audience } : {}) },
        { ttlSeconds: options.ttlSeconds ?? 300 },
      )
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ count: 1, value }))
    })()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/_apis/distributedtask/hubs/build/plans/p/jobs/j/idtoken?api-version=2.0`,
    requestToken,
    requests,
    failPendingTimes(n, state = 'Pending') {
      pending = n
      pendingState = state
    },
    failTimes(n, status) {
      failures = { n, status }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
