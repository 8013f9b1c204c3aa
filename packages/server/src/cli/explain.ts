import { readFile } from 'node:fs/promises'
import { pino } from 'pino'
import { offsetClock } from '../clock.js'
import { createReplayStore } from '../exchange/create-replay-store.js'
import { ExchangePipeline } from '../exchange/pipeline.js'
import { withDatabase } from './shared.js'
import { ExitError, type CliCommand } from './types.js'

/**
 * `hivemind-server explain --token-file F [--scope S] [--json]`: a dry run of the
 * exchange against this server's database and replay store. Prints each check
 * with pass/fail and the claims that decided it; never consumes the replay key.
 * Exit 0 when a real exchange would succeed now, 1 otherwise.
 */
export const explainCommand: CliCommand = {
  register(cli, io) {
    cli
      .command('explain', 'Dry-run a token exchange and print every check')
      .option('--token-file <file>', 'File holding the ID token (subject token)')
      .option('--scope <scopes>', 'Scopes to request (space-separated)')
      .option('--json', 'Print the result as JSON')
      .action((opts: { tokenFile?: string; scope?: string; json?: boolean }) => {
        if (!opts.tokenFile) throw new ExitError(2, 'explain needs --token-file FILE')
        const file = opts.tokenFile
        return withDatabase(io.env, async (db, config) => {
          let token: string
          try {
            token = (await readFile(file, 'utf8')).trim()
          } catch (err) {
            throw new ExitError(2, `cannot read ${file}: ${(err as Error).message}`)
          }
          const logger = pino({ level: 'silent' })
          const replay = await createReplayStore(config, db, logger)
          try {
            const pipeline = new ExchangePipeline({
              config,
              db,
              clock: offsetClock(config.testClockOffsetS),
              replay,
              logger,
            })
            const r = await pipeline.run({ subjectToken: token, scope: opts.scope }, 'explain')
            if (opts.json) {
              io.print(
                JSON.stringify({ result: r.ok ? 'allow' : 'deny', checks: r.checks }, null, 2),
              )
            } else {
              for (const c of r.checks) {
                io.print(
                  `${c.ok ? 'PASS' : 'FAIL'}  ${c.name}: ${c.detail}${c.ok ? '' : ` [${c.hivemind_error}]`}`,
                )
                if (c.claims && Object.keys(c.claims).length > 0) {
                  io.print(`      claims: ${JSON.stringify(c.claims)}`)
                }
              }
              io.print(
                r.ok
                  ? `result: allow (service account ${r.binding?.account.id}, ${r.ttlSeconds} s)`
                  : `result: deny (${r.failure?.hivemindError})`,
              )
            }
            if (!r.ok)
              throw new ExitError(
                1,
                `hivemind-server: the exchange would be denied (${r.failure?.hivemindError})`,
              )
          } finally {
            await replay.close()
          }
        })
      })
  },
}
