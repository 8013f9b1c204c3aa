// The server under test in its own process, as in production: started by
// `startBenchServer` (server-process.ts) with tsx, it reports its URL over IPC and
// closes cleanly when told (so `--cpu-prof` output is written).
import { createServer } from '../../packages/server/src/server.ts'
import { openPglite } from '../../packages/server/src/db/pglite.ts'

const databaseUrl = process.env.BENCH_DATABASE_URL || undefined
const extraEnv = JSON.parse(process.env.BENCH_SERVER_ENV ?? '{}') as Record<string, string>

const server = await createServer({
  env: {
    HIVEMIND_HOST: '127.0.0.1',
    HIVEMIND_PORT: '0',
    LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'info',
    HIVEMIND_METRICS: 'false',
    ...extraEnv,
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
  },
  // Without DATABASE_URL: PGlite in memory, like the in-process baselines.
  overrides: databaseUrl ? {} : { db: await openPglite(undefined) },
})
const { url } = await server.listen()
process.send!({ url })

const stop = async () => {
  await server.close()
  if (!databaseUrl) await server.deps.db.close()
  process.exit(0)
}
process.on('message', () => void stop())
process.on('disconnect', () => void stop())
