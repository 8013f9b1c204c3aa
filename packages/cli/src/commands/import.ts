import { stat } from 'node:fs/promises'
import { homedir } from 'node:os'
import { basename, join, resolve } from 'node:path'
import type { CAC } from 'cac'
import type { AgentId } from '@hivemind/sdk/schemas'
import { ENV, DEFAULTS } from '@hivemind/sdk/schemas'
import { ADAPTERS, resolveAgent } from '../adapters/index.js'
import { fileFingerprint } from '../adapters/jsonl.js'
import type { SessionFile } from '../adapters/types.js'
import { connect, describeUploadError, isTooLarge } from '../client.js'
import { EXIT, ExitError, UsageError } from '../errors.js'
import { gitRepoRoot, isInside } from '../internal/git.js'
import { formatBytes, Progress } from '../internal/progress.js'
import { parseSince } from '../internal/since.js'
import type { CliIo } from '../io.js'
import { CheckpointStore, type FileIdentity, type Match } from '../tail/checkpoint-store.js'
import { Uploader, type PendingFile } from '../tail/uploader.js'

/** Flags of `hivemind import`, as cac hands them over (before validation). */
export interface ImportFlags {
  all?: boolean
  since?: string | number
  agents?: string | number
  path?: string | string[]
  dryRun?: boolean
  allowEmpty?: boolean
  json?: boolean
  endpoint?: string
  stateDir?: string
}

/** Validated options of one import run. */
export interface ImportOptions {
  all: boolean
  sinceMs: number | undefined
  agents: AgentId[]
  paths: string[]
  dryRun: boolean
  allowEmpty: boolean
  json: boolean
  endpoint: string | undefined
  stateDir: string
}

/** Per-agent tally, printed as one line each and in the `--json` summary. */
export interface AgentSummary {
  files: number
  sessions: number
  /** Files whose every record was already acknowledged (nothing to read). */
  unchanged: number
  /** Events read from new or grown files (sent, or would be sent with --dry-run). */
  events: number
  bytes: number
  parseErrors: number
}

/** The `--json` summary. */
export interface ImportSummary {
  ok: boolean
  dryRun: boolean
  endpoint: string | null
  found: { files: number; sessions: number }
  agents: Partial<Record<AgentId, AgentSummary>>
  upload: {
    batches: number
    events: number
    accepted: number
    duplicates: number
    rejected: number
  }
  failed: { files: number; sessions: number }
  skipped: { olderThanSince: number; outsideRepo: number; incomplete: number }
  error?: string
}

/** Order in which overlapping `--path` matches are claimed: specific layouts first. */
const CLAIM_ORDER: readonly AgentId[] = [
  'copilot',
  'cursor',
  'gemini-cli',
  'opencode',
  'aider',
  'claude-code',
  'codex',
]

export function registerImport(cli: CAC, io: CliIo): void {
  cli
    .command('import', 'Upload existing agent sessions (idempotent; for CI and first runs)')
    .option('--all', 'All known agent dirs (default: sessions whose cwd is in this git repo)')
    .option('--since <when>', 'Only files modified since: 2h, 1d, 1w or 2026-01-15')
    .option(
      '--agents <list>',
      'Comma list of agents: claude-code (claude), codex, gemini-cli (gemini), copilot, cursor, opencode, aider',
    )
    .option('--path <dir>', 'Search this directory instead of the agents’ homes (repeatable)')
    .option('--dry-run', 'Show per agent what would be uploaded; upload nothing')
    .option('--allow-empty', 'Exit 0 when no session files are found')
    .option('--json', 'Print the summary as JSON on stdout')
    .option('--endpoint <url>', `Server URL (default $${ENV.endpoint})`)
    .option('--state-dir <dir>', `Checkpoint dir (default $${ENV.stateDir} or ~/.hivemind)`)
    .example('hivemind import --all --since 1d')
    .action(async (flags: ImportFlags) => {
      io.exitCode = await runImport(resolveImportOptions(flags, io), io)
    })
}

