// `hivemind import` throughput, end to end: MB/s of session files read by the real CLI
// process and stored by a real server process (PGlite, or PostgreSQL when
// HIVEMIND_TEST_DATABASE_URL is set, as under `pnpm bench`), against a baseline in the
// same run that only reads the same files, splits lines and JSON.parses them in Node.
// Goal: import ≥ 25 % of the baseline.
//
// The corpus is built from the real agent files in ../shared/sessions/ (Claude Code and
// Codex, lines of a few KB as agents really write them), copied REPLICAS times into a temp
// home with fresh session ids; without that directory it falls back to files generated in
// the shape of the project fixtures, with tool outputs sized like real ones.
// HIVEMIND_BENCH_PROF_DIR=<dir> writes --cpu-prof profiles of the CLI and server there.
import { existsSync } from 'node:fs'
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateSessions } from '../packages/cli/test/generate.ts'
import { ROOT, createToken, startServer, tempHome } from '../packages/cli/test/processes.ts'
import { availableParallelism } from 'node:os'
import {
  CLI_BIN,
  cpuBetween,
  cpuSnapshot,
  ensureBuiltCli,
  machineBusyMs,
  postgresPids,
  runBuiltCli,
} from './lib/daemon-process.ts'

const SESSIONS = 24 // per agent, generated corpus
const TURNS = 40
const REPLICAS = 10 // copies of the real corpus (~28 MB)
const BASELINE_ROUNDS = 7
const IMPORT_ROUNDS = 3
const SHARED = join(ROOT, '..', 'shared', 'sessions')

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/

async function jsonlFiles(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory() && e.name !== 'subagents') out.push(...(await jsonlFiles(p)))
    else if (e.isFile() && e.name.endsWith('.jsonl') && !/^(history|session_index)/.test(e.name))
      out.push(p)
  }
  return out.sort()
}

/** Copies the real Claude Code and Codex session files `replicas` times with new ids. */
async function realCorpus(
  claudeDir: string,
  codexDir: string,
  replicas: number,
): Promise<{ files: string[]; bytes: number }> {
  const files: string[] = []
  let bytes = 0
  const project = join(claudeDir, 'projects', '-srv-bench')
  const day = join(codexDir, 'sessions', '2026', '01', '02')
  await mkdir(project, { recursive: true })
  await mkdir(day, { recursive: true })
  const sources = [
    ...(await jsonlFiles(join(SHARED, 'claude-code'))).map((f) => ({ f, agent: 'claude' })),
    ...(await jsonlFiles(join(SHARED, 'codex'))).map((f) => ({ f, agent: 'codex' })),
  ]
  const stamp = Date.now().toString(16).slice(-6)
  for (let r = 0; r < replicas; r++) {
    for (const [i, { f, agent }] of sources.entries()) {
      const text = await readFile(f, 'utf8')
      const first = text.slice(0, text.indexOf('\n') + 1 || undefined)
      const id =
        agent === 'claude'
          ? /"sessionId":"([^"]+)"/.exec(text)?.[1]
          : (UUID.exec(/"id":"([^"]+)"/.exec(first)?.[1] ?? '')?.[0] ?? UUID.exec(f)?.[0])
      if (!id || !UUID.test(id)) continue
      const fresh = `${stamp}${r.toString(16).padStart(2, '0')}${id.slice(8, -4)}${i.toString(16).padStart(4, '0')}`
      const out = text.replaceAll(id, fresh)
      const path =
        agent === 'claude'
          ? join(project, `${fresh}.jsonl`)
          : join(day, `rollout-2026-01-02T10-00-00-${fresh}.jsonl`)
      await writeFile(path, out)
      files.push(path)
      bytes += Buffer.byteLength(out)
    }
  }
  return { files, bytes }
}

