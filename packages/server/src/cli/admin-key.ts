import { DbAuditLog } from '../audit/audit-log.js'
import { migrate } from '../db/migrate.js'
import type { Db } from '../db/types.js'
import { offsetClock } from '../clock.js'
import {
  USER_COLUMNS,
  insertUser,
  rotateApiKey,
  toUser,
  type UserRecord,
  type UserRow,
} from '../users/store.js'
import { withDatabase } from './shared.js'
import { ExitError, type CliCommand } from './types.js'

/**
 * The bootstrap admin user: the oldest enabled Admin, or a password-less `admin`
 * user created for the purpose when there is none yet (it does not close
 * `POST /auth/register`, which waits for the first *local* account).
 */
export async function bootstrapAdmin(db: Db, nowMs: number): Promise<UserRecord> {
  const { rows } = await db.query<UserRow>(
    `SELECT ${USER_COLUMNS} FROM users WHERE role = 'Admin' AND NOT disabled
      ORDER BY created_at, id LIMIT 1`,
  )
  if (rows[0]) return toUser(rows[0])
  return insertUser(
    db,
    { username: 'admin', email: null, passwordHash: null, role: 'Admin', source: 'bootstrap' },
    nowMs,
  )
}

/**
 * `hivemind-server admin-key rotate`: a new `hm-…` API key for the bootstrap admin
 * user, stored hashed, printed once. This is not ADMIN_API_KEY (an environment value
 * the server compares on each request); the two are separate credentials.
 */
export const adminKeyCommand: CliCommand = {
  register(cli, io) {
    cli
      .command(
        'admin-key <action>',
        "Rotate the bootstrap admin user's API key: `admin-key rotate`",
      )
      .action((action: string) => {
        if (action !== 'rotate')
          throw new ExitError(2, `unknown admin-key action "${action}" (expected: rotate)`)
        return withDatabase(io.env, async (db, config) => {
          await migrate(db)
          const clock = offsetClock(config.testClockOffsetS)
          const nowMs = clock.now()
          const user = await bootstrapAdmin(db, nowMs)
          const { id, key } = await rotateApiKey(db, user.id, nowMs)
          await new DbAuditLog(db, clock).record({
            action: 'api_key.rotate',
            result: 'success',
            actorKind: 'admin',
            actorId: 'cli',
            target: id,
            details: { user_id: user.id, via: 'hivemind-server admin-key rotate' },
          })
          const lines = [
            `hivemind-server: new API key for admin user "${user.username}" (${user.id}); it is shown only this once:`,
            '',
            `  ${key}`,
            '',
            'The previous key of this user stopped working. Update every place that uses it:',
            `  - workstations: ~/.config/hivemind/env  →  HIVEMIND_API_KEY=${key}`,
            '  - daemons, scripts and MCP clients that send it as X-API-Key (HIVEMIND_API_KEY)',
            'ADMIN_API_KEY (server environment) is a different credential and is unchanged.',
          ]
          for (const line of lines) io.print(line)
        })
      })
  },
}