/** Validates flags: every problem is a {@link UsageError} naming the flag. */
export function resolveImportOptions(flags: ImportFlags, io: CliIo): ImportOptions {
  const agents: AgentId[] = []
  if (flags.agents !== undefined) {
    const names = String(flags.agents)
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
    if (names.length === 0) throw new UsageError('--agents needs at least one agent name')
    for (const name of names) {
      const id = resolveAgent(name)
      if (!id) {
        throw new UsageError(
          `unknown agent "${name}" in --agents (known: ${Object.keys(ADAPTERS).join(', ')}; aliases claude, gemini)`,
        )
      }
      if (!agents.includes(id)) agents.push(id)
    }
  }
  const rawPaths = flags.path === undefined ? [] : [flags.path].flat()
  const paths = rawPaths.map((p) => {
    if (typeof p !== 'string' || p === '') throw new UsageError('--path needs a directory')
    return resolve(io.cwd, p)
  })
  const endpoint = flags.endpoint ?? io.env[ENV.endpoint]
  return {
    all: flags.all === true,
    sinceMs: flags.since === undefined ? undefined : parseSince(String(flags.since), io.now()),
    agents: agents.length > 0 ? agents : (Object.keys(ADAPTERS) as AgentId[]),
    paths,
    dryRun: flags.dryRun === true,
    allowEmpty: flags.allowEmpty === true,
    json: flags.json === true,
    endpoint: endpoint === undefined || endpoint.trim() === '' ? undefined : endpoint,
    stateDir: resolve(
      io.cwd,
      flags.stateDir ?? io.env[ENV.stateDir] ?? join(io.env.HOME ?? homedir(), DEFAULTS.stateDir),
    ),
  }
}

interface Candidate {
  file: SessionFile
  size: number
  mtimeMs: number
  dev: string
  ino: string
}

