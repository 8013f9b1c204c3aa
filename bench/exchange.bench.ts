// Token exchanges per second over HTTP (POST /oauth/token against a real server on
// loopback) vs an in-process baseline in the same run: jose verify + HiveMind sign
// + replay insert on the same kind of database, no HTTP, no routing, no policy.
// Goal: the HTTP path keeps ≥ 50 % of the baseline with p99 < 20 ms at moderate
// concurrency.
//
// The server under test runs in its own process (as in production) and the load
// generator here only sends requests over a keep-alive agent, so the two do not
// share one event loop: with both in one process every client-side parse and
// timer counted as server latency. Three roles, one file:
// - `bench/run.ts` imports this file under plain node and calls the default export,
//   which re-runs the file with tsx (the server's `.js` specifiers need it);
// - that child (`HIVEMIND_EXCHANGE_BENCH_CHILD`) is the load generator and runs the
//   baseline in-process;
// - it spawns one server process per backend (`HIVEMIND_EXCHANGE_BENCH_SERVER`).
//
// Knobs: BENCH_CONCURRENCY (default 4), BENCH_COUNT (default 2000), BENCH_LOG_LEVEL
// for the server (default `info`, to /dev/null, as a production server would log),
// BENCH_SERVER_NODE_ARGS (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`).
import { keepAliveClient } from './lib/http-client.ts'
import { percentile, runAsChild, startBenchServer, stopBenchServer } from './lib/server-process.ts'

const CHILD_FLAG = 'HIVEMIND_EXCHANGE_BENCH_CHILD'
// A handful of bots exchanging at once on a 2-core box; 12 in flight only measures queueing.
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 4)
const COUNT = Number(process.env.BENCH_COUNT ?? 2000)
const WARMUP = 300
// Baseline and HTTP alternate in rounds: on a shared 2-core box the background load
// drifts, and measuring one path after the other folded that drift into the ratio.
const ROUNDS = 4
const ADMIN = 'bench-admin-key-0123456789abcdef'
const PUBLIC_URL = 'https://hivemind.example.com'

export default async function exchangeBench(): Promise<void> {
  await runAsChild(import.meta.url, CHILD_FLAG, 'exchange')
}

interface Sample {
  seconds: number
  latencies: number[]
}

async function runPool(
  count: number,
  concurrency: number,
  task: (i: number) => Promise<void>,
): Promise<Sample> {
  const latencies: number[] = []
  let next = 0
  const started = performance.now()
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++
        const t = performance.now()
        await task(i)
        latencies.push(performance.now() - t)
      }
    }),
  )
  return { seconds: (performance.now() - started) / 1000, latencies }
}

function summarize(samples: Sample[]): { opsPerSecond: number; p50: number; p99: number } {
  const latencies = samples.flatMap((s) => s.latencies).sort((a, b) => a - b)
  const seconds = samples.reduce((sum, s) => sum + s.seconds, 0)
  return {
    opsPerSecond: latencies.length / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
  }
}

