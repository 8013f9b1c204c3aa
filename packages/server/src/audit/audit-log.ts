import type { Logger } from 'pino'
import type { Clock } from '../clock.js'
import type { Db } from '../db/types.js'
import type { AuditEvent, AuditLog } from './types.js'

/**
 * Audit records in the `audit_log` table. A failed write is logged and swallowed:
 * losing an audit line must not turn an allowed request into an error.
 */
export class DbAuditLog implements AuditLog {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly logger?: Logger,
  ) {}

  async record(event: AuditEvent): Promise<void> {
    try {
      await this.db.query(
        `INSERT INTO audit_log (at, action, result, actor_kind, actor_id, target, address, details)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [
          new Date(this.clock.now()).toISOString(),
          event.action,
          event.result,
          event.actorKind ?? null,
          event.actorId ?? null,
          event.target ?? null,
          event.address ?? null,
          JSON.stringify(event.details ?? {}),
        ],
      )
    } catch (err) {
      this.logger?.error({ err, action: event.action }, 'audit write failed')
    }
  }
}
