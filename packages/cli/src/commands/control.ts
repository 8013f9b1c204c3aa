import { readFileSync } from 'node:fs'
import type { CAC } from 'cac'
import { ENV } from '@hivemind/sdk/schemas'
import { callDaemon } from '../daemon/control-client.js'
import { MAX_FLUSH_MS } from '../daemon/control-server.js'
import type { DrainResult } from '../daemon/daemon.js'
import { daemonPaths, isAlive, resolveStateDir, runningPid } from '../daemon/state-dir.js'
import { DaemonStatus } from '../daemon/status.js'
import { EXIT, ExitError, UsageError } from '../errors.js'
import { sleep } from '../adapters/files.js'
import type { CliIo } from '../io.js'

/** How long `hivemind stop` waits for the daemon's final catch-up. */
export const STOP_WAIT_MS = 10_000

interface StateFlags {
  stateDir?: string
}

export function registerControl(cli: CAC, io: CliIo): void {
  cli
    .command('stop', 'Stop the daemon after a final catch-up (waits up to 10 s)')
    .option('--state-dir <dir>', `State dir (default $${ENV.stateDir} or ~/.hivemind)`)
    .option('--json', 'Print {stopped, pid, drained, pending, uploaded} as JSON')
    .action(async (flags: StateFlags & { json?: boolean }) => {
      io.exitCode = await runStop(
        resolveStateDir(flags.stateDir, io.env, io.cwd),
        flags.json === true,
        io,
      )
    })
  cli
    .command('flush', 'Block until everything written so far is uploaded (default 60 s)')
    .option('--timeout <seconds>', 'Give up after this long', { default: 60 })
    .option('--state-dir <dir>', `State dir (default $${ENV.stateDir} or ~/.hivemind)`)
    .option('--json', 'Print the result as JSON')
    .action(async (flags: StateFlags & { timeout?: string | number; json?: boolean }) => {
      const seconds = Number(flags.timeout ?? 60)
      if (!Number.isFinite(seconds) || seconds < 0 || seconds * 1000 > MAX_FLUSH_MS) {
        throw new UsageError(`--timeout takes seconds between 0 and ${MAX_FLUSH_MS / 1000}`)
      }
      io.exitCode = await runFlush(
        resolveStateDir(flags.stateDir, io.env, io.cwd),
        seconds * 1000,
        flags.json === true,
        io,
      )
    })
  cli
    .command(
      'status',
      'What the daemon is doing: files, pending events, last upload and error, token',
    )
    .option('--state-dir <dir>', `State dir (default $${ENV.stateDir} or ~/.hivemind)`)
    .option('--json', 'Print {running, status} as JSON')
    .action(async (flags: StateFlags & { json?: boolean }) => {
      io.exitCode = await runStatus(
        resolveStateDir(flags.stateDir, io.env, io.cwd),
        flags.json === true,
        io,
      )
    })
}

/** SIGTERM, wait for the exit, then report what the final catch-up left behind. */
async function runStop(stateDir: string, json: boolean, io: CliIo): Promise<number> {
  const paths = daemonPaths(stateDir)
  const pid = runningPid(paths)
  if (pid === undefined) {
    if (json) io.stdout.write(`${JSON.stringify({ stopped: false, pid: null })}\n`)
    else io.stdout.write(`hivemind: no daemon running for state dir ${stateDir}; nothing to stop\n`)
    return EXIT.ok
  }
  process.kill(pid, 'SIGTERM')
  const deadline = Date.now() + STOP_WAIT_MS + 1000
  while (isAlive(pid) && Date.now() < deadline) await sleep(50)
  if (isAlive(pid)) {
    throw new ExitError(
      EXIT.failed,
      `the daemon (pid ${pid}) is still running ${STOP_WAIT_MS / 1000} s after SIGTERM: its final catch-up has not finished`,
      { hint: `It goes on in the background; see ${paths.logFile}. Unsent records stay on disk.` },
    )
  }
  const last = readSnapshot(paths.stateFile)
  if (json) {
    const mine = last?.pid === pid ? last : undefined
    io.stdout.write(
      `${JSON.stringify({ stopped: true, pid, drained: mine?.drained ?? null, pending: mine?.pending ?? null, uploaded: mine?.uploaded ?? null, last_error: mine?.last_error ?? null })}\n`,
    )
  }
  if (last?.pid === pid && last.drained === true) {
    if (json) return EXIT.ok
    io.stdout.write(
      `hivemind: daemon stopped (pid ${pid}); everything delivered (${last.uploaded.events} events uploaded since it started)\n`,
    )
    return EXIT.ok
  }
  if (last?.pid === pid && last.drained === false) {
    throw new ExitError(
      EXIT.failed,
      `daemon stopped (pid ${pid}) with ${last.pending.events} events in ${last.pending.files} files not delivered${last.last_error ? `: ${last.last_error.message}` : ''}`,
      {
        hint: 'They stay on disk: the next `hivemind start` or `hivemind import` sends them.',
      },
    )
  }
  throw new ExitError(
    EXIT.failed,
    `the daemon (pid ${pid}) exited without reporting its final catch-up`,
    {
      hint: `See ${paths.logFile} and ${paths.outFile}.`,
    },
  )
}

