/**
 * The step's error when the job has no OIDC token and no `token` input: what to add to
 * the workflow, and the way out for pull requests from forks.
 */
export const MISSING_ID_TOKEN_MESSAGE =
  'GitHub Actions gave this job no OIDC token (ACTIONS_ID_TOKEN_REQUEST_URL and ' +
  'ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set). Add `permissions: id-token: write` to the ' +
  'job (or the workflow). Pull requests from forks get no OIDC token even with that ' +
  'permission: use the `token` input there (a HiveMind token stored as a secret).'

/** Names of the action's saved state (GITHUB_STATE → STATE_* in the post phase). */
export const STATE = { stateDir: 'hivemind-state-dir', mode: 'hivemind-mode' } as const
