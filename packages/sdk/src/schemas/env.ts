/**
 * Environment variable names and defaults shared by the SDK, CLI, Action and server.
 * One place, so a rename can never leave one side reading a stale name.
 */
export const ENV = {
  endpoint: 'HIVEMIND_ENDPOINT',
  token: 'HIVEMIND_TOKEN',
  apiKey: 'HIVEMIND_API_KEY',
  audience: 'HIVEMIND_AUDIENCE',
  oidcTokenFile: 'HIVEMIND_OIDC_TOKEN_FILE',
  watchPaths: 'HIVEMIND_WATCH_PATHS',
  stateDir: 'HIVEMIND_STATE_DIR',
  githubActions: 'GITHUB_ACTIONS',
  actionsIdTokenRequestUrl: 'ACTIONS_ID_TOKEN_REQUEST_URL',
  actionsIdTokenRequestToken: 'ACTIONS_ID_TOKEN_REQUEST_TOKEN',
  modalIdentityToken: 'MODAL_IDENTITY_TOKEN',
} as const

export const DEFAULTS = {
  /** Where Kubernetes projects the service-account token for the sidecar. */
  oidcTokenFile: '/var/run/secrets/hivemind/token',
  /** Relative to the home directory. */
  apiKeyEnvFile: '.config/hivemind/env',
  /** Relative to the home directory. */
  stateDir: '.hivemind',
  serverHost: '127.0.0.1',
  serverPort: 8585,
} as const

/** Bounds the server clamps exchanged JWT lifetimes to (seconds). */
export const TOKEN_TTL_BOUNDS = {
  minSeconds: 3600,
  maxSeconds: 86_400,
  /** Smallest `max_ttl_seconds` a service account may set. */
  minServiceAccountMaxSeconds: 600,
} as const
