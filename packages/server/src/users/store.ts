import { randomBytes, randomInt } from 'node:crypto'
import type { Pat, PatPolicy, Scope, User, UserRole } from '@hivemind/sdk/schemas'
import type { Db } from '../db/types.js'
import { iso, isoOrNull } from '../http/time.js'
import { hashToken } from '../service-accounts/store.js'

/** Where a user came from. */
export type UserSource = 'local' | 'forward_auth' | 'bootstrap'

/** A user row as stored (timestamps as Date). */
export interface UserRecord {
  id: string
  username: string
  email: string | null
  passwordHash: string | null
  role: UserRole
  source: UserSource
  disabled: boolean
  lastLoginAt: Date | null
  createdAt: Date
  updatedAt: Date
}

export interface UserRow {
  id: string
  username: string
  email: string | null
  password_hash: string | null
  role: UserRole
  source: UserSource
  disabled: boolean
  last_login_at: Date | string | null
  created_at: Date | string
  updated_at: Date | string
}

export const USER_COLUMNS =
  'id, username, email, password_hash, role, source, disabled, last_login_at, created_at, updated_at'

export function toUser(row: UserRow): UserRecord {
  return {
    id: row.id,
    username: row.username,
    email: row.email,
    passwordHash: row.password_hash,
    role: row.role,
    source: row.source,
    disabled: row.disabled,
    lastLoginAt: row.last_login_at == null ? null : new Date(row.last_login_at),
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  }
}

/** The API's view of a user: never the password hash. */
export function userToWire(u: UserRecord): User {
  return {
    id: u.id,
    username: u.username,
    email: u.email,
    role: u.role,
    source: u.source,
    disabled: u.disabled,
    created_at: iso(u.createdAt),
    updated_at: iso(u.updatedAt),
    last_login_at: u.lastLoginAt && iso(u.lastLoginAt),
  }
}

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567'
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'

/** `usr_` + 20 base32 chars (100 random bits), like service-account ids. */
export function newUserScopedId(prefix: 'usr' | 'ses' | 'uak' | 'pat'): string {
  return `${prefix}_${Array.from(randomBytes(20), (b) => BASE32[b % 32]).join('')}`
}

/** Prefixes of user credentials (DESIGN.md, "Identities and tokens"). */
export const SESSION_PREFIX = 'hms-'
export const API_KEY_PREFIX = 'hm-'
export const PAT_PREFIX = 'hmpat_'

/** `hms-` + 43 base64url chars (256 bits). */
export function newSessionToken(): string {
  return SESSION_PREFIX + randomBytes(32).toString('base64url')
}

/** `hm-` + 64 alphanumeric chars (~381 bits), drawn without modulo bias. */
export function newApiKey(): string {
  let key = API_KEY_PREFIX
  for (let i = 0; i < 64; i++) key += ALNUM[randomInt(ALNUM.length)]
  return key
}

/** `hmpat_` + 43 base64url chars (256 bits). */
export function newPat(): string {
  return PAT_PREFIX + randomBytes(32).toString('base64url')
}

/** A double-submit CSRF value (256 bits). */
export function newCsrfToken(): string {
  return randomBytes(32).toString('base64url')
}

export { hashToken }

/** Scopes a role grants; a credential's own scopes are intersected with these. */
export function roleScopes(role: UserRole): Scope[] {
  return role === 'ReadOnly' ? ['read'] : ['read', 'write']
}

export async function getUser(db: Db, id: string): Promise<UserRecord | undefined> {
  const { rows } = await db.query<UserRow>(`SELECT ${USER_COLUMNS} FROM users WHERE id = $1`, [id])
  return rows[0] && toUser(rows[0])
}

export async function findUserByEmail(db: Db, email: string): Promise<UserRecord | undefined> {
  const { rows } = await db.query<UserRow>(
    `SELECT ${USER_COLUMNS} FROM users WHERE lower(email) = lower($1)`,
    [email],
  )
  return rows[0] && toUser(rows[0])
}

export async function findUserByUsername(
  db: Db,
  username: string,
): Promise<UserRecord | undefined> {
  const { rows } = await db.query<UserRow>(
    `SELECT ${USER_COLUMNS} FROM users WHERE lower(username) = lower($1)`,
    [username],
  )
  return rows[0] && toUser(rows[0])
}

/** Fields of a new user. */
export interface NewUser {
  username: string
  email: string | null
  passwordHash: string | null
  role: UserRole
  source: UserSource
}

/** Inserts a user; throws the driver's unique violation (23505) on a taken name or email. */
export async function insertUser(db: Db, user: NewUser, nowMs: number): Promise<UserRecord> {
  const at = new Date(nowMs).toISOString()
  const { rows } = await db.query<UserRow>(
    `INSERT INTO users (id, username, email, password_hash, role, source, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING ${USER_COLUMNS}`,
    [
      newUserScopedId('usr'),
      user.username,
      user.email,
      user.passwordHash,
      user.role,
      user.source,
      at,
    ],
  )
  return toUser(rows[0])
}

/**
 * Creates the first local account as Admin, or returns undefined when a local account
 * already exists. The claim row (primary key `true`) makes concurrent first
 * registrations serialise on one unique key: exactly one commits, the rest see it taken.
 */
