import { resolve } from 'node:path'
import { backupToFile } from '../backup/backup.js'
import { withDatabase } from './shared.js'
import { ExitError, type CliCommand } from './types.js'

/** `hivemind-server backup --out FILE`: logical dump of every table (PGlite or PostgreSQL). */
export const backupCommand: CliCommand = {
  register(cli, io) {
    cli
      .command('backup', 'Write a backup of the database to a file (.gz to compress)')
      .option('--out <file>', 'Backup file to write')
      .action((options: { out?: string }) => {
        if (!options.out) throw new ExitError(2, 'backup needs --out FILE')
        const out = resolve(options.out)
        return withDatabase(io.env, async (db, config) => {
          const { tables, rows } = await backupToFile(db, out)
          const { rows: enc } = await db.query('SELECT 1 FROM signing_keys WHERE encrypted LIMIT 1')
          io.print(`hivemind-server: wrote ${out} (${tables} tables, ${rows} rows)`)
          io.print(
            enc.length
              ? 'hivemind-server: its signing keys are encrypted: keep HIVEMIND_SECRET_KEY with this backup, a restore needs it'
              : config.secretKey
                ? 'hivemind-server: keep HIVEMIND_SECRET_KEY with this backup'
                : 'hivemind-server: its signing keys are NOT encrypted (HIVEMIND_SECRET_KEY unset): store this file as a secret',
          )
        })
      })
  },
}
