import { countServiceAccounts } from '../service-accounts/store.js'
import { createServer } from '../server.js'
import { VERSION } from '../version.js'
import { describeStorage, migrationLine } from './shared.js'
import type { CliCommand, CliIo } from './types.js'

/** What `serve` knows when it decides how to tell an operator to bootstrap. */
export interface BootstrapState {
  url: string
  hasAdminKey: boolean
  /** Users in the database (local or forward-auth). */
  users: number
  forwardAuth: boolean
}

/**
 * The lines `serve` prints while the server has no service account: how to get a
 * first admin (register, the IdP, or ADMIN_API_KEY) and then a service account.
 * Empty once a service account exists.
 */
export function bootstrapHint(state: BootstrapState): string[] {
  const curl =
    `curl -sS -X POST ${state.url}/api/v1/service-accounts -H "X-API-Key: $ADMIN_API_KEY" ` +
    `-H 'Content-Type: application/json' -d '{"name":"ci","scopes":["write"]}'`
  if (state.hasAdminKey) {
    return ['hivemind-server: no service accounts yet; create the first one with:', `  ${curl}`]
  }
  if (state.users > 0) {
    return [
      'hivemind-server: no service accounts yet; an Admin creates one with their API key (hm-…) in place of $ADMIN_API_KEY:',
      `  ${curl}`,
    ]
  }
  const adminKey =
    'restart with an admin key (keep it secret):  export ADMIN_API_KEY=$(openssl rand -hex 32)'
  const firstAdmin = state.forwardAuth
    ? [
        '  1. sign in through your identity provider as a member of the HIVEMIND_GROUP_ADMIN group (users are created on first sight),',
        `     or ${adminKey}`,
      ]
    : [
        `  1. register the first account, which becomes Admin:  curl -sS -X POST ${state.url}/auth/register -H 'Content-Type: application/json' -d '{"username":"admin","email":"admin@example.com","password":"<at least 12 characters>"}'`,
        `     or ${adminKey}`,
      ]
  return [
    'hivemind-server: no ADMIN_API_KEY is set and there are no users or service accounts yet. To bootstrap:',
    ...firstAdmin,
    `  2. create a service account (with an Admin's hm-… API key, or the admin key):  ${curl}`,
  ]
}

async function serve(io: CliIo): Promise<void> {
  const server = await createServer({
    env: io.env,
    onMigration: (name, i, n) => io.print(migrationLine(name, i, n)),
  })
  try {
    const { url } = await server.listen()
    const { config } = server.deps
    io.print(
      `hivemind-server ${VERSION} listening on ${url} (issuer and audience ${config.publicUrl}; ${describeStorage(config)})`,
    )
    if ((await countServiceAccounts(server.deps.db)) === 0) {
      const { rows } = await server.deps.db.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM users',
      )
      const hint = bootstrapHint({
        url,
        hasAdminKey: Boolean(config.adminApiKey),
        users: Number(rows[0]?.n ?? 0),
        forwardAuth: config.forwardAuth.enabled,
      })
      for (const line of hint) io.print(line)
    }
    const signal = await io.stopSignal()
    server.deps.logger.info({ signal }, 'shutting down')
  } finally {
    await server.close()
  }
}

/** `hivemind-server serve` (the default): migrate, then listen until SIGINT/SIGTERM. */
export const serveCommand: CliCommand = {
  register(cli, io) {
    cli.command('serve', 'Run the server (default)').action(() => serve(io))
  },
}
