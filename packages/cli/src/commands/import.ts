import { stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { CAC } from 'cac'
import type { AgentId } from '@hivemind/sdk/schemas'
import { ENV } from '@hivemind/sdk/schemas'
import { ADAPTERS, resolveAgent } from '../adapters/index.js'
import { connect, describeUploadError, isTooLarge, maskLines } from '../client.js'
import { resolveStateDir } from '../daemon/state-dir.js'
import { EXIT, ExitError, UsageError } from '../errors.js'
import { claudeRetentionWarning } from '../internal/claude-retention.js'
import { gitRepoRoot, isInside } from '../internal/git.js'
import { formatBytes, Progress } from '../internal/progress.js'
import { parseSince } from '../internal/since.js'
import type { CliIo } from '../io.js'
import { CHECKPOINT_DB, CheckpointStore } from '../tail/checkpoint-store.js'
import { discoverSessionFiles, statCandidate, type Candidate } from '../tail/discovery.js'
import { followMove, planFile, toPending } from '../tail/plan.js'
import { Uploader, type PendingFile } from '../tail/uploader.js'

/**
 * Flags of `hivemind import`, as cac hands them over (before validation); `main` has
 * made switches booleans and values strings. `--path` is `[true]` when its value is missing.
 */
export interface ImportFlags {
  all?: boolean
  since?: string
  agents?: string
  path?: string | readonly (string | boolean)[]
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
  /** Whom the server authenticated (absent with --dry-run or when nothing was found). */
  principal?: { kind: 'user' | 'service_account'; id: string; name: string }
  found: { files: number; sessions: number }
  agents: Partial<Record<AgentId, AgentSummary>>
  upload: {
    batches: number
    events: number
    accepted: number
    duplicates: number
    rejected: number
  }
  /** `dirs`: directories (or linked entries) that exist but could not be read. */
  failed: { files: number; sessions: number; dirs: number }
  skipped: { olderThanSince: number; outsideRepo: number; incomplete: number }
  /** Things worth knowing that did not fail the run (Claude Code's transcript retention). */
  warnings: string[]
  error?: string
}

export function registerImport(cli: CAC, io: CliIo): void {
  cli
    .command('import', 'Upload existing agent sessions (idempotent; for CI and first runs)')
    .option('--all', 'All known agent dirs (default: sessions whose cwd is in this git repo)')
    .option('--since <when>', 'Only files modified since: 2h, 1d, 1w or 2026-01-15')
    .option(
      '--agents <list>',
      'Comma list of agents: claude-code (claude), codex, gemini-cli (gemini), copilot, cursor, opencode, aider',
    )
    // `type: []`: repeatable, always an array (no transform: a missing value stays `true`).
    .option('--path <dir>', 'Search this directory instead of the agents’ homes (repeatable)', {
      type: [],
    })
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
  const paths = [
    ...new Set(
      rawPaths.map((p) => {
        if (typeof p !== 'string' || p === '') throw new UsageError('--path needs a directory')
        return resolve(io.cwd, p)
      }),
    ),
  ]
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
    stateDir: resolveStateDir(flags.stateDir, io.env, io.cwd),
  }
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
    failed: { files: 0, sessions: 0, dirs: 0 },
    skipped: { olderThanSince: 0, outsideRepo: 0, incomplete: 0 },
    warnings: [],
  }
  const progress = new Progress(io.stderr, !opts.json)
  const log = (line: string) => progress.log(`hivemind import: ${line}`)

  // Discovery: every selected agent under its roots (or --path), one adapter per file.
  const roots = new Map<AgentId, string[]>()
  for (const agent of opts.agents) {
    roots.set(agent, opts.paths.length > 0 ? opts.paths : ADAPTERS[agent].defaultRoots(io.env))
  }
  // A directory that cannot be listed hides its sessions: named now, fails the run at the end.
  const unreadableDirs: string[] = []
  const files = await discoverSessionFiles(
    [...roots].map(([agent, r]) => ({ agent, roots: r })),
    {
      onUnreadable: (path, error) => {
        unreadableDirs.push(path)
        log(`${path}: could not be read: ${error.message}`)
      },
    },
  )
  const candidates: Candidate[] = []
  for (const file of files) {
    const c = statCandidate(file)
    if (!c) continue
    if (opts.sinceMs !== undefined && c.mtimeMs < opts.sinceMs) {
      summary.skipped.olderThanSince++
      continue
    }
    candidates.push(c)
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
      const conn = await connect({ endpoint: opts.endpoint, env: io.env }).catch((err: unknown) => {
        if (opts.json && err instanceof ExitError) {
          summary.ok = false
          summary.error = err.message
          io.stdout.write(`${JSON.stringify(summary)}\n`)
        }
        throw err
      })
      // With --json, stdout is the summary alone; the runner reads commands on stderr too.
      ;(opts.json ? io.stderr : io.stdout).write(maskLines(io.env, conn.secrets))
      endpoint = conn.endpoint
      summary.endpoint = endpoint
      summary.principal = { kind: conn.me.kind, id: conn.me.id, name: conn.me.name }
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
    // Candidates the uploader never got because a batch had failed by then.
    let notReached = 0
    let stoppedAt: string | undefined

    for (const [i, c] of candidates.entries()) {
      if (uploader?.failure !== undefined) {
        notReached = candidates.length - i
        break
      }
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
      const plan = await planFile(c, store)
      if (plan.kind === 'incomplete') {
        summary.skipped.incomplete++
        continue
      }
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
      if (plan.kind === 'unchanged') {
        if (repoRoot !== undefined && !isInside(plan.checkpoint.cwd, repoRoot)) {
          summary.skipped.outsideRepo++
          continue
        }
        countFound(plan.checkpoint.sessionKeys)
        tally.unchanged++
        if (store && !opts.dryRun) followMove(store, c, plan)
        continue
      }
      if (plan.kind === 'unreadable') {
        // One unreadable file never stops the others; it fails the run at the end.
        unreadable.push(file.path)
        log(`${file.path}: could not be read: ${plan.error.message}`)
        continue
      }
      const { result } = plan
      if (repoRoot !== undefined && !isInside(plan.cwd, repoRoot)) {
        summary.skipped.outsideRepo++
        continue
      }
      countFound(plan.sessionKeys)
      tally.events += result.events.length
      tally.bytes += Math.max(0, c.size - plan.fromOffset)
      tally.parseErrors += result.errors.length
      for (const e of result.errors.slice(0, 3)) {
        log(`${e.path}${e.line !== undefined ? `:${e.line + 1}` : ''}: ${e.message}`)
      }
      if (!uploader) continue
      // A batch may have failed while this file was read: `add` would drop it unseen.
      if (uploader.failure !== undefined) {
        notReached = candidates.length - i
        stoppedAt = file.path
        break
      }
      await uploader.add(toPending(c, plan))
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
      const failedSessions = new Set(
        [...attempted, ...(stoppedAt === undefined ? [] : [stoppedAt])].flatMap(
          (path) => fileSessions.get(path) ?? [],
        ),
      )
      summary.ok = false
      summary.failed = {
        files: attempted.size + notReached,
        sessions: failedSessions.size,
        dirs: unreadableDirs.length,
      }
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

    if ((summary.agents['claude-code']?.files ?? 0) > 0 && opts.paths.length === 0) {
      const warning = await claudeRetentionWarning(
        ADAPTERS['claude-code'].defaultRoots(io.env),
        opts.sinceMs,
        io.now(),
      )
      if (warning) {
        summary.warnings.push(warning)
        if (!opts.json) log(`note: ${warning}`)
      }
    }

    // The CI step is the assertion: records the server refused, or files and directories
    // that could not be read, fail the run (after the summary), the rest being uploaded.
    const problems: string[] = []
    if (summary.upload.rejected > 0) {
      problems.push(`${summary.upload.rejected} record(s) rejected by the server (listed above)`)
    }
    if (unreadable.length > 0) {
      problems.push(`${unreadable.length} session file(s) could not be read (listed above)`)
      summary.failed.files += unreadable.length
    }
    if (unreadableDirs.length > 0) {
      const dirs = unreadableDirs.length === 1 ? 'directory' : 'directories'
      problems.push(`${unreadableDirs.length} ${dirs} could not be read (listed above)`)
      summary.failed.dirs = unreadableDirs.length
    }

    // Nothing found is exit 3 only when nothing was missed: unreadable sessions are exit 1.
    if (summary.found.files === 0 && !opts.allowEmpty && problems.length === 0) {
      summary.ok = false
      summary.error = 'no session files found'
      if (opts.json) io.stdout.write(`${JSON.stringify(summary)}\n`)
      throw new ExitError(EXIT.nothingFound, nothingFoundMessage(opts, summary, roots, repoRoot), {
        hint: 'Pass --allow-empty if finding nothing is fine here.',
      })
    }

    if (problems.length > 0) {
      summary.ok = false
      summary.error = `import incomplete: ${problems.join('; ')}`
    }
    if (opts.json) {
      io.stdout.write(`${JSON.stringify(summary)}\n`)
    } else {
      for (const line of humanLines(summary, opts)) io.stdout.write(`${line}\n`)
    }
    if (summary.error !== undefined) {
      throw new ExitError(EXIT.failed, summary.error, {
        hint: problemsHint(opts, summary, store?.path ?? join(opts.stateDir, CHECKPOINT_DB)),
      })
    }
    return EXIT.ok
  } finally {
    progress.done()
    store?.close()
  }
}

/** What happens to what the run could not upload, and what to do about it. */
function problemsHint(opts: ImportOptions, summary: ImportSummary, storePath: string): string {
  const parts = [opts.dryRun ? 'Dry run: nothing was uploaded.' : 'Everything else was uploaded.']
  if (summary.upload.rejected > 0) {
    // DESIGN.md "Batch upload": the checkpoint moves past a rejected item.
    parts.push(
      `Rejected records are not sent again (the checkpoint moved past them; the lines stay on disk): they are listed above and in the rejected table of ${storePath}.`,
    )
  }
  if (summary.failed.files > 0 || summary.failed.dirs > 0) {
    parts.push('Unreadable files and directories are tried again by the next run.')
  }
  return parts.join(' ')
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
  if (summary.skipped.incomplete > 0) {
    parts.push(
      `${summary.skipped.incomplete} skipped as not written yet (empty, or no complete first line)`,
    )
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
        ? `hivemind import: no session files found; nothing to upload${opts.allowEmpty ? ' (--allow-empty)' : ''}`
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
