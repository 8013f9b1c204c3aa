import { createHash, randomBytes } from 'node:crypto'
import type { Scope, ServiceAccount, ServiceAccountToken, TokenExpiry } from '@hivemind/sdk/schemas'
import type { Db } from '../db/types.js'
import { iso, isoOrNull } from '../http/time.js'

/** A service account row as stored (timestamps as Date). */
export interface ServiceAccountRecord {
  id: string
  name: string
  scopes: Scope[]
  /** Upper bound for minted JWT lifetimes; null = the server's 24 h cap. */
  maxTtlSeconds: number | null
  disabled: boolean
  disabledAt: Date | null
  createdAt: Date
  updatedAt: Date
}

interface SaRow {
  id: string
  name: string
  scopes: Scope[]
  max_ttl_seconds: number | null
  disabled: boolean
  disabled_at: Date | string | null
  created_at: Date | string
  updated_at: Date | string
}

export const SA_COLUMNS =
  'id, name, scopes, max_ttl_seconds, disabled, disabled_at, created_at, updated_at'

export function toRecord(row: SaRow): ServiceAccountRecord {
  return {
    id: row.id,
    name: row.name,
    scopes: row.scopes,
    maxTtlSeconds: row.max_ttl_seconds,
    disabled: row.disabled,
    disabledAt: row.disabled_at == null ? null : new Date(row.disabled_at),
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  }
}

/** The admin API's view of a service account. */
export function toWire(sa: ServiceAccountRecord): ServiceAccount {
  return {
    id: sa.id,
    name: sa.name,
    scopes: sa.scopes,
    max_ttl_seconds: sa.maxTtlSeconds,
    disabled: sa.disabled,
    disabled_at: sa.disabledAt && iso(sa.disabledAt),
    created_at: iso(sa.createdAt),
    updated_at: iso(sa.updatedAt),
  }
}

/**
 * Reads one service account, or undefined. The exchange uses it for
 * `maxTtlSeconds`, `disabled` and `scopes`; it always hits the database (no cache).
 *
 * @example
 * const sa = await getServiceAccount(deps.db, 'sa_…')
 * if (!sa || sa.disabled) deny()
 */
export async function getServiceAccount(
  db: Db,
  id: string,
): Promise<ServiceAccountRecord | undefined> {
  const { rows } = await db.query<SaRow>(
    `SELECT ${SA_COLUMNS} FROM service_accounts WHERE id = $1`,
    [id],
  )
  return rows[0] && toRecord(rows[0])
}

/** Counts service accounts; the bootstrap hint is printed when there are none. */
export async function countServiceAccounts(db: Db): Promise<number> {
  const { rows } = await db.query<{ n: number | string }>(
    'SELECT count(*)::int AS n FROM service_accounts',
  )
  return Number(rows[0]?.n ?? 0)
}

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567'

/** `sa_` + 20 base32 chars (RFC 4648 alphabet, lower case): easy to read aloud, 100 bits of randomness. */
export function newId(prefix: 'sa' | 'sat'): string {
  // 256 is a multiple of 32, so `byte % 32` is uniform.
  const chars = Array.from(randomBytes(20), (byte) => BASE32[byte % 32])
  return `${prefix}_${chars.join('')}`
}

/** Prefix of static service-account tokens. */
export const SA_TOKEN_PREFIX = 'hmsa_'

/** A fresh `hmsa_` token: 32 random bytes, 43 base64url chars. */
export function newStaticToken(): string {
  return SA_TOKEN_PREFIX + randomBytes(32).toString('base64url')
}

/** How static tokens are stored: SHA-256 hex (they are high-entropy, so no slow hash is needed). */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex')
}

/** Expiry instant for a `expires_in` choice; null = never. Months and years are calendar ones. */
export function expiryFor(choice: TokenExpiry, nowMs: number): Date | null {
  const d = new Date(nowMs)
  switch (choice) {
    case '30d':
      return new Date(nowMs + 30 * 86_400_000)
    case '90d':
      return new Date(nowMs + 90 * 86_400_000)
    case '6m':
      d.setUTCMonth(d.getUTCMonth() + 6)
      return d
    case '1y':
      d.setUTCFullYear(d.getUTCFullYear() + 1)
      return d
    case 'never':
      return null
  }
}

export interface TokenRow {
  id: string
  service_account_id: string
  scopes: Scope[]
  expires_at: Date | string | null
  created_at: Date | string
  last_used_at: Date | string | null
  revoked_at: Date | string | null
}

export const TOKEN_COLUMNS =
  'id, service_account_id, scopes, expires_at, created_at, last_used_at, revoked_at'

export function tokenToWire(row: TokenRow): ServiceAccountToken {
  return {
    id: row.id,
    service_account_id: row.service_account_id,
    scopes: row.scopes,
    expires_at: isoOrNull(row.expires_at),
    created_at: iso(row.created_at),
    last_used_at: isoOrNull(row.last_used_at),
    revoked_at: isoOrNull(row.revoked_at),
  }
}