async function loadGenerator(): Promise<void> {
  const { createLocalJWKSet, jwtVerify } = await import('jose')
  const { githubClaims, startOidcIssuer, testDatabaseUrl } = await import('@hivemind/test-utils')
  const { GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_ID_TOKEN, replayKey } =
    await import('../packages/sdk/src/schemas/index.ts')
  const { createServer } = await import('../packages/server/src/server.ts')
  const { openPglite } = await import('../packages/server/src/db/pglite.ts')
  const { freshPostgresDatabase } = await import('../packages/server/test/helpers.ts')

  const issuer = await startOidcIssuer()
  const backends: ('pglite' | 'postgres')[] = testDatabaseUrl()
    ? ['pglite', 'postgres']
    : ['pglite']
  const mintMany = (n: number) =>
    Promise.all(Array.from({ length: n }, () => issuer.mint(githubClaims(), { ttlSeconds: 600 })))
  const jwks = createLocalJWKSet(issuer.jwks())
  const f = (n: number) => n.toFixed(1)
  try {
    for (const backend of backends) {
      const pgDb = backend === 'postgres' ? await freshPostgresDatabase() : undefined
      try {
        // Baseline, in this process, on the same kind of database (for PostgreSQL the very
        // same one the server uses).
        const local = await createServer({
          env: {
            HIVEMIND_PUBLIC_URL: PUBLIC_URL,
            LOG_LEVEL: 'silent',
            HIVEMIND_METRICS: 'false',
            ...(pgDb ? { DATABASE_URL: pgDb.url } : {}),
          },
          overrides: pgDb ? {} : { db: await openPglite(undefined) },
        })
        const { deps } = local
        const baselineOne = async (token: string) => {
          const { payload } = await jwtVerify(token, jwks, {
            algorithms: ['ES256'],
            issuer: issuer.issuer,
            audience: PUBLIC_URL,
            clockTolerance: 60,
            requiredClaims: ['iat', 'sub', 'exp'],
          })
          if (!(await deps.replay.claim(replayKey(payload), payload.exp! + 60)))
            throw new Error('replay')
          await deps.keys.sign({ sub: 'sa_bench', scope: 'write' }, 3600)
        }

        // HTTP, against a server in its own process.
        const { url, child } = await startBenchServer({
          databaseUrl: pgDb?.url,
          env: {
            HIVEMIND_PUBLIC_URL: PUBLIC_URL,
            ADMIN_API_KEY: ADMIN,
            HIVEMIND_RATE_LIMIT_EXCHANGE_PER_MIN: '0',
          },
        })
        const client = keepAliveClient(url, CONCURRENCY)
        const { call } = client
        const post = (path: string, headers: Record<string, string>, body: string) =>
          call('POST', path, headers, body)
        try {
          const admin = async (path: string, body: unknown) => {
            const res = await post(
              path,
              { 'x-api-key': ADMIN, 'content-type': 'application/json' },
              JSON.stringify(body),
            )
            if (res.status >= 300) throw new Error(`${path} answered ${res.status}: ${res.body}`)
            return JSON.parse(res.body) as { id: string }
          }
          const sa = await admin('/api/v1/service-accounts', { name: 'bench', scopes: ['write'] })
          await admin(`/api/v1/service-accounts/${sa.id}/identity-providers`, {
            preset: 'github',
            issuer: issuer.issuer,
            selector: 'repo:octo-org/octo-repo',
            policy: 'claims.ref == "refs/heads/main"',
          })
          const httpOne = async (token: string) => {
            const res = await post(
              '/oauth/token',
              { 'content-type': 'application/x-www-form-urlencoded' },
              new URLSearchParams({
                grant_type: GRANT_TYPE_TOKEN_EXCHANGE,
                subject_token: token,
                subject_token_type: TOKEN_TYPE_ID_TOKEN,
              }).toString(),
            )
            if (res.status !== 200) throw new Error(`exchange answered ${res.status}: ${res.body}`)
          }

          // Warm up both paths (JIT, JWKS fetch, connection pools), then measure in
          // alternating rounds. Tokens are minted up front: minting is the issuer's work.
          const warm = await mintMany(WARMUP * 2)
          await runPool(WARMUP, CONCURRENCY, (i) => baselineOne(warm[i]))
          await runPool(WARMUP, CONCURRENCY, (i) => httpOne(warm[WARMUP + i]))
          const perRound = Math.ceil(COUNT / ROUNDS)
          const baseSamples: Sample[] = []
          const httpSamples: Sample[] = []
          for (let round = 0; round < ROUNDS; round++) {
            const tokens = await mintMany(perRound * 2)
            baseSamples.push(await runPool(perRound, CONCURRENCY, (i) => baselineOne(tokens[i])))
            httpSamples.push(
              await runPool(perRound, CONCURRENCY, (i) => httpOne(tokens[perRound + i])),
            )
          }
          const base = summarize(baseSamples)
          const http = summarize(httpSamples)
          const ratio = http.opsPerSecond / base.opsPerSecond
          console.log(
            `exchange [${backend}] concurrency ${CONCURRENCY}, ${perRound * ROUNDS} exchanges each in ${ROUNDS} alternating rounds, server in its own process (log level ${process.env.BENCH_LOG_LEVEL ?? 'info'})\n` +
              `  baseline (in-process verify+sign+replay): ${f(base.opsPerSecond)} ops/s  p50 ${f(base.p50)} ms  p99 ${f(base.p99)} ms\n` +
              `  HTTP POST /oauth/token:                   ${f(http.opsPerSecond)} ops/s  p50 ${f(http.p50)} ms  p99 ${f(http.p99)} ms\n` +
              `  ratio ${(ratio * 100).toFixed(0)} % of baseline (goal ≥ 50 %), p99 ${f(http.p99)} ms (goal < 20 ms) ${
                ratio >= 0.5 && http.p99 < 20 ? 'OK' : 'BELOW GOAL'
              }`,
          )
        } finally {
          client.close()
          await stopBenchServer(child)
          await local.close()
          if (!pgDb) await deps.db.close()
        }
      } finally {
        await pgDb?.drop()
      }
    }
  } finally {
    await issuer.close()
  }
}

const role = process.env[CHILD_FLAG] === '1' ? loadGenerator : undefined
if (role) {
  role().then(
    () => {
      if (role === loadGenerator) process.exit(0)
    },
    (err: unknown) => {
      console.error(err)
      process.exit(1)
    },
  )
}
