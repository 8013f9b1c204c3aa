import { randomBytes, X509Certificate } from 'node:crypto'
import { isIP } from 'node:net'
import {
  normalizeAudience,
  type IdentityProvider,
  type IdentityProviderPreset,
} from '@hivemind/sdk/schemas'
import type { JWK } from 'jose'
import type { Db } from '../db/types.js'
import { ApiError } from '../errors.js'
import { iso } from '../http/time.js'
import { compilePolicy, PolicyCompileError } from './policy.js'
import { PRESETS } from './presets.js'

/** An identity provider as stored. */
export interface IdentityProviderRecord {
  id: string
  serviceAccountId: string
  preset: IdentityProviderPreset
  issuer: string
  /** null = the server's own audience. */
  audiences: string[] | null
  selector: string
  policy: string | null
  jwksUri: string | null
  jwks: { keys: JWK[] } | null
  caPem: string | null
  replay: 'single-use'
  createdAt: Date
  updatedAt: Date
}

/** A provider joined with the service account it maps to (what the exchange needs). */
export interface ProviderBinding extends IdentityProviderRecord {
  account: {
    id: string
    name: string
    scopes: string[]
    maxTtlSeconds: number | null
    disabled: boolean
  }
}

interface Row {
  id: string
  service_account_id: string
  preset: IdentityProviderPreset
  issuer: string
  audiences: string[] | null
  selector: string
  policy: string | null
  jwks_uri: string | null
  jwks: { keys: JWK[] } | string | null
  ca_pem: string | null
  replay: 'single-use'
  created_at: Date | string
  updated_at: Date | string
}

const COLUMNS =
  'id, service_account_id, preset, issuer, audiences, selector, policy, jwks_uri, jwks, ca_pem, replay, created_at, updated_at'

function toRecord(row: Row): IdentityProviderRecord {
  return {
    id: row.id,
    serviceAccountId: row.service_account_id,
    preset: row.preset,
    issuer: row.issuer,
    audiences: row.audiences,
    selector: row.selector,
    policy: row.policy,
    jwksUri: row.jwks_uri,
    jwks: typeof row.jwks === 'string' ? (JSON.parse(row.jwks) as { keys: JWK[] }) : row.jwks,
    caPem: row.ca_pem,
    replay: row.replay,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  }
}

/** Audiences a provider accepts, normalised; the server's own when none are configured. */
export function effectiveAudiences(p: IdentityProviderRecord, serverAudience: string): string[] {
  return (p.audiences ?? [serverAudience]).map(normalizeAudience)
}

/** The admin API's view of a provider. */
export function toWire(p: IdentityProviderRecord, serverAudience: string): IdentityProvider {
  return {
    id: p.id,
    service_account_id: p.serviceAccountId,
    preset: p.preset,
    issuer: p.issuer,
    audience: effectiveAudiences(p, serverAudience),
    audience_default: p.audiences == null,
    selector: p.selector,
    policy: p.policy,
    jwks_uri: p.jwksUri,
    jwks: p.jwks as IdentityProvider['jwks'],
    ca_pem: p.caPem,
    replay: p.replay,
    created_at: iso(p.createdAt),
    updated_at: iso(p.updatedAt),
  }
}

/** Fields as the admin sends them, after merging a PATCH onto the stored provider. */
export interface ProviderInput {
  preset?: IdentityProviderPreset | undefined
  issuer?: string | undefined
  audience?: string | string[] | null | undefined
  selector: string
  policy?: string | null | undefined
  jwks_uri?: string | null | undefined
  jwks?: { keys: Record<string, unknown>[] } | null | undefined
  ca_pem?: string | null | undefined
  replay?: 'single-use' | undefined
}

/** Validated values ready to store. */
export type ProviderValues = Omit<
  IdentityProviderRecord,
  'id' | 'serviceAccountId' | 'createdAt' | 'updatedAt'
>

const bad = (message: string) => new ApiError(400, 'invalid_request', message)

function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '')
  if (h === 'localhost') return true
  if (isIP(h) === 4) return h.startsWith('127.')
  return h === '::1'
}

/** https, or plain http to loopback only (local test issuers): fetched keys must not be MITM-able. */
function checkFetchUrl(field: string, value: string): void {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw bad(`${field}: must be an absolute URL`)
  }
  if (url.protocol === 'https:') return
  if (url.protocol === 'http:' && isLoopbackHost(url.hostname)) return
  throw bad(`${field}: keys are only fetched over https (plain http only on loopback)`)
}

const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth']

/**
 * Applies preset defaults and validates a provider: issuer, selector shape, CEL
 * policy (compiled and type-checked here, so a bad one is a 400 with the parser's
 * message), key source. Throws ApiError 400.
 */
