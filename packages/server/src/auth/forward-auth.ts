import type { Context } from 'koa'
import type { UserRole } from '@hivemind/sdk/schemas'
import type { ServerConfig } from '../config.js'
import type { AppDeps } from '../deps.js'
import { ApiError } from '../errors.js'
import {
  findUserByUsername,
  insertUser,
  pgCode,
  roleScopes,
  type UserRecord,
} from '../users/store.js'
import { AddressList } from './address-list.js'
import { authLimitsFor, tooManyFailures } from './limits.js'
import type { Principal } from './principal.js'

type ForwardAuthConfig = ServerConfig['forwardAuth']

// C0 controls and DEL. Node's parser already refuses most of them; tab and DEL pass.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_RE = /[\u0000-\u001f\u007f]/
const MAX_HEADER_VALUE = 1024

/**
 * Role from the groups header: one pass, first match wins, group names compared
 * case-insensitively and exactly. Admin > User > ReadOnly; no match → User
 * (default-allow, as the product docs state).
 *
 * @example
 * resolveRole(['Staff', 'HiveMind-Admin'], config.forwardAuth) // 'Admin'
 */
export function resolveRole(groups: readonly string[], config: ForwardAuthConfig): UserRole {
  const have = new Set(groups.map((g) => g.trim().toLowerCase()))
  if (have.has(config.groupAdmin.toLowerCase())) return 'Admin'
  if (have.has(config.groupUser.toLowerCase())) return 'User'
  if (have.has(config.groupReadOnly.toLowerCase())) return 'ReadOnly'
  return 'User'
}

/** Forward-auth: resolves the user from proxy headers, only from trusted socket peers. */
export interface ForwardAuth {
  /**
   * The user named by the identity headers, or undefined when none is sent (or the
   * mode is off). Throws 403 for identity headers from an untrusted peer and 400
   * for duplicated or malformed ones.
   */
  resolve(ctx: Context): Promise<Principal | undefined>
}

/**
 * Builds the forward-auth resolver and logs how it is set up. Trust is decided by
 * the TCP peer address only: X-Forwarded-For is whatever the client wrote.
 */
export function createForwardAuth(deps: AppDeps): ForwardAuth {
  const config = deps.config.forwardAuth
  if (!config.enabled) return { resolve: () => Promise.resolve(undefined) }
  const trusted = new AddressList(config.trustedNets)
  if (config.trustedNets.length === 0) {
    deps.logger.warn('HIVEMIND_FORWARD_AUTH=true but HIVEMIND_FORWARD_AUTH_TRUSTED_NETS is empty')
  } else {
    deps.logger.info(
      `forward-auth enabled trusted_nets=[${config.trustedNets.join(',')}] user_header=${config.userHeader}`,
    )
  }
  const names = {
    user: config.userHeader.toLowerCase(),
    email: config.emailHeader.toLowerCase(),
    groups: config.groupsHeader.toLowerCase(),
  }
  const limits = authLimitsFor(deps)

  return {
    async resolve(ctx) {
      const present = Object.values(names).filter((n) => ctx.req.headers[n] !== undefined)
      if (present.length === 0) return undefined
      const peer = ctx.req.socket.remoteAddress ?? ''
      if (!trusted.has(peer)) {
        // Over the failure limit, refuse without another log line and audit row: a
        // flood of injection attempts must not flood the log and the database too.
        const wait = limits.byAddress.retryAfter(ctx.ip)
        if (wait > 0) throw tooManyFailures(wait, 'address')
        deps.logger.warn(
          { peer, headers: present, req_id: ctx.state.requestId as string },
          `rejecting forward-auth headers from untrusted source — possible header-injection attempt peer=${peer}`,
        )
        limits.byAddress.fail(ctx.ip)
        await deps.audit.record({
          action: 'auth.forward_auth',
          result: 'failure',
          actorKind: 'anonymous',
          address: ctx.ip,
          details: { reason: 'untrusted_peer', peer, headers: present },
        })
        throw new ApiError(
          403,
          'untrusted_forward_auth_source',
          'forward-auth headers are accepted only from trusted proxies',
        )
      }
      const username = single(ctx, config.userHeader)
      if (username === undefined || username === '') return undefined
      if (username.includes(',') || username.length > 128) {
        throw badHeader(config.userHeader, 'is not a single user name')
      }
      const emailRaw = single(ctx, config.emailHeader)
      const email = emailRaw && /^[^\s@]+@[^\s@]+$/.test(emailRaw) ? emailRaw : null
      const groupsRaw = single(ctx, config.groupsHeader) ?? ''
      const groups = groupsRaw.split(config.groupsDelim).filter((g) => g.trim() !== '')
      const role = resolveRole(groups, config)
      const user = await provision(deps, ctx, username, email, role)
      if (user.disabled) {
        throw new ApiError(403, 'user_disabled', `user ${user.username} is disabled`)
      }
      return {
        kind: 'user',
        id: user.id,
        name: user.username,
        role: user.role,
        scopes: roleScopes(user.role),
        via: 'forward_auth',
        expiresAt: null,
      }
    },
  }
}

