/** One audit record. Never put a secret in `details`. */
export interface AuditEvent {
  /** e.g. `token.exchange`, `service_account.create`. */
  action: string
  result: 'success' | 'failure'
  actorKind?: 'admin' | 'service_account' | 'user' | 'anonymous'
  actorId?: string | undefined
  /** What was acted on, e.g. `sa_…`. */
  target?: string | undefined
  /** Client address. */
  address?: string | undefined
  details?: Record<string, unknown>
}

export interface AuditLog {
  record(event: AuditEvent): Promise<void>
  /** Writes whatever is still queued; `server.close()` calls it before closing the database. */
  flush?(): Promise<void>
}