export function validateProvider(input: ProviderInput): ProviderValues {
  const preset = input.preset ?? 'generic'
  const def = PRESETS[preset]
  const issuer = input.issuer ?? def.issuer
  if (!issuer) throw bad(`issuer: is required for the ${preset} preset`)
  let issuerUrl: URL
  try {
    issuerUrl = new URL(issuer)
  } catch {
    throw bad('issuer: must be an absolute https URL (exactly the iss of the tokens)')
  }
  if (issuerUrl.protocol !== 'https:' && issuerUrl.protocol !== 'http:') {
    throw bad('issuer: must be an https URL')
  }
  if (input.jwks && input.jwks_uri) throw bad('jwks: give either jwks or jwks_uri, not both')
  if (!input.jwks && !input.jwks_uri) checkFetchUrl('issuer', issuer)
  if (input.jwks_uri) checkFetchUrl('jwks_uri', input.jwks_uri)

  if (!def.selectorPattern.test(input.selector)) {
    throw bad(`selector: the ${preset} preset expects ${def.selectorShape}`)
  }

  let audiences: string[] | null = null
  if (input.audience != null) {
    audiences = (Array.isArray(input.audience) ? input.audience : [input.audience]).map(
      normalizeAudience,
    )
  } else if (def.audiences) {
    audiences = [...def.audiences]
  }

  if (input.policy) {
    try {
      compilePolicy(input.policy)
    } catch (err) {
      if (err instanceof PolicyCompileError) {
        throw new ApiError(400, 'invalid_policy', `policy: ${err.message}`)
      }
      throw err
    }
  }

  if (input.jwks) {
    input.jwks.keys.forEach((k, i) => {
      if (!['RSA', 'EC', 'OKP'].includes(String(k.kty))) {
        throw bad(`jwks.keys.${i}: kty must be RSA, EC or OKP (asymmetric keys only)`)
      }
      const secret = PRIVATE_JWK_MEMBERS.find((m) => m in k)
      if (secret) throw bad(`jwks.keys.${i}: must be a public key (has "${secret}")`)
    })
  }

  if (input.ca_pem) {
    const blocks = input.ca_pem.match(
      /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g,
    )
    if (!blocks) throw bad('ca_pem: no PEM certificate found')
    for (const block of blocks) {
      try {
        new X509Certificate(block)
      } catch {
        throw bad('ca_pem: a certificate in the bundle does not parse')
      }
    }
  }

  return {
    preset,
    issuer,
    audiences,
    selector: input.selector,
    policy: input.policy ?? null,
    jwksUri: input.jwks_uri ?? null,
    jwks: (input.jwks as { keys: JWK[] } | null | undefined) ?? null,
    caPem: input.ca_pem ?? null,
    replay: input.replay ?? 'single-use',
  }
}

/** Back to the admin's input shape, for merging a PATCH. */
export function toInput(p: IdentityProviderRecord): ProviderInput {
  return {
    preset: p.preset,
    issuer: p.issuer,
    audience: p.audiences,
    selector: p.selector,
    policy: p.policy,
    jwks_uri: p.jwksUri,
    jwks: p.jwks,
    ca_pem: p.caPem,
    replay: p.replay,
  }
}

/** `idp_` + 20 lowercase alphanumerics. */
export function newProviderId(): string {
  return `idp_${randomBytes(16).toString('base64url').replace(/[-_]/g, '').slice(0, 20).toLowerCase()}`
}

const UNIQUE_VIOLATION = '23505'

function conflict(err: unknown, v: ProviderValues): never {
  if ((err as { code?: unknown } | null)?.code === UNIQUE_VIOLATION) {
    throw new ApiError(
      409,
      'conflict',
      `selector: a provider for issuer ${v.issuer} with selector "${v.selector}" already exists (possibly on another service account)`,
    )
  }
  throw err
}

/** Providers of one service account, oldest first. */
export async function listProviders(db: Db, saId: string): Promise<IdentityProviderRecord[]> {
  const { rows } = await db.query<Row>(
    `SELECT ${COLUMNS} FROM identity_providers WHERE service_account_id = $1 ORDER BY created_at, id`,
    [saId],
  )
  return rows.map(toRecord)
}

export async function getProvider(
  db: Db,
  saId: string,
  id: string,
): Promise<IdentityProviderRecord | undefined> {
  const { rows } = await db.query<Row>(
    `SELECT ${COLUMNS} FROM identity_providers WHERE service_account_id = $1 AND id = $2`,
    [saId, id],
  )
  return rows[0] && toRecord(rows[0])
}

