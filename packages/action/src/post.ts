// Post phase of hivemind/action (`post-if: always()`): stops the daemon of this use of
// the action, whose final catch-up uploads what the job's steps wrote, with the JWT it
// already holds (GitHub issues no new ID tokens once the job is completing).
import * as core from '@actions/core'
import { withoutInputs } from './env.js'
import { STATE } from './messages.js'
import { runCli } from './run-cli.js'

interface StopJson {
  stopped: boolean
  drained: boolean | null
  pending: { files: number; events: number } | null
  uploaded: { sessions: number; events: number; accepted: number; duplicates: number } | null
}

/** `1 session`, `2 sessions`. */
function count(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`
}

async function run(): Promise<void> {
  const stateDir = core.getState(STATE.stateDir)
  if (!stateDir || core.getState(STATE.mode) !== 'stream') return
  const r = await runCli(['stop', '--json', '--state-dir', stateDir], withoutInputs())
  const result = r.json as StopJson | undefined
  const up = result?.uploaded
  if (up) {
    const line = `${count(up.sessions, 'session')}, ${count(up.events, 'event')} uploaded (${up.accepted} items stored, ${up.duplicates} already there)`
    core.info(`HiveMind: ${line}${result.drained ? '; everything delivered' : ''}`)
    await core.summary
      .addHeading('HiveMind', 3)
      .addRaw(
        result.drained
          ? `${line}; everything delivered.`
          : `${line}; <strong>${result.pending?.events ?? '?'} events in ${result.pending?.files ?? '?'} files not delivered</strong> (they stay in the runner's session files).`,
        true,
      )
      .write()
  } else if (result && !result.stopped) {
    core.warning(`HiveMind: no daemon was running for ${stateDir}; nothing to flush`)
  }
  if (r.code !== 0) throw new Error(r.message || `hivemind stop exited with ${r.code}`)
}

run().catch((err: unknown) => {
  core.setFailed(err instanceof Error ? err.message : String(err))
})
