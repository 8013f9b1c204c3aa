import { createHash } from 'node:crypto'

/**
 * A short, non-reversible handle for a secret, safe for logs:
 * `sha256:1a2b3c4d5e6f` (first 12 hex chars of its SHA-256).
 */
export function fingerprint(secret: string): string {
  return `sha256:${createHash('sha256').update(secret).digest('hex').slice(0, 12)}`
}
