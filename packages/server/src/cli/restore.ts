import { resolve } from 'node:path'
import { restoreFromFile } from '../backup/backup.js'
import { describeStorage, withDatabase } from './shared.js'
import { ExitError, type CliCommand } from './types.js'

/** `hivemind-server restore --in FILE`: load a backup into an empty database. */
export const restoreCommand: CliCommand = {
  register(cli, io) {
    cli
      .command('restore', 'Restore a backup into an empty database')
      .option('--in <file>', 'Backup file to read')
      .action((options: { in?: string }) => {
        if (!options.in) throw new ExitError(2, 'restore needs --in FILE')
        const file = resolve(options.in)
        return withDatabase(io.env, async (db, config) => {
          const { tables, rows } = await restoreFromFile(db, file, { secretKey: config.secretKey })
          io.print(
            `hivemind-server: restored ${file} into ${describeStorage(config)} (${tables} tables, ${rows} rows)`,
          )
        })
      })
  },
}
