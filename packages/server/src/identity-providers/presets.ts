import {
  GITHUB_ACTIONS_ISSUER,
  MODAL_ISSUER,
  type IdentityProviderPreset,
} from '@hivemind/sdk/schemas'

/** What a preset fills in and how it reads the selector. */
export interface PresetDefinition {
  /** Issuer used when the admin gives none; undefined = the admin must give one. */
  issuer?: string
  /** Audiences used when the admin gives none; undefined = the server's public URL. */
  audiences?: string[]
  /** Shape the selector must have (globs allowed inside the segments). */
  selectorPattern: RegExp
  /** Human description of the selector shape, for 400 messages. */
  selectorShape: string
  /**
   * The string the selector is matched against, from verified claims; undefined
   * when the token lacks the claim.
   */
  subject(claims: Readonly<Record<string, unknown>>): string | undefined
  /** Claims the subject was built from (for explain). */
  subjectClaims: readonly string[]
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined)

/**
 * Presets. GitHub and Modal match on dedicated claims rather than `sub`: GitHub
 * lets organisations customise `sub` (it broke PyPI, pypi/warehouse#19405), and
 * Modal's `sub` embeds a container id that changes on every run. Finer binding
 * (branch, workflow, environment, app) belongs in the CEL policy.
 */
export const PRESETS: Readonly<Record<IdentityProviderPreset, PresetDefinition>> = {
  github: {
    issuer: GITHUB_ACTIONS_ISSUER,
    selectorPattern: /^repo:[^:\s]+\/[^:\s]+$/,
    selectorShape: 'repo:OWNER/REPO (globs allowed, e.g. repo:octo-org/*)',
    subject: (c) => (str(c.repository) ? `repo:${str(c.repository)}` : undefined),
    subjectClaims: ['repository'],
  },
  kubernetes: {
    selectorPattern: /^system:serviceaccount:[^:\s]+:[^:\s]+$/,
    selectorShape: 'system:serviceaccount:NAMESPACE:NAME (globs allowed)',
    subject: (c) => str(c.sub),
    subjectClaims: ['sub'],
  },
  modal: {
    issuer: MODAL_ISSUER,
    audiences: [MODAL_ISSUER],
    selectorPattern: /^modal:workspace_id:[^:\s]+$/,
    selectorShape: 'modal:workspace_id:WORKSPACE_ID',
    subject: (c) => (str(c.workspace_id) ? `modal:workspace_id:${str(c.workspace_id)}` : undefined),
    subjectClaims: ['workspace_id'],
  },
  generic: {
    // Printable, no whitespace or control characters.
    selectorPattern: /^[^\s\p{Cc}]+$/u,
    selectorShape: 'printable characters without spaces, matched against sub',
    subject: (c) => str(c.sub),
    subjectClaims: ['sub'],
  },
}