/** Runs one import; returns the exit code. Expected failures throw {@link ExitError}. */
export async function runImport(opts: ImportOptions, io: CliIo): Promise<number> {
  for (const p of opts.paths) {
    const s = await stat(p).catch(() => undefined)
    if (!s?.isDirectory()) throw new UsageError(`--path ${p} is not a directory`)
  }
  const repoRoot = opts.all ? undefined : await gitRepoRoot(io.cwd)
  if (!opts.all && repoRoot === undefined) {
    throw new UsageError(
      'not inside a git repository: run `hivemind import` in one, or pass --all to import every session',
    )
  }

  const summary: ImportSummary = {
    ok: true,
    dryRun: opts.dryRun,
    endpoint: null,
    found: { files: 0, sessions: 0 },
    agents: {},
    upload: { batches: 0, events: 0, accepted: 0, duplicates: 0, rejected: 0 },
    failed: { files: 0, sessions: 0 },
    skipped: { olderThanSince: 0, outsideRepo: 0, incomplete: 0 },
  }
  const progress = new Progress(io.stderr, !opts.json)
  const log = (line: string) => progress.log(`hivemind import: ${line}`)

  // Discovery: every selected agent under its roots (or --path), one adapter per file.
  const roots = new Map<AgentId, string[]>()
  const claimed = new Map<string, SessionFile>()
  for (const agent of opts.agents) {
    const adapter = ADAPTERS[agent]
    const agentRoots = opts.paths.length > 0 ? opts.paths : adapter.defaultRoots(io.env)
    roots.set(agent, agentRoots)
    for (const file of await adapter.discover(agentRoots)) {
      const prev = claimed.get(file.path)
      if (!prev || claimsBefore(file, prev)) claimed.set(file.path, file)
    }
  }
  const candidates: Candidate[] = []
  for (const file of claimed.values()) {
    const s = await stat(file.path, { bigint: true }).catch(() => undefined)
    if (!s) continue // deleted since discovery (Claude's cleanup, Codex compression)
    const mtimeMs = Number(s.mtimeMs)
    if (opts.sinceMs !== undefined && mtimeMs < opts.sinceMs) {
      summary.skipped.olderThanSince++
      continue
    }
    candidates.push({
      file,
      size: Number(s.size),
      mtimeMs,
      dev: s.dev.toString(),
      ino: s.ino.toString(),
    })
  }

  const store = opts.dryRun
    ? CheckpointStore.openReadOnly(opts.stateDir)
    : candidates.length > 0
      ? CheckpointStore.open(opts.stateDir)
      : undefined
  let uploader: Uploader | undefined
  let endpoint: string | undefined
  try {
    if (!opts.dryRun && candidates.length > 0) {
      const conn = await connect({ endpoint: opts.endpoint, env: io.env })
      endpoint = conn.endpoint
      summary.endpoint = endpoint
      uploader = new Uploader({
        send: conn.send,
        store,
        isTooLarge,
        onRejected: (r) =>
          log(
            `rejected by the server: ${r.path}${r.eventKey ? ` (event ${r.eventKey.slice(0, 12)}…)` : ''}: ${r.error}`,
          ),
        onAck: () => update(),
      })
    }

    const bytesTotal = candidates.reduce((n, c) => n + c.size, 0)
    let bytesDone = 0
    let filesDone = 0
    const update = (force = false) =>
      progress.update(
        {
          filesDone,
          filesTotal: candidates.length,
          bytesDone,
          bytesTotal,
          eventsSent: uploader?.stats.eventsSent ?? 0,
        },
        force,
      )
    const sessionsSeen = new Set<string>()
    const unreadable: string[] = []
    const fileSessions = new Map<string, string[]>()

    for (const c of candidates) {
      if (uploader?.failure !== undefined) break
      filesDone++
      bytesDone += c.size
      update()
      const { file } = c
      const tally = (summary.agents[file.agent] ??= {
        files: 0,
        sessions: 0,
        unchanged: 0,
        events: 0,
        bytes: 0,
        parseErrors: 0,
      })
      const fileFp = await fileFingerprint(file.path).catch(() => null)
      if (fileFp == null) {
        // First line not complete yet (or unreadable): not a session file yet.
        summary.skipped.incomplete++
        continue
      }
      const identity: FileIdentity = {
        dev: c.dev,
        ino: c.ino,
        fileFp,
        path: file.path,
        agent: file.agent,
      }
      const match: Match = store?.resolve(identity) ?? { kind: 'new' }
      const cp = match.kind === 'new' ? undefined : match.checkpoint
      const countFound = (keys: readonly string[]) => {
        tally.files++
        summary.found.files++
        for (const k of keys) {
          if (!sessionsSeen.has(k)) {
            sessionsSeen.add(k)
            tally.sessions++
          }
        }
        fileSessions.set(file.path, [...keys])
      }

      if (
        cp &&
        match.kind !== 'rewritten' &&
        cp.synced &&
        cp.size === c.size &&
        cp.mtimeMs === c.mtimeMs
      ) {
        if (repoRoot !== undefined && !isInside(cp.cwd, repoRoot)) {
          summary.skipped.outsideRepo++
          continue
        }
        countFound(cp.sessionKeys)
        tally.unchanged++
        // Moved (a rename keeps the inode; a copy across filesystems keeps the first line).
        if ((match.kind === 'moved' || cp.path !== file.path) && store && !opts.dryRun) {
          store.commit(identity, {
            committedOffset: cp.committedOffset,
            synced: true,
            size: c.size,
            mtimeMs: c.mtimeMs,
            sessionKeys: cp.sessionKeys,
            cwd: cp.cwd,
            ...(match.kind === 'moved' ? { replaces: cp.id } : {}),
          })
        }
        continue
      }

      let fromOffset = match.kind === 'rewritten' ? 0 : (cp?.committedOffset ?? 0)
      let reset = match.kind === 'rewritten'
      // Smaller than what was acknowledged: truncated and rewritten in place.
      if (!file.path.endsWith('.zst') && c.size < fromOffset) {
        fromOffset = 0
        reset = true
      }
      let result: Awaited<ReturnType<(typeof ADAPTERS)[typeof file.agent]['parse']>>
      try {
        result = await ADAPTERS[file.agent].parse(file, { fromOffset })
      } catch (err) {
        // One unreadable file never stops the others; it fails the run at the end.
        unreadable.push(file.path)
        log(`${file.path}: could not be read: ${(err as Error).message}`)
        continue
      }
      const cwd = result.sessions.find((s) => s.cwd)?.cwd ?? cp?.cwd ?? null
      if (repoRoot !== undefined && !isInside(cwd, repoRoot)) {
        summary.skipped.outsideRepo++
        continue
      }
      const keys = [
        ...new Set([...(cp?.sessionKeys ?? []), ...result.sessions.map((s) => s.session_key)]),
      ]
      countFound(keys)
      tally.events += result.events.length
      tally.bytes += Math.max(0, c.size - fromOffset)
      tally.parseErrors += result.errors.length
      for (const e of result.errors.slice(0, 3)) {
        log(`${e.path}${e.line !== undefined ? `:${e.line + 1}` : ''}: ${e.message}`)
      }
      if (!uploader) continue
      const pending: PendingFile = {
        identity,
        // Nothing new past the checkpoint: the sessions were sent with the earlier records.
        sessions: result.events.length === 0 && fromOffset > 0 ? [] : result.sessions,
        events: result.events,
        fromOffset,
        nextOffset: result.nextOffset,
        size: c.size,
        mtimeMs: c.mtimeMs,
        cwd,
        reset,
        replaces: match.kind === 'moved' ? match.checkpoint.id : undefined,
      }
      await uploader.add(pending)
    }

    let failedFiles: PendingFile[] = []
    if (uploader) {
      failedFiles = await uploader.finish()
      Object.assign(summary.upload, {
        batches: uploader.stats.batches,
        events: uploader.stats.eventsSent,
        accepted: uploader.stats.accepted,
        duplicates: uploader.stats.duplicates,
        rejected: uploader.stats.rejected,
      })
    }
    update(true)
    progress.done()
    summary.found.sessions = sessionsSeen.size

    const failure = uploader?.failure
    if (failure !== undefined) {
      // Files never reached after the failure count as failed too.
      const attempted = new Set(failedFiles.map((f) => f.identity.path))
      const notReached = Math.max(0, candidates.length - filesDone)
      const failedSessions = new Set(
        failedFiles.flatMap((f) => fileSessions.get(f.identity.path) ?? []),
      )
      summary.ok = false
      summary.failed = { files: attempted.size + notReached, sessions: failedSessions.size }
      const { message, hint } = describeUploadError(failure, endpoint)
      summary.error = message
      if (opts.json) io.stdout.write(`${JSON.stringify(summary)}\n`)
      throw new ExitError(
        EXIT.failed,
        `upload failed (${summary.failed.files} of ${candidates.length} session files not uploaded): ${message}`,
        {
          hint: `${hint ? `${hint} ` : ''}Re-run the same command to resume: acknowledged records are not sent again.`,
        },
      )
    }

    if (summary.found.files === 0 && !opts.allowEmpty) {
      summary.ok = false
      summary.error = 'no session files found'
      if (opts.json) io.stdout.write(`${JSON.stringify(summary)}\n`)
      throw new ExitError(EXIT.nothingFound, nothingFoundMessage(opts, summary, roots, repoRoot), {
        hint: 'Pass --allow-empty if finding nothing is fine here.',
      })
    }

    // The CI step is the assertion: records the server refused, or files that could not
    // be read, fail the run (after the summary), though the checkpoint moved past them.
    const problems: string[] = []
    if (summary.upload.rejected > 0) {
      problems.push(`${summary.upload.rejected} record(s) rejected by the server (listed above)`)
    }
    if (unreadable.length > 0) {
      problems.push(`${unreadable.length} session file(s) could not be read (listed above)`)
      summary.failed.files += unreadable.length
    }
    if (problems.length > 0) summary.ok = false
    if (opts.json) {
      io.stdout.write(`${JSON.stringify(summary)}\n`)
    } else {
      for (const line of humanLines(summary, opts)) io.stdout.write(`${line}\n`)
    }
    if (problems.length > 0) {
      throw new ExitError(EXIT.failed, `import incomplete: ${problems.join('; ')}`, {
        hint: 'Everything else was uploaded; fix or remove those records and files, then re-run.',
      })
    }
    return EXIT.ok
  } finally {
    progress.done()
    store?.close()
  }
}

