import { z } from 'zod'

/** GitHub Actions' OIDC issuer. */
export const GITHUB_ACTIONS_ISSUER = 'https://token.actions.githubusercontent.com'
/** Modal's OIDC issuer; Modal ID tokens also carry it as their audience. */
export const MODAL_ISSUER = 'https://oidc.modal.com'

/**
 * Built-in identity-provider presets. A preset fills defaults (issuer, audience)
 * and decides which claim the selector is matched against:
 *
 * - `github`: selector `repo:OWNER/REPO`, matched against `repo:` + the `repository`
 *   claim (not `sub`, which organisations can customise).
 * - `kubernetes`: selector `system:serviceaccount:NS:NAME`, matched against `sub`.
 * - `modal`: selector `modal:workspace_id:ID`, matched against `modal:workspace_id:` +
 *   the `workspace_id` claim (Modal's `sub` embeds a container id that changes).
 * - `generic`: any selector, matched against `sub`.
 */
export const IdentityProviderPreset = z.enum(['github', 'kubernetes', 'modal', 'generic'])
export type IdentityProviderPreset = z.infer<typeof IdentityProviderPreset>

/** A public JWK as an identity provider publishes it (no private members checked here). */
const Jwk = z.looseObject({ kty: z.string() })

const AudienceInput = z.union([
  z.string().min(1).max(512),
  z.array(z.string().min(1).max(512)).min(1).max(16),
])

const fields = {
  preset: IdentityProviderPreset,
  /** Exact `iss` of the ID tokens; `https://x` and `https://x/` are different issuers. */
  issuer: z.string().min(1).max(512),
  /** Accepted `aud` value(s). Default: the server's public URL (normalised). */
  audience: AudienceInput,
  /** Exact value or glob (`*` matches any run of characters); the most specific match wins. */
  selector: z.string().min(1).max(512),
  /** CEL expression over `claims`; only a result of exactly `true` allows. */
  policy: z.string().min(1).max(4096),
  /** JWKS URL instead of OIDC discovery. */
  jwks_uri: z.url({ protocol: /^https?$/ }),
  /** Inline JWKS for issuers the server cannot reach. */
  jwks: z.object({ keys: z.array(Jwk).min(1).max(32) }),
  /** PEM CA bundle trusted for discovery and JWKS fetches of a private issuer. */
  ca_pem: z.string().min(1).max(65_536),
  /** Each ID token is exchanged once. */
  replay: z.literal('single-use'),
}

/**
 * `POST /api/v1/service-accounts/{id}/identity-providers`.
 *
 * @example
 * { "preset": "github", "selector": "repo:octo-org/octo-repo",
 *   "policy": "claims.ref == \"refs/heads/main\"" }
 * @see https://docs.github.com/actions/security-for-github-actions/security-hardening-your-deployments/about-security-hardening-with-openid-connect
 */
export const IdentityProviderCreateRequest = z.strictObject({
  /** @default "generic" */
  preset: fields.preset.optional(),
  /** Required except for the `github` and `modal` presets, which fill it in. */
  issuer: fields.issuer.optional(),
  audience: fields.audience.nullable().optional(),
  selector: fields.selector,
  policy: fields.policy.nullable().optional(),
  jwks_uri: fields.jwks_uri.nullable().optional(),
  jwks: fields.jwks.nullable().optional(),
  ca_pem: fields.ca_pem.nullable().optional(),
  /** @default "single-use" */
  replay: fields.replay.optional(),
})
export type IdentityProviderCreateRequest = z.input<typeof IdentityProviderCreateRequest>

/** `PATCH …/identity-providers/{providerId}`: any subset; `null` clears an optional field. */
export const IdentityProviderPatchRequest = z.strictObject({
  preset: fields.preset.optional(),
  issuer: fields.issuer.optional(),
  audience: fields.audience.nullable().optional(),
  selector: fields.selector.optional(),
  policy: fields.policy.nullable().optional(),
  jwks_uri: fields.jwks_uri.nullable().optional(),
  jwks: fields.jwks.nullable().optional(),
  ca_pem: fields.ca_pem.nullable().optional(),
  replay: fields.replay.optional(),
})
export type IdentityProviderPatchRequest = z.input<typeof IdentityProviderPatchRequest>

/** An identity provider as the admin API returns it. */
export const IdentityProvider = z.object({
  id: z.string().startsWith('idp_'),
  service_account_id: z.string(),
  preset: IdentityProviderPreset,
  issuer: z.string(),
  /** Effective accepted audiences (normalised). */
  audience: z.array(z.string()),
  /** True when `audience` is the server's default (follows HIVEMIND_PUBLIC_URL). */
  audience_default: z.boolean(),
  selector: z.string(),
  policy: z.string().nullable(),
  jwks_uri: z.string().nullable(),
  jwks: z.object({ keys: z.array(Jwk) }).nullable(),
  ca_pem: z.string().nullable(),
  replay: z.literal('single-use'),
  created_at: z.iso.datetime(),
  updated_at: z.iso.datetime(),
})
export type IdentityProvider = z.infer<typeof IdentityProvider>

export const IdentityProviderList = z.object({ items: z.array(IdentityProvider) })
export type IdentityProviderList = z.infer<typeof IdentityProviderList>

/** `POST /api/v1/exchange/explain`: a dry run of `POST /oauth/token`. */
export const ExchangeExplainRequest = z.strictObject({
  subject_token: z.string().min(1),
  scope: z.string().optional(),
})
export type ExchangeExplainRequest = z.infer<typeof ExchangeExplainRequest>

/** One check of the exchange pipeline, with the claims that decided it. */
export const ExchangeCheck = z.object({
  name: z.string(),
  ok: z.boolean(),
  detail: z.string(),
  /** `hivemind_error` when the check failed. */
  hivemind_error: z.string().optional(),
  /** The claims this check looked at (never the token itself). */
  claims: z.record(z.string(), z.unknown()).optional(),
})
export type ExchangeCheck = z.infer<typeof ExchangeCheck>

/**
 * Result of an explain: `allow` when a real exchange would succeed now. The replay
 * key is only looked at, never consumed.
 */
export const ExchangeExplainResponse = z.object({
  result: z.enum(['allow', 'deny']),
  checks: z.array(ExchangeCheck),
  service_account: z.object({ id: z.string(), name: z.string() }).optional(),
  identity_provider: z.string().optional(),
})
export type ExchangeExplainResponse = z.infer<typeof ExchangeExplainResponse>
