import { UsageError } from '../errors.js'

const UNIT_MS = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 } as const

/**
 * `--since`: a duration back from `now` (`30m`, `2h`, `1d`, `1w`) or a date (`2026-01-15`,
 * midnight UTC) or an ISO date-time with a zone. Returns epoch milliseconds.
 */
export function parseSince(value: string, now: number): number {
  const v = value.trim()
  const rel = /^(\d+)\s*([mhdw])$/i.exec(v)
  if (rel) {
    const unit = rel[2].toLowerCase() as keyof typeof UNIT_MS
    return now - Number(rel[1]) * UNIT_MS[unit]
  }
  if (/^\d{4}-\d{2}-\d{2}$/.test(v)) {
    const ms = Date.parse(`${v}T00:00:00Z`)
    if (Number.isFinite(ms) && new Date(ms).toISOString().startsWith(v)) return ms
  } else if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/i.test(v)) {
    const ms = Date.parse(v)
    if (Number.isFinite(ms)) return ms
  }
  throw new UsageError(
    `invalid --since "${value}": use a duration like 2h, 1d or 1w, or a date like 2026-01-15`,
  )
}
