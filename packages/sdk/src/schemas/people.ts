import { z } from 'zod'
import { pageOf } from './admin.js'
import { Scope, TokenExpiry } from './names.js'

/** Roles of people, as the product's SSO docs name them. */
export const UserRole = z.enum(['Admin', 'User', 'ReadOnly'])
export type UserRole = z.infer<typeof UserRole>

/** Shortest password accepted (product docs: "password ≥ 12 chars"). */
export const PASSWORD_MIN_LENGTH = 12
// Argon2 hashes any length; the cap only bounds the work one request can cause.
const PASSWORD_MAX_LENGTH = 1024

/** A new password: at least 12 characters. */
export const Password = z
  .string()
  .min(PASSWORD_MIN_LENGTH, `must be at least ${PASSWORD_MIN_LENGTH} characters`)
  .max(PASSWORD_MAX_LENGTH, `must be at most ${PASSWORD_MAX_LENGTH} characters`)

/** Usernames: what people type and what shows up in logs and `/me`. */
export const Username = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$/,
    "must be 1-128 characters: letters, digits, '.', '_', '@', '+' or '-', starting with a letter or digit",
  )

const Email = z.email().max(320)

/**
 * `POST /auth/register`: works only while no local account exists; the first user is Admin.
 *
 * @example
 * { "username": "ada", "email": "ada@example.com", "password": "correct horse battery" }
 */
export const RegisterRequest = z.strictObject({
  username: Username,
  email: Email,
  password: Password,
})
export type RegisterRequest = z.input<typeof RegisterRequest>

/**
 * `POST /auth/login`. Answers 204 with `Set-Cookie: hm_session=hms-…` and `hm_csrf`.
 *
 * @example
 * { "email": "ada@example.com", "password": "correct horse battery" }
 */
export const LoginRequest = z.strictObject({
  email: z.string().min(1).max(320),
  // Not `Password`: a login must not reveal the rule, and old passwords may predate it.
  password: z.string().min(1).max(PASSWORD_MAX_LENGTH),
})
export type LoginRequest = z.input<typeof LoginRequest>

/** A user as the API returns it (never a password hash). */
export const User = z.object({
  id: z.string().startsWith('usr_'),
  username: z.string(),
  email: z.string().nullable(),
  role: UserRole,
  /** `local` (password), `forward_auth` (provisioned from proxy headers) or `bootstrap`. */
  source: z.enum(['local', 'forward_auth', 'bootstrap']),
  disabled: z.boolean(),
  created_at: z.iso.datetime(),
  updated_at: z.iso.datetime(),
  last_login_at: z.iso.datetime().nullable(),
})
export type User = z.infer<typeof User>

export const UserList = pageOf(User)
export type UserList = z.infer<typeof UserList>

/**
 * `POST /api/v1/users` (Admin).
 *
 * @example
 * { "username": "bob", "email": "bob@example.com", "password": "…12+ chars…", "role": "User" }
 */
export const UserCreateRequest = z.strictObject({
  username: Username,
  email: Email,
  password: Password,
  /** @default "User" */
  role: UserRole.default('User'),
})
export type UserCreateRequest = z.input<typeof UserCreateRequest>

/**
 * `PATCH /api/v1/users/{id}` (Admin): change role, disable/enable, reset password.
 * Disabling revokes the user's sessions, API keys and PATs at once.
 */
export const UserPatchRequest = z.strictObject({
  role: UserRole.optional(),
  disabled: z.boolean().optional(),
  /** New password; the user's sessions are revoked. */
  password: Password.optional(),
})
export type UserPatchRequest = z.input<typeof UserPatchRequest>

/** `POST /api/v1/me/password`: a user changes their own password. */
export const PasswordChangeRequest = z.strictObject({
  current_password: z.string().min(1).max(PASSWORD_MAX_LENGTH),
  new_password: Password,
})
export type PasswordChangeRequest = z.input<typeof PasswordChangeRequest>

/** `POST /api/v1/me/api-key/rotate`: the new `hm-…` key, shown once. */
export const ApiKeyRotated = z.object({
  id: z.string().startsWith('uak_'),
  api_key: z.string().regex(/^hm-[A-Za-z0-9]{64}$/),
  created_at: z.iso.datetime(),
})
export type ApiKeyRotated = z.infer<typeof ApiKeyRotated>

/**
 * `POST /api/v1/tokens`: mint a personal access token acting as the caller.
 *
 * @example
 * { "name": "laptop daemon", "expires_in": "90d", "scopes": ["write"] }
 */
export const PatCreateRequest = z.strictObject({
  name: z.string().min(1).max(100).default('token'),
  /** @default "90d" */
  expires_in: TokenExpiry.default('90d'),
  /** @default ["read", "write"] */
  scopes: z
    .array(Scope)
    .min(1, 'must name at least one scope')
    .refine((s) => new Set(s).size === s.length, 'must not repeat a scope')
    .default(['read', 'write']),
})
export type PatCreateRequest = z.input<typeof PatCreateRequest>

/** A PAT as listed (never with its secret). */
export const Pat = z.object({
  id: z.string().startsWith('pat_'),
  name: z.string(),
  scopes: z.array(Scope),
  expires_at: z.iso.datetime().nullable(),
  created_at: z.iso.datetime(),
  last_used_at: z.iso.datetime().nullable(),
  revoked_at: z.iso.datetime().nullable(),
})
export type Pat = z.infer<typeof Pat>

/** Response of PAT creation: the only time `token` is ever shown. */
export const PatCreated = Pat.extend({ token: z.string().regex(/^hmpat_[A-Za-z0-9_-]{43,}$/) })
export type PatCreated = z.infer<typeof PatCreated>

export const PatList = pageOf(Pat)
export type PatList = z.infer<typeof PatList>

/** What the org allows for PATs: all, only `write`-scoped ones, or none. */
export const PatPolicy = z.enum(['enabled', 'write-only', 'disabled'])
export type PatPolicy = z.infer<typeof PatPolicy>

/** `GET/PUT /api/v1/org/policy` (Admin). */
export const OrgPolicy = z.strictObject({ pats: PatPolicy })
export type OrgPolicy = z.infer<typeof OrgPolicy>
