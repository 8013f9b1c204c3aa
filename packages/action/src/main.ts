// Main phase of hivemind/action: the first token exchange happens here (a wrong
// selector, a missing permission or a policy denial fails this step), then either the
// daemon starts (stream) or one import runs (import).
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import * as core from '@actions/core'
import { cliEnv } from './env.js'
import { InputError, readInputs } from './inputs.js'
import { MISSING_ID_TOKEN_MESSAGE, STATE } from './messages.js'
import { runCli } from './run-cli.js'

interface StartJson {
  pid: number
  principal: { kind: string; id: string; name: string }
  files_watched: number
}

interface ImportJson {
  ok: boolean
  principal?: { id: string }
  found: { files: number; sessions: number }
  upload: { events: number; accepted: number; duplicates: number; rejected: number }
}

async function run(): Promise<void> {
  const inputs = readInputs()
  if (inputs.token) core.setSecret(inputs.token)
  else if (
    !process.env.ACTIONS_ID_TOKEN_REQUEST_URL ||
    !process.env.ACTIONS_ID_TOKEN_REQUEST_TOKEN
  ) {
    throw new InputError(MISSING_ID_TOKEN_MESSAGE)
  }
  // Everything the CLI writes (checkpoints, log, status, socket) is for this user only.
  process.umask(0o077)
  // One state dir per use of the action, so two uses in a job never share a daemon.
  const stateDir = inputs.stateDir
    ? resolve(inputs.stateDir)
    : await mkdtemp(join(process.env.RUNNER_TEMP ?? tmpdir(), 'hivemind-'))
  const env = cliEnv(inputs, stateDir)

  if (inputs.mode === 'stream') {
    const r = await runCli(['start', '--json', '--state-dir', stateDir], env)
    const started = r.json as StartJson | undefined
    if (r.code !== 0 || !started)
      throw new Error(r.message || `hivemind start exited with ${r.code}`)
    core.saveState(STATE.stateDir, stateDir)
    core.saveState(STATE.mode, 'stream')
    core.setOutput('service-account', started.principal.id)
    core.info(
      `HiveMind: streaming sessions to ${inputs.endpoint} as ${started.principal.id} (${started.principal.name}); ${started.files_watched} session files found so far. The end of the job flushes them.`,
    )
    return
  }

  const args = ['import', '--json', '--state-dir', stateDir]
  if (inputs.all) args.push('--all')
  if (inputs.since) args.push('--since', inputs.since)
  if (inputs.agents) args.push('--agents', inputs.agents)
  for (const p of inputs.paths) args.push('--path', p)
  if (inputs.allowEmpty) args.push('--allow-empty')
  const r = await runCli(args, env)
  const summary = r.json as ImportJson | undefined
  if (summary?.principal) core.setOutput('service-account', summary.principal.id)
  if (summary) {
    core.setOutput('sessions-uploaded', String(summary.found.sessions))
    core.setOutput('events-uploaded', String(summary.upload.events))
  }
  if (r.code !== 0) throw new Error(r.message || `hivemind import exited with ${r.code}`)
  core.info(
    `HiveMind: ${summary?.found.sessions ?? 0} sessions in ${summary?.found.files ?? 0} files; ${summary?.upload.events ?? 0} events sent (${summary?.upload.accepted ?? 0} items stored, ${summary?.upload.duplicates ?? 0} already there)`,
  )
}

run().catch((err: unknown) => {
  core.setFailed(err instanceof Error ? err.message : String(err))
})