function claimsBefore(a: SessionFile, b: SessionFile): boolean {
  const name = basename(a.path)
  if (name.startsWith('rollout-')) return a.agent === 'codex'
  if (basename(b.path).startsWith('rollout-')) return false
  return CLAIM_ORDER.indexOf(a.agent) < CLAIM_ORDER.indexOf(b.agent)
}

function nothingFoundMessage(
  opts: ImportOptions,
  summary: ImportSummary,
  roots: Map<AgentId, string[]>,
  repoRoot: string | undefined,
): string {
  const where = opts.paths.length > 0 ? opts.paths : [...new Set([...roots.values()].flat())]
  const parts = [
    `no session files found (agents: ${opts.agents.join(', ')}; looked in ${where.join(', ')})`,
  ]
  if (summary.skipped.olderThanSince > 0) {
    parts.push(`${summary.skipped.olderThanSince} older than --since`)
  }
  if (repoRoot !== undefined) {
    parts.push(
      `${summary.skipped.outsideRepo} outside this repository (${repoRoot}); pass --all for every session`,
    )
  }
  return parts.join('; ')
}

function humanLines(s: ImportSummary, opts: ImportOptions): string[] {
  const lines: string[] = []
  for (const [agent, a] of Object.entries(s.agents)) {
    if (a.files === 0) continue
    const verb = opts.dryRun ? 'would upload' : 'read'
    lines.push(
      `  ${agent}: ${n(a.files, 'session file')}, ${n(a.sessions, 'session')}; ${verb} ${n(a.events, 'event')} (${formatBytes(a.bytes)})${a.unchanged > 0 ? `, ${n(a.unchanged, 'file')} unchanged` : ''}${a.parseErrors > 0 ? `, ${n(a.parseErrors, 'malformed line')}` : ''}`,
    )
  }
  const found = `found ${n(s.found.files, 'session file')} (${n(s.found.sessions, 'session')})`
  let head: string
  if (opts.dryRun) {
    const events = Object.values(s.agents).reduce((n, a) => n + a.events, 0)
    head = `hivemind import: dry run: ${found}; would upload ${n(events, 'event')}; nothing was sent`
  } else if (s.upload.events === 0 && s.upload.batches === 0) {
    head =
      s.found.files === 0
        ? 'hivemind import: no session files found; nothing to upload (--allow-empty)'
        : `hivemind import: ${found}; all already uploaded, nothing new to send`
  } else {
    const u = s.upload
    head = `hivemind import: ${found}; sent ${n(u.events, 'event')} in ${n(u.batches, 'batch')} to ${s.endpoint}: ${u.accepted} items stored, ${u.duplicates} already there, ${u.rejected} rejected`
  }
  // A real run says what it did in one line; a dry run lists what it would do per agent.
  return opts.dryRun ? [head, ...lines] : [head]
}

/** `1 session`, `2 sessions`, `3 batches`. */
function n(count: number, word: string): string {
  if (count === 1) return `1 ${word}`
  return `${count} ${word}${/(s|sh|ch|x)$/.test(word) ? 'es' : 's'}`
}
