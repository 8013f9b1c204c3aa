/** Timestamps from PGlite and node-postgres arrive as Date (or string); the API speaks ISO 8601 UTC. */
export function iso(value: Date | string): string {
  return new Date(value).toISOString()
}

export function isoOrNull(value: Date | string | null): string | null {
  return value == null ? null : iso(value)
}
