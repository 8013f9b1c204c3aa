import { createCipheriv, createDecipheriv, randomBytes, scrypt } from 'node:crypto'
import { promisify } from 'node:util'

const scryptAsync = promisify(scrypt) as (
  password: string,
  salt: Buffer,
  keylen: number,
  options: { N: number; r: number; p: number; maxmem: number },
) => Promise<Buffer>

// scrypt, not HKDF: HIVEMIND_SECRET_KEY may be a passphrase rather than 32 random bytes.
// N=2^15 costs ~100 ms once per key load, which the in-memory key cache amortises.
const SCRYPT = { N: 1 << 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 }
const PREFIX = 'v1'

/** The private key could not be decrypted: wrong or missing HIVEMIND_SECRET_KEY. */
export class KeyDecryptionError extends Error {
  readonly code = 'ERR_KEY_DECRYPTION'
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'KeyDecryptionError'
  }
}

const derived = new Map<string, Promise<Buffer>>()

function deriveKey(secret: string, salt: Buffer): Promise<Buffer> {
  // The cache key is not secret-bearing on its own, but keep it keyed by both so a
  // changed secret never reuses a stale derivation.
  const id = `${salt.toString('base64url')}:${secret.length}:${secret}`
  let key = derived.get(id)
  if (!key) {
    key = scryptAsync(secret, salt, 32, SCRYPT)
    derived.set(id, key)
  }
  return key
}

/**
 * Encrypts `plaintext` with AES-256-GCM under a key derived from `secret`.
 * `aad` (the kid) binds the ciphertext to its row, so rows cannot be swapped.
 * Output: `v1.<salt>.<iv>.<tag>.<ciphertext>`, base64url parts.
 */
export async function encryptSecret(
  secret: string,
  plaintext: string,
  aad: string,
): Promise<string> {
  const salt = randomBytes(16)
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', await deriveKey(secret, salt), iv)
  cipher.setAAD(Buffer.from(aad, 'utf8'))
  const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
  const tag = cipher.getAuthTag()
  return [PREFIX, salt, iv, tag, ct]
    .map((p) => (typeof p === 'string' ? p : p.toString('base64url')))
    .join('.')
}

/** Reverses `encryptSecret`; throws KeyDecryptionError for a wrong secret or a tampered value. */
export async function decryptSecret(secret: string, sealed: string, aad: string): Promise<string> {
  const parts = sealed.split('.')
  if (parts.length !== 5 || parts[0] !== PREFIX) {
    throw new KeyDecryptionError('encrypted signing key has an unknown format')
  }
  const [salt, iv, tag, ct] = parts.slice(1).map((p) => Buffer.from(p, 'base64url')) as [
    Buffer,
    Buffer,
    Buffer,
    Buffer,
  ]
  try {
    const decipher = createDecipheriv('aes-256-gcm', await deriveKey(secret, salt), iv)
    decipher.setAAD(Buffer.from(aad, 'utf8'))
    decipher.setAuthTag(tag)
    return Buffer.concat([decipher.update(ct), decipher.final()]).toString('utf8')
  } catch (cause) {
    throw new KeyDecryptionError(
      `signing key ${aad} cannot be decrypted: HIVEMIND_SECRET_KEY is not the key it was encrypted with`,
      { cause },
    )
  }
}
