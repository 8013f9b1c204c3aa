import { z } from 'zod'
import { TOKEN_TTL_BOUNDS } from './env.js'
import { Scope, TokenExpiry } from './names.js'

/**
 * Service-account names: what admins type and what shows up in logs and `/me`.
 */
export const ServiceAccountName = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/,
    "must be 1-64 characters: letters, digits, '.', '_' or '-', starting with a letter or digit",
  )

const Scopes = z
  .array(Scope)
  .min(1, 'must name at least one scope')
  .refine((s) => new Set(s).size === s.length, 'must not repeat a scope')

const MaxTtlSeconds = z
  .number()
  .int()
  .min(
    TOKEN_TTL_BOUNDS.minServiceAccountMaxSeconds,
    `must be at least ${TOKEN_TTL_BOUNDS.minServiceAccountMaxSeconds} seconds`,
  )
  .max(TOKEN_TTL_BOUNDS.maxSeconds, `must be at most ${TOKEN_TTL_BOUNDS.maxSeconds} seconds`)

/**
 * `POST /api/v1/service-accounts`.
 *
 * @example
 * { "name": "ci-uploader", "scopes": ["write"], "max_ttl_seconds": 3600 }
 */
export const ServiceAccountCreateRequest = z.strictObject({
  name: ServiceAccountName,
  /** @default ["write"] */
  scopes: Scopes.default(['write']),
  /** Upper bound for JWTs minted for this account (≥ 600 s); null = the 24 h server cap. */
  max_ttl_seconds: MaxTtlSeconds.nullable().optional(),
  /** @default false */
  disabled: z.boolean().optional(),
})
export type ServiceAccountCreateRequest = z.input<typeof ServiceAccountCreateRequest>

/** `PATCH /api/v1/service-accounts/{id}`: any subset of the create fields. */
export const ServiceAccountPatchRequest = z.strictObject({
  name: ServiceAccountName.optional(),
  scopes: Scopes.optional(),
  max_ttl_seconds: MaxTtlSeconds.nullable().optional(),
  /** Disabling invalidates its static tokens and already-minted JWTs at once. */
  disabled: z.boolean().optional(),
})
export type ServiceAccountPatchRequest = z.input<typeof ServiceAccountPatchRequest>

/** A service account as the admin API returns it. */
export const ServiceAccount = z.object({
  id: z.string().startsWith('sa_'),
  name: z.string(),
  scopes: z.array(Scope),
  max_ttl_seconds: z.number().int().nullable(),
  disabled: z.boolean(),
  disabled_at: z.iso.datetime().nullable(),
  created_at: z.iso.datetime(),
  updated_at: z.iso.datetime(),
})
export type ServiceAccount = z.infer<typeof ServiceAccount>

/** Builds a cursor-paginated list shape: `{items, next_cursor}`. */
export function pageOf<T extends z.ZodType>(item: T) {
  return z.object({ items: z.array(item), next_cursor: z.string().nullable() })
}

export const ServiceAccountList = pageOf(ServiceAccount)
export type ServiceAccountList = z.infer<typeof ServiceAccountList>

/**
 * `POST /api/v1/service-accounts/{id}/tokens`.
 *
 * @example
 * { "expires_in": "30d", "scopes": ["write"] }
 */
export const ServiceAccountTokenCreateRequest = z.strictObject({
  /** @default "90d" */
  expires_in: TokenExpiry.default('90d'),
  /** Must be a subset of the account's scopes. @default the account's scopes */
  scopes: Scopes.optional(),
})
export type ServiceAccountTokenCreateRequest = z.input<typeof ServiceAccountTokenCreateRequest>

/** A static token as listed (never with its secret). */
export const ServiceAccountToken = z.object({
  id: z.string().startsWith('sat_'),
  service_account_id: z.string(),
  scopes: z.array(Scope),
  expires_at: z.iso.datetime().nullable(),
  created_at: z.iso.datetime(),
  last_used_at: z.iso.datetime().nullable(),
  revoked_at: z.iso.datetime().nullable(),
})
export type ServiceAccountToken = z.infer<typeof ServiceAccountToken>

/** Response of token creation: the only time `token` is ever shown. */
export const ServiceAccountTokenCreated = ServiceAccountToken.extend({
  token: z.string().regex(/^hmsa_[A-Za-z0-9_-]{43,}$/),
})
export type ServiceAccountTokenCreated = z.infer<typeof ServiceAccountTokenCreated>

export const ServiceAccountTokenList = pageOf(ServiceAccountToken)
export type ServiceAccountTokenList = z.infer<typeof ServiceAccountTokenList>

/** One audit record (`GET /api/v1/audit`). Never contains a secret. */
export const AuditRecord = z.object({
  id: z.string(),
  at: z.iso.datetime(),
  action: z.string(),
  result: z.enum(['success', 'failure']),
  actor_kind: z.string().nullable(),
  actor_id: z.string().nullable(),
  target: z.string().nullable(),
  address: z.string().nullable(),
  details: z.record(z.string(), z.unknown()),
})
export type AuditRecord = z.infer<typeof AuditRecord>

export const AuditList = pageOf(AuditRecord)
export type AuditList = z.infer<typeof AuditList>

/** Minimal `GET /.well-known/openid-configuration` of the HiveMind server. */
export const OpenIdConfiguration = z.object({
  issuer: z.string(),
  jwks_uri: z.string(),
  token_endpoint: z.string(),
  grant_types_supported: z.array(z.string()),
  /** The audience ID tokens must carry (the normalised public URL). */
  hivemind_audience: z.string(),
})
export type OpenIdConfiguration = z.infer<typeof OpenIdConfiguration>
