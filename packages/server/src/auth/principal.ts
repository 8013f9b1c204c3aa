import type { Scope } from '@hivemind/sdk/schemas'

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
