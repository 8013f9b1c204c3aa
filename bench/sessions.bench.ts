// Sessions API at scale, on PostgreSQL (skipped without HIVEMIND_TEST_DATABASE_URL):
// - seeds 1 million events (10 000 sessions × 100) in SQL with generate_series, then
//   measures list, events and search latency p50/p99 over HTTP (goal: search p99 < 200 ms);
// - server ingest: events/s through POST /api/v1/sessions/batch vs PostgreSQL COPY of the
//   same rows into the same table, in the same run (goal ≥ 30 %).
//
// As in exchange.bench.ts, the server runs in its own process and this one only sends
// requests: `bench/run.ts` calls the default export, which re-runs this file under tsx
// (HIVEMIND_SESSIONS_BENCH_CHILD) as the load generator; that spawns the server
// (HIVEMIND_SESSIONS_BENCH_SERVER).
//
// Knobs: BENCH_SESSIONS_EVENTS (seeded events, default 1 000 000), BENCH_INGEST_EVENTS
// (default 40 000), BENCH_BATCH (events per batch, default 500), BENCH_CONCURRENCY
// (default 4), BENCH_QUERIES (requests per read scenario, default 100), BENCH_KEEP_DB=1
// (keep the seeded database and print its URL, to EXPLAIN queries by hand).
import { randomUUID } from 'node:crypto'
import { chmod, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { keepAliveClient } from './lib/http-client.ts'
import { percentile, runAsChild, startBenchServer, stopBenchServer } from './lib/server-process.ts'

const CHILD_FLAG = 'HIVEMIND_SESSIONS_BENCH_CHILD'
const SEED_EVENTS = Number(process.env.BENCH_SESSIONS_EVENTS ?? 1_000_000)
const EVENTS_PER_SESSION = 100
const INGEST_EVENTS = Number(process.env.BENCH_INGEST_EVENTS ?? 40_000)
const BATCH = Number(process.env.BENCH_BATCH ?? 500)
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 4)
const QUERIES = Number(process.env.BENCH_QUERIES ?? 100)
const ADMIN = 'bench-admin-key-0123456789abcdef'
const PHRASE = 'the agent broke the migration'

// A coding-flavoured vocabulary; words are drawn with a skew (index ~ random²), so the
// first ones are in a large share of events and the last ones are rare, like real text.
const VOCAB = (
  'file function test error build import module server client request response token ' +
  'session event database query index table column migration schema commit branch merge ' +
  'deploy release config environment variable install package dependency version update ' +
  'fix bug issue review change diff patch line code type interface class method return ' +
  'async await promise callback stream buffer string number array object value key cache ' +
  'retry timeout network socket port host proxy header cookie secret credential scope ' +
  'policy audience issuer signature verify exchange replay tombstone revision upsert ' +
  'cursor page limit filter search rank snippet highlight vector lexeme stemmer parser ' +
  'kubernetes pod container image volume mount sidecar webhook operator controller ' +
  'workflow action runner artifact cache matrix job step output input summary title ' +
  'lint format prettier eslint typescript compiler bundle chunk source map debug trace ' +
  'metric histogram counter gauge latency throughput percentile benchmark baseline ratio'
)
  .split(' ')
  .concat(Array.from({ length: 1500 }, (_, i) => `term${i}x`))

export default async function sessionsBench(): Promise<void> {
  if (!process.env.HIVEMIND_TEST_DATABASE_URL) {
    console.log(
      'sessions bench: skipped (needs PostgreSQL: set HIVEMIND_TEST_DATABASE_URL or run `pnpm bench`)',
    )
    return
  }
  await runAsChild(import.meta.url, CHILD_FLAG, 'sessions')
}

async function runPool(
  count: number,
  concurrency: number,
  task: (i: number) => Promise<void>,
): Promise<{ seconds: number; p50: number; p99: number }> {
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
  latencies.sort((a, b) => a - b)
  return {
    seconds: (performance.now() - started) / 1000,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
  }
}

