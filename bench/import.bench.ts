// `hivemind import` throughput, end to end: MB/s of session files read by the real CLI
// process and stored by a real server process (PGlite, or PostgreSQL when
// HIVEMIND_TEST_DATABASE_URL is set, as under `pnpm bench`), against a baseline in the
// same run that only reads the same files, splits lines and JSON.parses them in Node.
// Goal: import ≥ 25 % of the baseline.
import { readFile, rm } from 'node:fs/promises'
import { generateSessions } from '../packages/cli/test/generate.ts'
import { createToken, runCli, startServer, tempHome } from '../packages/cli/test/processes.ts'

const SESSIONS = 24 // per agent
const TURNS = 40
const BASELINE_ROUNDS = 7

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]
}

async function parseOnly(files: readonly string[]): Promise<number> {
  let records = 0
  for (const f of files) {
    const text = await readFile(f, 'utf8')
    for (const line of text.split('\n')) {
      if (line === '') continue
      JSON.parse(line)
      records++
    }
  }
  return records
}

export default async function importBench(): Promise<void> {
  const home = await tempHome({ fixtures: false })
  const { files, bytes } = await generateSessions({
    claudeDir: home.claudeDir,
    codexDir: home.codexDir,
    sessions: SESSIONS,
    turns: TURNS,
    cwd: '/srv/bench',
    seed: `bench-${Date.now()}`,
  })
  const mb = bytes / 1024 / 1024

  // Baseline: warm once, then the median of several rounds.
  await parseOnly(files)
  const baselineRuns: number[] = []
  for (let i = 0; i < BASELINE_ROUNDS; i++) {
    const t = performance.now()
    await parseOnly(files)
    baselineRuns.push(mb / ((performance.now() - t) / 1000))
  }
  const baseline = median(baselineRuns)

  const dbUrl = process.env.HIVEMIND_TEST_DATABASE_URL
  const storage = dbUrl ? 'PostgreSQL' : 'PGlite'
  const server = await startServer(undefined, dbUrl ? { DATABASE_URL: dbUrl } : {})
  try {
    const { token } = await createToken(server.url, ['write'])
    const env = { ...home.env, HIVEMIND_ENDPOINT: server.url, HIVEMIND_TOKEN: token }

    // The CLI side alone (spawn + discover + parse + normalise), for where the time goes.
    let t = performance.now()
    const dry = await runCli(['import', '--all', '--dry-run'], env, home.cwd)
    const dryS = (performance.now() - t) / 1000
    if (dry.code !== 0) throw new Error(`dry run failed: ${dry.stderr}`)

    t = performance.now()
    const run = await runCli(['import', '--all', '--json'], env, home.cwd)
    const importS = (performance.now() - t) / 1000
    if (run.code !== 0) throw new Error(`import failed: ${run.stderr}`)
    const summary = JSON.parse(run.stdout) as { upload: { events: number; batches: number } }
    const throughput = mb / importS
    const ratio = throughput / baseline

    const fmt = (n: number) => `${n.toFixed(1)} MB/s`
    console.log(
      `data                        ${files.length} files, ${mb.toFixed(1)} MB, ${summary.upload.events} events`,
    )
    console.log(`baseline read+split+parse   ${fmt(baseline)}  (median of ${BASELINE_ROUNDS})`)
    console.log(
      `CLI alone (--dry-run)       ${fmt(mb / dryS)}  (${dryS.toFixed(2)} s incl. process start)`,
    )
    console.log(
      `hivemind import → server    ${fmt(throughput)}  (${importS.toFixed(2)} s, ${summary.upload.batches} batches, ${storage}, ${(summary.upload.events / importS).toFixed(0)} events/s)`,
    )
    console.log(
      `ratio import / baseline     ${(ratio * 100).toFixed(1)} %  (goal ≥ 25 %) ${ratio >= 0.25 ? 'OK' : 'UNDER GOAL'}`,
    )
  } finally {
    await server.kill()
    await rm(home.root, { recursive: true, force: true })
  }
}
