import type { Scope } from '@hivemind/sdk/schemas'

/** Roles of people, as the product's SSO docs name them. */
export type Role = 'Admin' | 'User' | 'ReadOnly'

/** Who a request acts as, set on `ctx.state.principal` by the auth middleware. */
export type Principal =
  | {
      kind: 'admin'
      id: 'admin'
      name: 'admin'
      scopes: Scope[]
      via: 'admin_api_key'
    }
  | {
      kind: 'service_account'
      id: string
      name: string
      scopes: Scope[]
      via: 'jwt' | 'static_token'
      /** Token id (static token) or jti (JWT). */
      credentialId: string
      expiresAt: Date | null
    }
  | {
      kind: 'user'
      /** `usr_…` */
      id: string
      /** Username. */
      name: string
      role: Role
      /** The intersection of the role's scopes and the credential's (a PAT's) scopes. */
      scopes: Scope[]
      via: 'session' | 'api_key' | 'pat' | 'forward_auth'
      /** Session id, API key id or PAT id; absent for forward-auth. */
      credentialId?: string
      expiresAt: Date | null
    }

/**
 * The owner that uploads are stored under: the service account, or the user behind
 * a session, API key or PAT (a PAT's sessions land in its user's account).
 */
export function ownerOf(principal: Principal): { kind: Principal['kind']; id: string } {
  return { kind: principal.kind, id: principal.id }
}
