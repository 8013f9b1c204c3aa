import { hash, verify } from '@node-rs/argon2'

// OWASP Password Storage Cheat Sheet, Argon2id option 2: m=19 MiB, t=2, p=1.
// `Algorithm` is a const enum, which verbatimModuleSyntax cannot import; 2 is Argon2id.
const ARGON2ID = 2
const PARAMS = {
  algorithm: ARGON2ID,
  memoryCost: 19_456,
  timeCost: 2,
  parallelism: 1,
} as const

/**
 * Hashes a password with Argon2id (OWASP parameters) into a PHC string.
 *
 * @example
 * const stored = await hashPassword('correct horse battery')
 */
export function hashPassword(password: string): Promise<string> {
  return hash(password, PARAMS)
}

let dummy: Promise<string> | undefined

/**
 * Checks `password` against a stored PHC string. With no stored hash (unknown
 * user, or one without a password) it verifies against a dummy hash anyway, so
 * both cases cost the same Argon2 work as a wrong password and cannot be told
 * apart by timing.
 *
 * @example
 * const ok = await verifyPassword(row?.password_hash ?? null, input.password)
 */
export async function verifyPassword(stored: string | null, password: string): Promise<boolean> {
  dummy ??= hashPassword('hivemind-dummy-password-for-equal-timing')
  const target = stored ?? (await dummy)
  let ok: boolean
  try {
    ok = await verify(target, password)
  } catch {
    // A corrupt stored hash is a failed login, not a 500.
    ok = false
  }
  return ok && stored != null
}