export async function registerFirstUser(
  db: Db,
  user: Omit<NewUser, 'role' | 'source'>,
  nowMs: number,
): Promise<UserRecord | undefined> {
  return db
    .transaction(async (tx) => {
      const { rows: local } = await tx.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM users WHERE source = 'local'",
      )
      if (Number(local[0]?.n ?? 0) > 0) return undefined
      const created = await insertUser(tx, { ...user, role: 'Admin', source: 'local' }, nowMs)
      const { affectedRows } = await tx.query(
        `INSERT INTO first_registration (only_row, user_id, at) VALUES (true, $1, $2)
       ON CONFLICT (only_row) DO NOTHING`,
        [created.id, new Date(nowMs).toISOString()],
      )
      if (affectedRows === 0) throw new FirstRegistrationTaken()
      return created
    })
    .catch((err: unknown) => {
      // The loser of a race: its user insert is rolled back with the transaction.
      if (err instanceof FirstRegistrationTaken || pgCode(err) === '23505') return undefined
      throw err
    })
}

class FirstRegistrationTaken extends Error {}

/** The SQLSTATE of a driver error (`23505` unique violation…). */
export function pgCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}

/** Revokes every session, API key and PAT of a user (disable, password reset). */
export async function revokeUserCredentials(
  db: Db,
  userId: string,
  nowMs: number,
  what: { sessions?: boolean; keys?: boolean; pats?: boolean } = {
    sessions: true,
    keys: true,
    pats: true,
  },
): Promise<void> {
  const at = new Date(nowMs).toISOString()
  const tables = [
    what.sessions ? 'user_sessions' : undefined,
    what.keys ? 'user_api_keys' : undefined,
    what.pats ? 'personal_access_tokens' : undefined,
  ].filter((t): t is string => t !== undefined)
  for (const table of tables) {
    await db.query(
      `UPDATE ${table} SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL`,
      [userId, at],
    )
  }
}

/** A new browser session: the cookie values (shown once) and when it ends. */
export interface NewSession {
  id: string
  token: string
  csrf: string
  expiresAt: Date
}

export async function createSession(
  db: Db,
  userId: string,
  options: { nowMs: number; ttlS: number; address: string | undefined },
): Promise<NewSession> {
  const token = newSessionToken()
  const csrf = newCsrfToken()
  const id = newUserScopedId('ses')
  const expiresAt = new Date(options.nowMs + options.ttlS * 1000)
  await db.query(
    `INSERT INTO user_sessions (id, user_id, token_hash, csrf_hash, expires_at, address, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [
      id,
      userId,
      hashToken(token),
      hashToken(csrf),
      expiresAt.toISOString(),
      options.address ?? null,
      new Date(options.nowMs).toISOString(),
    ],
  )
  return { id, token, csrf, expiresAt }
}

/** Rotates a user's API key: the old one stops working in the same transaction. */
export async function rotateApiKey(
  db: Db,
  userId: string,
  nowMs: number,
): Promise<{ id: string; key: string; createdAt: Date }> {
  const key = newApiKey()
  const id = newUserScopedId('uak')
  const at = new Date(nowMs)
  await db.transaction(async (tx) => {
    await revokeUserCredentials(tx, userId, nowMs, { keys: true })
    await tx.query(
      'INSERT INTO user_api_keys (id, user_id, key_hash, created_at) VALUES ($1, $2, $3, $4)',
      [id, userId, hashToken(key), at.toISOString()],
    )
  })
  return { id, key, createdAt: at }
}

export interface PatRow {
  id: string
  user_id: string
  name: string
  scopes: Scope[]
  expires_at: Date | string | null
  created_at: Date | string
  last_used_at: Date | string | null
  revoked_at: Date | string | null
}

export const PAT_COLUMNS =
  'id, user_id, name, scopes, expires_at, created_at, last_used_at, revoked_at'

export function patToWire(row: PatRow): Pat {
  return {
    id: row.id,
    name: row.name,
    scopes: row.scopes,
    expires_at: isoOrNull(row.expires_at),
    created_at: iso(row.created_at),
    last_used_at: isoOrNull(row.last_used_at),
    revoked_at: isoOrNull(row.revoked_at),
  }
}

/** The org-wide PAT policy. */
export async function getPatPolicy(db: Db): Promise<PatPolicy> {
  const { rows } = await db.query<{ pats: PatPolicy }>('SELECT pats FROM org_policy LIMIT 1')
  return rows[0]?.pats ?? 'enabled'
}

export async function setPatPolicy(db: Db, pats: PatPolicy, nowMs: number): Promise<void> {
  await db.query(
    `INSERT INTO org_policy (only_row, pats, updated_at) VALUES (true, $1, $2)
     ON CONFLICT (only_row) DO UPDATE SET pats = EXCLUDED.pats, updated_at = EXCLUDED.updated_at`,
    [pats, new Date(nowMs).toISOString()],
  )
}

/**
 * Why the org policy refuses a PAT with `scopes`, or undefined when it allows it.
 * The message names the policy so the holder knows what to ask an admin for.
 */
export function patPolicyRefusal(policy: PatPolicy, scopes: readonly Scope[]): string | undefined {
  if (policy === 'disabled')
    return 'personal access tokens are disabled by the org policy (pats: disabled)'
  if (policy === 'write-only' && scopes.some((s) => s !== 'write'))
    return 'the org policy allows only write-scoped personal access tokens (pats: write-only)'
  return undefined
}
