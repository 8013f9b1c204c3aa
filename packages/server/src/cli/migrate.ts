import { migrate } from '../db/migrate.js'
import { migrationLine, withDatabase } from './shared.js'
import type { CliCommand } from './types.js'

/** `hivemind-server migrate`: apply pending migrations and exit (serve also does it). */
export const migrateCommand: CliCommand = {
  register(cli, io) {
    cli.command('migrate', 'Apply pending database migrations and exit').action(() =>
      withDatabase(io.env, async (db) => {
        const r = await migrate(db, {
          onProgress: (name, i, n) => io.print(migrationLine(name, i, n)),
        })
        io.print(
          `hivemind-server: database is up to date (${r.applied.length} applied now, ${r.alreadyApplied} before)`,
        )
      }),
    )
  },
}
