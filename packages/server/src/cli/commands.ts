import { adminKeyCommand } from './admin-key.js'
import { backupCommand } from './backup.js'
import { explainCommand } from './explain.js'
import { keysCommand } from './keys.js'
import { migrateCommand } from './migrate.js'
import { restoreCommand } from './restore.js'
import { serveCommand } from './serve.js'
import type { CliCommand } from './types.js'

/**
 * Every `hivemind-server` sub-command, one file each under `src/cli/`. To add one
 * (e.g. `explain`), write `src/cli/<name>.ts` exporting a CliCommand and list it here.
 */
export const commands: CliCommand[] = [
  serveCommand,
  migrateCommand,
  keysCommand,
  backupCommand,
  restoreCommand,
  explainCommand,
  adminKeyCommand,
]
