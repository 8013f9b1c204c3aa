import { countServiceAccounts } from '../service-accounts/store.js'
import { createServer } from '../server.js'
import { VERSION } from '../version.js'
import { describeStorage, migrationLine } from './shared.js'
import type { CliCommand, CliIo } from './types.js'

/** The lines `serve` prints when nobody can administer the server yet. */
export function bootstrapHint(options: { url: string; hasAdminKey: boolean }): string[] {
  const curl =
    `curl -sS -X POST ${options.url}/api/v1/service-accounts -H "X-API-Key: $ADMIN_API_KEY" ` +
    `-H 'Content-Type: application/json' -d '{"name":"ci","scopes":["write"]}'`
  if (options.hasAdminKey) {
    return ['hivemind-server: no service accounts yet; create the first one with:', `  ${curl}`]
  }
  return [
    'hivemind-server: no ADMIN_API_KEY is set and there are no service accounts yet. To bootstrap:',
    '  1. restart with an admin key (keep it secret):  export ADMIN_API_KEY=$(openssl rand -hex 32)',
    `  2. create a service account:  ${curl}`,
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
      for (const line of bootstrapHint({ url, hasAdminKey: Boolean(config.adminApiKey) })) {
        io.print(line)
      }
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