interface Round {
  s: number
  summary: { upload: { events: number; batches: number } }
  serverCpu: number
  pgCpu: number
  restCpu: number
}

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
  // The built CLI, as users run it (from source, tsx's compile would count as import time).
  ensureBuiltCli()
  const home = await tempHome({ fixtures: false })
  const empty = await tempHome({ fixtures: false })
  const real = existsSync(join(SHARED, 'claude-code')) && existsSync(join(SHARED, 'codex'))
  const { files, bytes } = real
    ? await realCorpus(home.claudeDir, home.codexDir, REPLICAS)
    : await generateSessions({
        claudeDir: home.claudeDir,
        codexDir: home.codexDir,
        sessions: SESSIONS,
        turns: TURNS,
        cwd: '/srv/bench',
        toolOutputChars: 6000,
        seed: `bench-${Date.now()}`,
      })
  const corpus = real
    ? `real files from ../shared/sessions ×${REPLICAS}`
    : 'generated (fixture shapes, 6 KB tool outputs)'
  const profDir = process.env.HIVEMIND_BENCH_PROF_DIR
  const prof = (name: string): Record<string, string> =>
    profDir ? { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${join(profDir, name)}` } : {}
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
  const server = await startServer(undefined, {
    ...(dbUrl ? { DATABASE_URL: dbUrl } : {}),
    ...prof('server'),
  })
  try {
    const { token } = await createToken(server.url, ['write'])
    const env = { ...home.env, HIVEMIND_ENDPOINT: server.url, HIVEMIND_TOKEN: token }

    // Fixed cost: process start, credential check and discovery, with nothing to upload.
    const none = await runBuiltCli(
      ['import', '--all', '--allow-empty'],
      { ...empty.env, HIVEMIND_ENDPOINT: server.url, HIVEMIND_TOKEN: token },
      empty.cwd,
    )
    if (none.code !== 0) throw new Error(`empty import failed: ${none.stderr}`)

    // The CLI side alone (spawn + discover + parse + normalise), for where the time goes.
    const dry = await runBuiltCli(['import', '--all', '--dry-run'], env, home.cwd)
    const dryS = dry.ms / 1000
    if (dry.code !== 0) throw new Error(`dry run failed: ${dry.stderr}`)

    // Each round uploads the corpus as a new owner with an empty checkpoint store, so every
    // round stores every event; the median round is reported. While a round runs, the CPU
    // used by the server, PostgreSQL and the rest (the CLI) shows where the time goes.
    const serverPids = [server.child.pid!]
    const rounds: Round[] = []
    for (let r = 0; r < IMPORT_ROUNDS; r++) {
      const owner = await createToken(server.url, ['write'])
      const before = { server: cpuSnapshot(serverPids), pg: cpuSnapshot(postgresPids()) }
      const busy0 = machineBusyMs()
      const run = await runBuiltCli(
        ['import', '--all', '--json'],
        {
          ...env,
          HIVEMIND_TOKEN: owner.token,
          HIVEMIND_STATE_DIR: join(home.root, `state-${r}`),
          ...(r === 0 ? prof('cli') : {}),
        },
        home.cwd,
      )
      if (run.code !== 0) throw new Error(`import failed: ${run.stderr}`)
      const summary = JSON.parse(run.stdout) as { upload: { events: number; batches: number } }
      const serverCpu = cpuBetween(before.server, cpuSnapshot(serverPids)) / 1000
      const pgCpu = cpuBetween(before.pg, cpuSnapshot(postgresPids())) / 1000
      const allCpu = (machineBusyMs() - busy0) / 1000
      rounds.push({
        s: run.ms / 1000,
        summary,
        serverCpu,
        pgCpu,
        restCpu: allCpu - serverCpu - pgCpu,
      })
    }
    const mid = [...rounds].sort((a, b) => a.s - b.s)[Math.floor(rounds.length / 2)]
    const { summary, serverCpu, pgCpu, restCpu } = mid
    const importS = mid.s
    const throughput = mb / importS
    const ratio = throughput / baseline

    const fmt = (n: number) => `${n.toFixed(1)} MB/s`
    console.log(
      `data                        ${files.length} files, ${mb.toFixed(1)} MB, ${summary.upload.events} events (${corpus}, ${(bytes / Math.max(1, summary.upload.events)) | 0} B/event)`,
    )
    console.log(`CLI                         ${CLI_BIN} (built) on Node ${process.version}`)
    console.log(`baseline read+split+parse   ${fmt(baseline)}  (median of ${BASELINE_ROUNDS})`)
    console.log(
      `fixed cost (empty import)   ${(none.ms / 1000).toFixed(2)} s  (process start, credential check, discovery; included below)`,
    )
    console.log(
      `CLI alone (--dry-run)       ${fmt(mb / dryS)}  (${dryS.toFixed(2)} s incl. process start)`,
    )
    console.log(
      `hivemind import → server    ${fmt(throughput)}  (median of ${rounds.map((r) => r.s.toFixed(2)).join(', ')} s; ${summary.upload.batches} batches, ${storage}, ${(summary.upload.events / importS).toFixed(0)} events/s)`,
    )
    console.log(
      `CPU during the import        server ${serverCpu.toFixed(2)} s, ${storage} ${pgCpu.toFixed(2)} s, CLI and the rest ${Math.max(0, restCpu).toFixed(2)} s (of ${(importS * availableParallelism()).toFixed(2)} s on ${availableParallelism()} cores)`,
    )
    console.log(
      `ratio import / baseline     ${(ratio * 100).toFixed(1)} %  (goal ≥ 25 %) ${ratio >= 0.25 ? 'OK' : 'UNDER GOAL'}`,
    )
  } finally {
    await server.kill()
    await rm(home.root, { recursive: true, force: true })
    await rm(empty.root, { recursive: true, force: true })
  }
}
