import * as core from '@actions/core'
import { z } from 'zod'

/** The action's inputs (action.yml), validated. */
export const ActionInputs = z.object({
  endpoint: z.url({
    message:
      'the `endpoint` input must be the HiveMind server URL, e.g. https://hivemind.example.com',
  }),
  audience: z.string(),
  mode: z.enum(['stream', 'import'], { message: 'the `mode` input must be `stream` or `import`' }),
  token: z.string(),
  watchPaths: z.string(),
  stateDir: z.string(),
  all: z.boolean(),
  since: z.string(),
  agents: z.string(),
  paths: z.array(z.string()),
  allowEmpty: z.boolean(),
})
export type ActionInputs = z.infer<typeof ActionInputs>

/** Thrown for a bad input; the step fails with its message alone. */
export class InputError extends Error {
  readonly code = 'ERR_ACTION_INPUT'
}

/** Reads and validates the inputs (`INPUT_*`), with the runner's boolean rules. */
export function readInputs(): ActionInputs {
  const bool = (name: string): boolean => {
    try {
      return core.getBooleanInput(name)
    } catch {
      throw new InputError(
        `the \`${name}\` input must be true or false (got "${core.getInput(name)}")`,
      )
    }
  }
  const parsed = ActionInputs.safeParse({
    endpoint: core.getInput('endpoint', { required: false }),
    audience: core.getInput('audience'),
    mode: core.getInput('mode') || 'stream',
    token: core.getInput('token'),
    watchPaths: core.getInput('watch-paths'),
    stateDir: core.getInput('state-dir'),
    all: core.getInput('all') === '' ? false : bool('all'),
    since: core.getInput('since'),
    agents: core.getInput('agents'),
    paths: core
      .getInput('paths')
      .split(/[\n,]/)
      .map((p) => p.trim())
      .filter(Boolean),
    allowEmpty: core.getInput('allow-empty') === '' ? false : bool('allow-empty'),
  })
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    if (issue?.path[0] === 'endpoint' && core.getInput('endpoint') === '') {
      throw new InputError(
        'the `endpoint` input is required: the HiveMind server URL, e.g. https://hivemind.example.com',
      )
    }
    throw new InputError(issue?.message ?? 'invalid input')
  }
  return parsed.data
}
