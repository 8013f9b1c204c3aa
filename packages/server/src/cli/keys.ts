import { pino } from 'pino'
import { offsetClock } from '../clock.js'
import { migrate } from '../db/migrate.js'
import { StartupError } from '../errors.js'
import { KeyDecryptionError } from '../keys/encryption.js'
import { DbKeyStore, RETIRED_KEY_GRACE_S } from '../keys/key-store.js'
import { withDatabase } from './shared.js'
import { ExitError, type CliCommand } from './types.js'

/** `hivemind-server keys rotate`: add a new active signing key; old ones stay published. */
export const keysCommand: CliCommand = {
  register(cli, io) {
    cli.command('keys <action>', 'Manage signing keys: `keys rotate`').action((action: string) => {
      if (action !== 'rotate')
        throw new ExitError(2, `unknown keys action "${action}" (expected: rotate)`)
      return withDatabase(io.env, async (db, config) => {
        await migrate(db)
        const clock = offsetClock(config.testClockOffsetS)
        const keys = await DbKeyStore.open({
          db,
          config,
          clock,
          logger: pino({ level: 'warn' }),
        }).catch((err: unknown) => {
          if (err instanceof KeyDecryptionError) throw new StartupError(err.message, { cause: err })
          throw err
        })
        const { kid } = await keys.rotate()
        const until = new Date(clock.now() + RETIRED_KEY_GRACE_S * 1000).toISOString()
        io.print(
          `hivemind-server: signing key ${kid} is now active; previous keys stay published until ${until}. Running servers switch within a minute.`,
        )
      })
    })
  },
}