const valueParams = (v: ProviderValues) => [
  v.preset,
  v.issuer,
  v.audiences,
  v.selector,
  v.policy,
  v.jwksUri,
  v.jwks == null ? null : JSON.stringify(v.jwks),
  v.caPem,
  v.replay,
]

/** Inserts a provider; 409 when (issuer, selector) is taken by any account. */
export async function insertProvider(
  db: Db,
  saId: string,
  v: ProviderValues,
  at: string,
): Promise<IdentityProviderRecord> {
  try {
    const { rows } = await db.query<Row>(
      `INSERT INTO identity_providers (id, service_account_id, preset, issuer, audiences, selector, policy, jwks_uri, jwks, ca_pem, replay, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12, $12) RETURNING ${COLUMNS}`,
      [newProviderId(), saId, ...valueParams(v), at],
    )
    return toRecord(rows[0])
  } catch (err) {
    conflict(err, v)
  }
}

/** Replaces a provider's fields; 409 on an (issuer, selector) clash. */
export async function updateProvider(
  db: Db,
  saId: string,
  id: string,
  v: ProviderValues,
  at: string,
): Promise<IdentityProviderRecord | undefined> {
  try {
    const { rows } = await db.query<Row>(
      `UPDATE identity_providers SET preset = $3, issuer = $4, audiences = $5, selector = $6, policy = $7,
         jwks_uri = $8, jwks = $9::jsonb, ca_pem = $10, replay = $11, updated_at = $12
       WHERE service_account_id = $1 AND id = $2 RETURNING ${COLUMNS}`,
      [saId, id, ...valueParams(v), at],
    )
    return rows[0] && toRecord(rows[0])
  } catch (err) {
    conflict(err, v)
  }
}

export async function deleteProvider(db: Db, saId: string, id: string): Promise<boolean> {
  const r = await db.query(
    'DELETE FROM identity_providers WHERE service_account_id = $1 AND id = $2',
    [saId, id],
  )
  return r.affectedRows > 0
}

/** Every provider for an exact issuer string, with its service account. */
export async function providersForIssuer(db: Db, issuer: string): Promise<ProviderBinding[]> {
  const { rows } = await db.query<
    Row & {
      sa_name: string
      sa_scopes: string[]
      sa_max_ttl_seconds: number | null
      sa_disabled: boolean
    }
  >(
    `SELECT ${COLUMNS.split(', ')
      .map((c) => `p.${c}`)
      .join(', ')}, sa.name AS sa_name, sa.scopes AS sa_scopes,
       sa.max_ttl_seconds AS sa_max_ttl_seconds, sa.disabled AS sa_disabled
     FROM identity_providers p JOIN service_accounts sa ON sa.id = p.service_account_id
     WHERE p.issuer = $1 ORDER BY p.created_at, p.id`,
    [issuer],
  )
  return rows.map((r) => ({
    ...toRecord(r),
    account: {
      id: r.service_account_id,
      name: r.sa_name,
      scopes: r.sa_scopes,
      maxTtlSeconds: r.sa_max_ttl_seconds,
      disabled: r.sa_disabled,
    },
  }))
}

/**
 * How long this process reuses an issuer's providers (and their accounts'
 * disabled flags) between exchanges. DESIGN.md allows a disabled account to
 * linger ≤ 30 s on other replicas; writes through this process clear it at once.
 */
export const PROVIDER_CACHE_MS = 5_000

// One cache per database handle: tests run several servers in one process.
const providerCaches = new WeakMap<
  Db,
  Map<string, { at: number; rows: Promise<ProviderBinding[]> }>
>()

/** {@link providersForIssuer}, cached for {@link PROVIDER_CACHE_MS}; concurrent misses share one query. */
export function cachedProvidersForIssuer(
  db: Db,
  issuer: string,
  nowMs: number,
): Promise<ProviderBinding[]> {
  let cache = providerCaches.get(db)
  if (!cache) {
    cache = new Map<string, { at: number; rows: Promise<ProviderBinding[]> }>()
    providerCaches.set(db, cache)
  }
  const hit = cache.get(issuer)
  if (hit && nowMs - hit.at < PROVIDER_CACHE_MS && nowMs >= hit.at) return hit.rows
  const rows = providersForIssuer(db, issuer)
  if (cache.size > 1000) cache.clear()
  cache.set(issuer, { at: nowMs, rows })
  // A failed query must not be served from the cache.
  rows.catch(() => cache.delete(issuer))
  return rows
}

/** Drops cached providers (after an admin write, or a service-account change). */
export function invalidateProviderCache(db: Db): void {
  providerCaches.get(db)?.clear()
}
