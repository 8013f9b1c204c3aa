import type { EnvHttpProxyAgent, fetch as undiciFetchType } from 'undici'

const PROXY_VARS = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy'] as const

let agent: { key: string; dispatcher: EnvHttpProxyAgent } | undefined

/**
 * `fetch` that honours HTTPS_PROXY / HTTP_PROXY / NO_PROXY (AWS's SDK ignores them,
 * a top complaint). Without proxy variables it is the global fetch, so test
 * interceptors (msw) and Node's own settings apply unchanged.
 */
export function proxyAwareFetch(
  env: Readonly<Record<string, string | undefined>> = process.env,
): typeof fetch {
  if (!PROXY_VARS.some((name) => env[name])) return globalThis.fetch
  const key = [...PROXY_VARS, 'NO_PROXY', 'no_proxy'].map((n) => env[n] ?? '').join('\n')
  // undici is loaded on the first proxied request only: it is a second copy of Node's own
  // fetch (~16 MB resident), which a daemon without a proxy should not carry.
  return async (input: Parameters<typeof fetch>[0], init?: RequestInit) => {
    const undici = await import('undici')
    if (agent?.key !== key) {
      agent = {
        key,
        dispatcher: new undici.EnvHttpProxyAgent(
          definedOnly({
            httpProxy: env.HTTP_PROXY ?? env.http_proxy,
            httpsProxy: env.HTTPS_PROXY ?? env.https_proxy ?? env.HTTP_PROXY ?? env.http_proxy,
            noProxy: env.NO_PROXY ?? env.no_proxy,
          }),
        ),
      }
    }
    type UndiciFetch = typeof undiciFetchType
    return await undici.fetch(input as Parameters<UndiciFetch>[0], {
      ...(init as Parameters<UndiciFetch>[1]),
      dispatcher: agent.dispatcher,
    })
  }
}

function definedOnly<T extends Record<string, string | undefined>>(
  record: T,
): { [K in keyof T]?: string } {
  return Object.fromEntries(Object.entries(record).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]?: string
  }
}