async function loadGenerator(): Promise<void> {
  const { openPostgres } = await import('../packages/server/src/db/postgres.ts')
  const { eventKey, sessionKey } = await import('../packages/sdk/src/schemas/index.ts')
  const { freshPostgresDatabase } = await import('../packages/server/test/helpers.ts')
  const f = (n: number) => n.toFixed(1)
  const db = await freshPostgresDatabase()
  const { url, child } = await startBenchServer({
    databaseUrl: db.url,
    env: { ADMIN_API_KEY: ADMIN },
  })
  const sql = await openPostgres(db.url, { max: 2 })
  const client = keepAliveClient(url, CONCURRENCY)
  const { call } = client
  const json = async (
    method: string,
    path: string,
    headers: Record<string, string>,
    body?: unknown,
  ) => {
    const res = await call(
      method,
      path,
      { ...headers, 'content-type': 'application/json' },
      body === undefined ? undefined : JSON.stringify(body),
    )
    if (res.status >= 300) throw new Error(`${method} ${path} answered ${res.status}: ${res.body}`)
    return JSON.parse(res.body) as Record<string, unknown>
  }
  try {
    const admin = { 'x-api-key': ADMIN }
    const sa = (await json('POST', '/api/v1/service-accounts', admin, {
      name: 'bench',
      scopes: ['read', 'write'],
    })) as { id: string }
    const tok = (scopes: string[]) =>
      json('POST', `/api/v1/service-accounts/${sa.id}/tokens`, admin, { scopes }) as Promise<{
        token: string
      }>
    const write = { authorization: `Bearer ${(await tok(['write'])).token}` }
    const read = { authorization: `Bearer ${(await tok(['read'])).token}` }

    // --- Seed ---------------------------------------------------------------------
    const sessions = Math.ceil(SEED_EVENTS / EVENTS_PER_SESSION)
    let t0 = performance.now()
    await sql.query(
      `INSERT INTO sessions (owner_kind, owner_id, session_key, agent, source_session_id, cwd, repo,
         git_branch, model, title, started_at, ended_at, sort_at, event_count)
       SELECT 'service_account', $1, encode(sha256(convert_to('s' || g, 'UTF8')), 'hex'),
         (ARRAY['claude-code','codex','gemini-cli','copilot'])[1 + g % 4], 'bench-' || g,
         '/home/dev/repo-' || (g % 50) || '/src', 'octo/repo-' || (g % 50),
         (ARRAY['main','dev','fix/migration'])[1 + g % 3], 'model-x', 'Session ' || g,
         t, t + interval '30 minutes', t, $2
       FROM generate_series(1, $3::int) AS g,
            LATERAL (SELECT date_trunc('milliseconds', timestamptz '2026-01-01' + g * interval '13 minutes') AS t) AS x`,
      [sa.id, EVENTS_PER_SESSION, sessions],
    )
    // Bulk load without the big indexes, then build them: what a restore would do too.
    await sql.query('DROP INDEX events_fts_idx, events_session_order_idx, events_owner_event_key')
    // Texts come from a pool of 50 000 generated ones: a fresh random text per event made
    // seeding take minutes, and the pool keeps the same word frequencies.
    await sql.query(
      `CREATE UNLOGGED TABLE bench_text_pool AS
       SELECT i, (SELECT string_agg(v.w[1 + floor(random() * random() * array_length(v.w, 1))::int + 0 * j], ' ')
                    FROM generate_series(1, 6 + i % 16) AS g(j)) AS text
         FROM generate_series(0, 49999) AS i, (SELECT $1::text[] AS w) AS v`,
      [VOCAB],
    )
    await sql.query(
      `INSERT INTO events (session_id, owner_kind, owner_id, event_key, thread, seq, ts, kind, text,
         input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens)
       SELECT s.id, 'service_account', $1, encode(sha256(convert_to('e' || s.id || ':' || n, 'UTF8')), 'hex'),
         'main', n, s.started_at + n * interval '5 seconds',
         (ARRAY['user_message','assistant_message','tool_call','tool_result','reasoning','usage'])[1 + n % 6],
         p.text,
         CASE WHEN n % 6 = 5 THEN 1000 + n END, CASE WHEN n % 6 = 5 THEN 100 + n END,
         CASE WHEN n % 6 = 5 THEN 5000 END, CASE WHEN n % 6 = 5 THEN 10 END, CASE WHEN n % 6 = 5 THEN 0 END
       FROM sessions s CROSS JOIN generate_series(0, $2::int - 1) AS n
       JOIN bench_text_pool p ON p.i = ((s.id * 100 + n) * 7919) % 50000
       WHERE s.owner_id = $1`,
      [sa.id, EVENTS_PER_SESSION],
    )
    await sql.query('DROP TABLE bench_text_pool')
    await sql.query(`UPDATE events SET text = text || ' ' || $1 WHERE id % 50000 = 7`, [PHRASE])
    await sql.query(
      'CREATE UNIQUE INDEX events_owner_event_key ON events (owner_kind, owner_id, event_key)',
    )
    await sql.query('CREATE INDEX events_session_order_idx ON events (session_id, seq, thread, id)')
    await sql.query('CREATE INDEX events_fts_idx ON events USING gin (fts) WHERE NOT tombstone')
    await sql.query('VACUUM ANALYZE sessions')
    await sql.query('VACUUM ANALYZE events')
    const count = Number(
      (await sql.query<{ n: number }>('SELECT count(*) AS n FROM events')).rows[0].n,
    )
    console.log(
      `sessions: seeded ${count} events in ${sessions} sessions in ${f((performance.now() - t0) / 1000)} s (generate_series, indexes built after)`,
    )

    // --- Reads --------------------------------------------------------------------
    const ids = (
      await sql.query<{ id: string }>('SELECT id::text FROM sessions ORDER BY random() LIMIT 200')
    ).rows.map((r) => r.id)
    const get = async (path: string) => {
      const res = await call('GET', path, read)
      if (res.status !== 200) throw new Error(`GET ${path} answered ${res.status}: ${res.body}`)
      return JSON.parse(res.body) as { items: unknown[]; next_cursor: string | null }
    }
    const page2 = (await get('/api/v1/sessions?limit=50')).next_cursor!
    const rare = VOCAB[Math.floor(VOCAB.length * 0.9)]
    const mid = VOCAB[Math.floor(VOCAB.length / 4)]
    const common = VOCAB[1]
    const matches = async (q: string) =>
      Number(
        (
          await sql.query<{ n: number }>(
            `SELECT count(*) AS n FROM events WHERE fts @@ websearch_to_tsquery('english', $1)`,
            [q],
          )
        ).rows[0].n,
      )
    const scenarios: [string, (i: number) => string][] = [
      ['list: newest 50', () => '/api/v1/sessions'],
      ['list: page 2 (cursor)', () => `/api/v1/sessions?cursor=${page2}`],
      ['list: agent + repo', (i) => `/api/v1/sessions?agent=codex&repo=repo-${i % 50}`],
      [
        'list: cwd prefix',
        (i) => `/api/v1/sessions?cwd=${encodeURIComponent(`/home/dev/repo-${i % 50}/`)}`,
      ],
      ['events: first 100', (i) => `/api/v1/sessions/${ids[i % ids.length]}/events?limit=100`],
      ['session: by id', (i) => `/api/v1/sessions/${ids[i % ids.length]}`],
      [
        `search: phrase (${await matches(`"${PHRASE}"`)} hits)`,
        () => `/api/v1/search?q=${encodeURIComponent(`"${PHRASE}"`)}`,
      ],
      [`search: rare word (${await matches(rare)} hits)`, () => `/api/v1/search?q=${rare}`],
      [`search: mid word (${await matches(mid)} hits)`, () => `/api/v1/search?q=${mid}`],
      [`search: common word (${await matches(common)} hits)`, () => `/api/v1/search?q=${common}`],
      [
        `search: two words`,
        (i) => `/api/v1/search?q=${VOCAB[20 + (i % 40)]}+${VOCAB[200 + (i % 300)]}`,
      ],
      [
        `search: word + agent filter`,
        (i) => `/api/v1/search?q=${VOCAB[300 + (i % 500)]}&agent=codex`,
      ],
      ['stats: all', () => '/api/v1/stats'],
    ]
    let searchP99 = 0
    for (const [name, path] of scenarios) {
      await runPool(5, 1, (i) => get(path(i)).then(() => {}))
      const r = await runPool(QUERIES, 2, (i) => get(path(i)).then(() => {}))
      if (name.startsWith('search')) searchP99 = Math.max(searchP99, r.p99)
      console.log(
        `  ${name.padEnd(40)} p50 ${f(r.p50).padStart(6)} ms  p99 ${f(r.p99).padStart(6)} ms`,
      )
    }
    console.log(
      `  search p99 (worst scenario) ${f(searchP99)} ms (goal < 200 ms) ${searchP99 < 200 ? 'OK' : 'BELOW GOAL'}`,
    )

    // --- Ingest: HTTP vs COPY of the same rows ------------------------------------
    const makeRows = (tag: string) => {
      const sessionsOut: Record<string, unknown>[] = []
      const eventsOut: Record<string, unknown>[] = []
      for (let s = 0; s < INGEST_EVENTS / EVENTS_PER_SESSION; s++) {
        const sid = `${tag}-${s}`
        const key = sessionKey('codex', sid)
        sessionsOut.push({
          agent: 'codex',
          source_session_id: sid,
          session_key: key,
          cwd: '/home/dev/ingest',
          git_branch: 'main',
          model: 'gpt-5-codex',
          title: null,
          started_at: '2026-05-01T00:00:00.000Z',
          ended_at: null,
          source_paths: [],
        })
        for (let n = 0; n < EVENTS_PER_SESSION; n++) {
          const words = Array.from(
            { length: 12 },
            (_, i) => VOCAB[(s * 31 + n * 7 + i * i) % VOCAB.length],
          ).join(' ')
          eventsOut.push({
            event_key: eventKey('codex', sid, 'main', `l:${n}`),
            session_key: key,
            thread: 'main',
            seq: n,
            ts: new Date(Date.UTC(2026, 4, 1) + n * 1000).toISOString(),
            kind: n % 6 === 5 ? 'usage' : 'assistant_message',
            text: words,
            ...(n % 6 === 5
              ? {
                  usage: {
                    input_tokens: 10,
                    output_tokens: 5,
                    cache_read: 0,
                    cache_write: 0,
                    reasoning: 0,
                  },
                }
              : {}),
            raw: JSON.stringify({ type: 'response_item', payload: { text: words } }),
          })
        }
      }
      return { sessions: sessionsOut, events: eventsOut }
    }
    // HTTP: one session record per batch with its events (what the CLI uploader sends).
    const bodiesOf = (rows: ReturnType<typeof makeRows>) => {
      const out: string[] = []
      for (let i = 0; i < rows.events.length; i += BATCH) {
        const events = rows.events.slice(i, i + BATCH)
        const keys = new Set(events.map((e) => e.session_key))
        out.push(
          JSON.stringify({
            sessions: rows.sessions.filter((s) => keys.has(s.session_key)),
            events,
          }),
        )
      }
      return out
    }
    const send = async (body: string) => {
      const res = await call(
        'POST',
        '/api/v1/sessions/batch',
        { ...write, 'content-type': 'application/json' },
        body,
      )
      const ack = JSON.parse(res.body) as { accepted: number; rejected: unknown[] }
      if (res.status !== 200 || ack.rejected.length)
        throw new Error(`batch answered ${res.status}: ${res.body.slice(0, 300)}`)
    }
    // Warm the server's JIT and connection pool on other rows first.
    const warm = bodiesOf(makeRows(`warm-${randomUUID()}`)).slice(0, 8)
    await runPool(warm.length, CONCURRENCY, (i) => send(warm[i]))
    const bodies = bodiesOf(makeRows(`http-${randomUUID()}`))
    t0 = performance.now()
    await runPool(bodies.length, CONCURRENCY, (i) => send(bodies[i]))
    const httpRate = INGEST_EVENTS / ((performance.now() - t0) / 1000)

    // COPY: the same rows (other keys, same sizes) into the same table with its indexes.
    const copy = makeRows(`copy-${randomUUID()}`)
    const { rows: made } = await sql.query<{ id: string; session_key: string }>(
      `INSERT INTO sessions (owner_kind, owner_id, session_key, agent, source_session_id, sort_at)
       SELECT 'service_account', $1, k, 'codex', k, now() FROM unnest($2::text[]) AS k RETURNING id::text, session_key`,
      [sa.id, copy.sessions.map((s) => s.session_key)],
    )
    const sid = new Map(made.map((r) => [r.session_key, r.id]))
    const csv = (v: string | number | null | undefined) =>
      v == null ? '' : `"${String(v).replaceAll('"', '""')}"`
    const lines = copy.events.map((e) => {
      const u = e.usage as { input_tokens: number; output_tokens: number } | undefined
      return [
        sid.get(e.session_key as string),
        'service_account',
        sa.id,
        e.event_key,
        e.thread,
        e.seq,
        e.ts,
        e.kind,
        e.text,
        u?.input_tokens,
        u?.output_tokens,
        u ? 0 : null,
        u ? 0 : null,
        u ? 0 : null,
        e.raw,
      ]
        .map((v) => csv(v as string | number | null | undefined))
        .join(',')
    })
    const path = join(tmpdir(), `hivemind-copy-${randomUUID()}.csv`)
    await writeFile(path, lines.join('\n') + '\n')
    await chmod(path, 0o644)
    try {
      t0 = performance.now()
      // Server-side COPY (the bench's PostgreSQL is local and we connect as its superuser).
      await sql.query(
        `COPY events (session_id, owner_kind, owner_id, event_key, thread, seq, ts, kind, text,
           input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, raw)
         FROM '${path}' WITH (FORMAT csv)`,
      )
    } finally {
      await rm(path, { force: true })
    }
    const copyRate = INGEST_EVENTS / ((performance.now() - t0) / 1000)
    const ratio = httpRate / copyRate
    console.log(
      `ingest of ${INGEST_EVENTS} events into a table of ${count} (batches of ${BATCH}, concurrency ${CONCURRENCY})\n` +
        `  PostgreSQL COPY (baseline):       ${f(copyRate)} events/s\n` +
        `  HTTP POST /api/v1/sessions/batch: ${f(httpRate)} events/s\n` +
        `  ratio ${(ratio * 100).toFixed(0)} % of COPY (goal ≥ 30 %) ${ratio >= 0.3 ? 'OK' : 'BELOW GOAL'}`,
    )
  } finally {
    client.close()
    await sql.close()
    await stopBenchServer(child)
    if (process.env.BENCH_KEEP_DB === '1') console.log(`  kept the database: ${db.url}`)
    else await db.drop()
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
