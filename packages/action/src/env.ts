import type { ActionInputs } from './inputs.js'

/** The job's environment without the action's own `INPUT_*` variables. */
export function withoutInputs(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(base)) if (!k.startsWith('INPUT_')) env[k] = v
  return env
}

/**
 * The CLI's environment: the job's, minus the action's own `INPUT_*` (the token input
 * must not reach the daemon as anything but HIVEMIND_TOKEN), plus the HiveMind settings.
 * Nothing here is exported to the job: later steps see no token.
 */
export function cliEnv(
  inputs: ActionInputs,
  stateDir: string,
  base = process.env,
): NodeJS.ProcessEnv {
  const env = withoutInputs(base)
  env.HIVEMIND_ENDPOINT = inputs.endpoint
  env.HIVEMIND_STATE_DIR = stateDir
  if (inputs.audience) env.HIVEMIND_AUDIENCE = inputs.audience
  else delete env.HIVEMIND_AUDIENCE
  if (inputs.watchPaths) env.HIVEMIND_WATCH_PATHS = inputs.watchPaths
  if (inputs.token) env.HIVEMIND_TOKEN = inputs.token
  return env
}
