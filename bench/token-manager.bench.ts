// Cached TokenManager.getToken() against a bare `async () => x` in the same process,
// interleaved over several rounds; the ratio of medians is the number to watch
// (goal: ≤ 2×). Absolute ops/s depend on the machine; the ratio much less.
import { TokenManager } from '../packages/sdk/src/token/token-manager.ts'
import type { CredentialProvider } from '../packages/sdk/src/credentials/types.ts'

const ITERATIONS = 2_000_000
const ROUNDS = 7

async function opsPerSecond(fn: () => Promise<unknown>): Promise<number> {
  const start = performance.now()
  for (let i = 0; i < ITERATIONS; i++) await fn()
  return ITERATIONS / ((performance.now() - start) / 1000)
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]
}

export default async function tokenManagerBench(): Promise<void> {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
  const jwt = `${b64({ alg: 'ES256' })}.${b64({ sub: 'sa_bench', jti: 'bench' })}.c2ln`
  const provider: CredentialProvider = Object.assign(
    () =>
      Promise.resolve({
        kind: 'id-token' as const,
        token: jwt,
        source: 'bench',
        refreshable: 'always' as const,
      }),
    { providerName: 'bench' },
  )
  // An in-process fetch: the benchmark measures the cache, not the network.
  const fetchStub = (() =>
    Promise.resolve(
      Response.json({
        access_token: jwt,
        issued_token_type: 'urn:ietf:params:oauth:token-type:jwt',
        token_type: 'Bearer',
        expires_in: 3600,
        scope: 'write',
      }),
    )) as typeof fetch
  const manager = new TokenManager({
    provider,
    endpoint: 'https://hivemind.bench',
    env: {},
    fetch: fetchStub,
  })
  const cached = await manager.getToken()
  // eslint-disable-next-line @typescript-eslint/require-await -- the baseline is a bare async function
  const baseline = async () => cached

  // Warm both paths so the JIT has settled before measuring.
  await opsPerSecond(() => manager.getToken())
  await opsPerSecond(baseline)

  const managerRuns: number[] = []
  const baselineRuns: number[] = []
  for (let round = 0; round < ROUNDS; round++) {
    baselineRuns.push(await opsPerSecond(baseline))
    managerRuns.push(await opsPerSecond(() => manager.getToken()))
  }
  manager.close()

  const m = median(managerRuns)
  const b = median(baselineRuns)
  const ratio = b / m
  const fmt = (n: number) => `${(n / 1e6).toFixed(2)} M ops/s`
  console.log(`baseline async () => x     ${fmt(b)}  (median of ${ROUNDS} × ${ITERATIONS})`)
  console.log(`TokenManager.getToken()    ${fmt(m)}  (cached)`)
  console.log(
    `ratio getToken / baseline  ${ratio.toFixed(2)}×  (goal ≤ 2×) ${ratio <= 2 ? 'OK' : 'OVER GOAL'}`,
  )
}