async function runFlush(
  stateDir: string,
  timeoutMs: number,
  json: boolean,
  io: CliIo,
): Promise<number> {
  const paths = daemonPaths(stateDir)
  const reply = await callDaemon<DrainResult>(
    paths.socket,
    'POST',
    `/flush?timeout_ms=${Math.round(timeoutMs)}`,
    timeoutMs + 5000,
  )
  if (!reply.ok) {
    if (reply.reason === 'no-daemon' && runningPid(paths) === undefined) {
      throw new ExitError(
        EXIT.failed,
        `no daemon running for state dir ${stateDir}; nothing was flushed`,
        {
          hint: 'Start one with `hivemind start`, or upload once with `hivemind import`.',
        },
      )
    }
    throw new ExitError(EXIT.failed, `could not reach the daemon: ${reply.message}`)
  }
  if (reply.status !== 200)
    throw new ExitError(EXIT.failed, `the daemon refused the flush: ${JSON.stringify(reply.body)}`)
  const { drained, pending } = reply.body
  if (json) io.stdout.write(`${JSON.stringify(reply.body)}\n`)
  if (drained) {
    if (!json) io.stdout.write('hivemind: flushed; everything written so far is on the server\n')
    return EXIT.ok
  }
  const status = await callDaemon<DaemonStatus>(paths.socket, 'GET', '/status', 2000)
  const why = status.ok ? status.body.last_error?.message : undefined
  throw new ExitError(
    EXIT.failed,
    `not drained after ${Math.round(timeoutMs / 1000)} s: ${pending.events} events in ${pending.files} files still pending${why ? ` (last error: ${why})` : ''}`,
    { hint: 'The daemon keeps retrying; nothing is lost.' },
  )
}

async function runStatus(stateDir: string, json: boolean, io: CliIo): Promise<number> {
  const paths = daemonPaths(stateDir)
  const reply = await callDaemon<unknown>(paths.socket, 'GET', '/status', 5000)
  const status = reply.ok ? DaemonStatus.safeParse(reply.body) : undefined
  if (status?.success) {
    if (json) io.stdout.write(`${JSON.stringify({ running: true, status: status.data })}\n`)
    else for (const line of describeStatus(status.data)) io.stdout.write(`${line}\n`)
    return EXIT.ok
  }
  const last = readSnapshot(paths.stateFile)
  if (json) io.stdout.write(`${JSON.stringify({ running: false, status: last ?? null })}\n`)
  else {
    io.stdout.write(
      `hivemind: no daemon running for state dir ${stateDir}${last ? ` (last one, pid ${last.pid}, ${last.state} at ${last.heartbeat_at}${last.drained === false ? `, ${last.pending.events} events undelivered` : ''})` : ''}\n`,
    )
  }
  return EXIT.failed
}

/** Human lines of `hivemind status`. */
export function describeStatus(s: DaemonStatus): string[] {
  const token = s.token
    ? `${s.token.source} (${s.token.kind}${s.token.expires_at ? `, expires ${s.token.expires_at}` : ''}; ${s.token.state})`
    : 'none yet'
  return [
    `hivemind: daemon pid ${s.pid} ${s.state}${s.paused ? ` (paused: ${s.pause_reason ?? ''})` : ''}; endpoint ${s.endpoint ?? '-'}`,
    `  files watched: ${s.files_watched}; pending: ${s.pending.events} events in ${s.pending.files} files (${s.pending.bytes} bytes)`,
    `  uploaded: ${s.uploaded.events} events in ${s.uploaded.batches} batches (${s.uploaded.accepted} stored, ${s.uploaded.duplicates} already there, ${s.uploaded.rejected} rejected); last upload ${s.last_upload_at ?? 'never'}`,
    `  last error: ${s.last_error ? `${s.last_error.message} (at ${s.last_error.at})` : 'none'}${s.failing_since ? `; failing since ${s.failing_since}` : ''}`,
    `  token: ${token}`,
    `  state dir ${s.state_dir}; log ${s.log_file}`,
  ]
}

function readSnapshot(file: string): DaemonStatus | undefined {
  try {
    const parsed = DaemonStatus.safeParse(JSON.parse(readFileSync(file, 'utf8')))
    return parsed.success ? parsed.data : undefined
  } catch {
    return undefined
  }
}
