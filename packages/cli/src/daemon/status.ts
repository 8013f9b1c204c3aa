import { z } from 'zod'

/**
 * What a daemon reports about itself: `hivemind status --json`, the control socket's
 * `GET /status`, the MCP `status` tool's structured content, and the heartbeat file
 * `daemon.json` that `hivemind health` reads. One shape for all four.
 */
export const DaemonStatus = z.object({
  pid: z.number().int(),
  version: z.string(),
  state_dir: z.string(),
  endpoint: z.string().nullable(),
  /** `running`, `paused` (subject token exhausted), `stopping`, `stopped`. */
  state: z.enum(['starting', 'running', 'paused', 'stopping', 'stopped']),
  started_at: z.string(),
  /** Rewritten every few seconds while the daemon's loop is alive. */
  heartbeat_at: z.string(),
  files_watched: z.number().int(),
  watch_roots: z.array(z.object({ agent: z.string(), root: z.string() })),
  pending: z.object({
    /** Session files with records the server has not acknowledged yet. */
    files: z.number().int(),
    /** Parsed events not acknowledged yet (known once a file was read). */
    events: z.number().int(),
    /** Bytes past the acknowledged offsets. */
    bytes: z.number().int(),
  }),
  uploaded: z.object({
    /** Sessions with events read and sent since the daemon started. */
    sessions: z.number().int(),
    batches: z.number().int(),
    events: z.number().int(),
    accepted: z.number().int(),
    duplicates: z.number().int(),
    rejected: z.number().int(),
  }),
  last_upload_at: z.string().nullable(),
  last_error: z
    .object({ message: z.string(), hint: z.string().nullable(), at: z.string() })
    .nullable(),
  /** Since when uploads (or getting a token) have failed without a success in between. */
  failing_since: z.string().nullable(),
  paused: z.boolean(),
  pause_reason: z.string().nullable(),
  token: z
    .object({
      source: z.string(),
      kind: z.enum(['bearer', 'api-key']),
      expires_at: z.string().nullable(),
      state: z.string(),
    })
    .nullable(),
  /** Set when the daemon stopped: whether the final catch-up delivered everything. */
  drained: z.boolean().nullable(),
  log_file: z.string(),
  socket: z.string(),
})
export type DaemonStatus = z.infer<typeof DaemonStatus>