/** The one value of an identity header; a repeated or malformed header is refused. */
function single(ctx: Context, header: string): string | undefined {
  const lower = header.toLowerCase()
  let count = 0
  const raw = ctx.req.rawHeaders
  for (let i = 0; i < raw.length; i += 2) if (raw[i].toLowerCase() === lower) count++
  if (count === 0) return undefined
  // Node joins repeats with ", ": "admin, alice" must never become a user.
  if (count > 1) throw badHeader(header, 'was sent more than once')
  const value = ctx.req.headers[lower]
  if (typeof value !== 'string') throw badHeader(header, 'was sent more than once')
  if (CONTROL_RE.test(value)) throw badHeader(header, 'contains control characters')
  if (value.length > MAX_HEADER_VALUE) throw badHeader(header, 'is too long')
  return value.trim()
}

function badHeader(header: string, what: string): ApiError {
  return new ApiError(400, 'invalid_forward_auth_header', `forward-auth header ${header} ${what}`)
}

/**
 * Finds or creates the user, and brings the stored role in line with the groups on
 * every request, so a group change at the IdP takes effect at once (no sync cache).
 */
async function provision(
  deps: AppDeps,
  ctx: Context,
  username: string,
  email: string | null,
  role: UserRole,
): Promise<UserRecord> {
  const nowMs = deps.clock.now()
  let user = await findUserByUsername(deps.db, username)
  if (!user) {
    try {
      user = await insertUser(
        deps.db,
        { username, email, passwordHash: null, role, source: 'forward_auth' },
        nowMs,
      )
    } catch (err) {
      if (pgCode(err) !== '23505') throw err
      // A concurrent first request provisioned the same user, or the email is taken.
      user =
        (await findUserByUsername(deps.db, username)) ??
        (await insertUser(
          deps.db,
          { username, email: null, passwordHash: null, role, source: 'forward_auth' },
          nowMs,
        ))
    }
    await deps.audit.record({
      action: 'user.provision',
      result: 'success',
      actorKind: 'user',
      actorId: user.id,
      target: user.id,
      address: ctx.ip,
      details: { username: user.username, role: user.role, source: 'forward_auth' },
    })
    return user
  }
  if (user.role !== role) {
    await deps.db.query('UPDATE users SET role = $2, updated_at = $3 WHERE id = $1', [
      user.id,
      role,
      new Date(nowMs).toISOString(),
    ])
    await deps.audit.record({
      action: 'user.role_change',
      result: 'success',
      actorKind: 'user',
      actorId: user.id,
      target: user.id,
      address: ctx.ip,
      details: { from: user.role, to: role, reason: 'forward_auth_groups' },
    })
    user = { ...user, role }
  }
  return user
}
