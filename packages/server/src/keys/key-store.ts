import { randomBytes, randomUUID } from 'node:crypto'
import {
  SignJWT,
  calculateJwkThumbprint,
  decodeProtectedHeader,
  errors as joseErrors,
  exportJWK,
  generateKeyPair,
  importJWK,
  jwtVerify,
  type CryptoKey,
  type JWK,
} from 'jose'
import type { Logger } from 'pino'
import { TOKEN_TTL_BOUNDS } from '@hivemind/sdk/schemas'
import { nowSeconds, type Clock } from '../clock.js'
import type { ServerConfig } from '../config.js'
import type { Db } from '../db/types.js'
import { InvalidTokenError } from '../errors.js'
import { decryptSecret, encryptSecret, KeyDecryptionError } from './encryption.js'
import type { HiveMindJwtClaims, KeyStore } from './types.js'

type Alg = 'ES256' | 'EdDSA'

/** JWT `typ` of HiveMind access tokens (RFC 9068), so no other JWT kind is mistaken for one. */
export const HIVEMIND_JWT_TYP = 'at+jwt'

// Other replicas may rotate; re-read the active key at least this often.
const ACTIVE_KEY_REFRESH_MS = 60_000
// Unknown-kid reloads are deduplicated and spaced so a flood of junk kids costs one query a second.
const UNKNOWN_KID_RELOAD_MS = 1_000
/** Replicas skew a little; our own tokens get only this much leeway. */
const OWN_TOKEN_LEEWAY_S = 5
/**
 * A retired key stays published and accepted for the longest token it can have
 * signed (24 h), plus the window in which another replica may still sign with it
 * before noticing the rotation, plus slack for clock skew.
 */
export const RETIRED_KEY_GRACE_S = TOKEN_TTL_BOUNDS.maxSeconds + ACTIVE_KEY_REFRESH_MS / 1000 + 300

interface KeyRow {
  kid: string
  alg: Alg
  public_jwk: JWK | string
  private_key: string
  encrypted: boolean
  activated_at: Date | string | null
  retired_at: Date | string | null
  not_after: Date | string | null
}

interface PublicKey {
  kid: string
  alg: Alg
  jwk: JWK
  key: CryptoKey
  /** Epoch ms; null while active. */
  notAfter: number | null
  active: boolean
}

interface ActiveKey {
  kid: string
  alg: Alg
  privateKey: CryptoKey
  loadedAt: number
}

export interface DbKeyStoreOptions {
  db: Db
  config: Pick<ServerConfig, 'publicUrl' | 'secretKey' | 'signingAlg'>
  clock: Clock
  logger?: Logger
}

const toMs = (v: Date | string | null): number | null => (v == null ? null : new Date(v).getTime())

/**
 * Signing keys kept in the `signing_keys` table. The private half is sealed with
 * AES-256-GCM when HIVEMIND_SECRET_KEY is set. Keys are cached in memory; an
 * unknown `kid` triggers a reload, because another replica may have rotated.
 *
 * @example
 * const keys = await DbKeyStore.open({ db, config, clock })
 * const { token } = await keys.sign({ sub: 'sa_123', scope: 'write' }, 3600)
 * const claims = await keys.verify(token)
 * @see https://www.rfc-editor.org/rfc/rfc9068 JWT profile for OAuth 2.0 access tokens
 */
export class DbKeyStore implements KeyStore {
  readonly #db: Db
  readonly #config: DbKeyStoreOptions['config']
  readonly #clock: Clock
  readonly #logger: Logger | undefined
  #publicKeys = new Map<string, PublicKey>()
  #publicLoadedAt = 0
  #reloading: Promise<void> | undefined
  #active: ActiveKey | undefined

  private constructor(options: DbKeyStoreOptions) {
    this.#db = options.db
    this.#config = options.config
    this.#clock = options.clock
    this.#logger = options.logger
  }

  /**
   * Opens the store: creates the first key when the table is empty and loads the
   * active private key, so a wrong HIVEMIND_SECRET_KEY fails at startup, not at the
   * first exchange.
   */
  static async open(options: DbKeyStoreOptions): Promise<DbKeyStore> {
    const store = new DbKeyStore(options)
    await store.#ensureActiveKey()
    await store.#loadActive()
    await store.#reloadPublic()
    return store
  }

  async sign(
    claims: { sub: string; scope: string } & Record<string, unknown>,
    ttlSeconds: number,
  ): Promise<{ token: string; jti: string; exp: number; kid: string }> {
    // The retired-key grace period assumes no token outlives 24 h.
    if (
      !Number.isInteger(ttlSeconds) ||
      ttlSeconds <= 0 ||
      ttlSeconds > TOKEN_TTL_BOUNDS.maxSeconds
    ) {
      throw new RangeError(`ttlSeconds must be an integer in 1..${TOKEN_TTL_BOUNDS.maxSeconds}`)
    }
    const active = await this.#activeKey()
    const { iss: _iss, aud: _aud, iat: _iat, exp: _exp, nbf: _nbf, jti: _jti, ...rest } = claims
    const iat = nowSeconds(this.#clock)
    const exp = iat + ttlSeconds
    const jti = randomUUID()
    const token = await new SignJWT(rest)
      .setProtectedHeader({ alg: active.alg, kid: active.kid, typ: HIVEMIND_JWT_TYP })
      .setIssuer(this.#config.publicUrl)
      .setAudience(this.#config.publicUrl)
      .setSubject(claims.sub)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .setJti(jti)
      .sign(active.privateKey)
    return { token, jti, exp, kid: active.kid }
  }

  async verify(token: string): Promise<HiveMindJwtClaims> {
    let header: ReturnType<typeof decodeProtectedHeader>
    try {
      header = decodeProtectedHeader(token)
    } catch (cause) {
      throw new InvalidTokenError('token is not a valid JWT', { cause })
    }
    if (typeof header.kid !== 'string' || header.kid === '') {
      throw new InvalidTokenError('token has no key id (kid)')
    }
    if (header.alg !== 'ES256' && header.alg !== 'EdDSA') {
      throw new InvalidTokenError('token uses an algorithm this server does not sign with')
    }
    const key = await this.#publicKey(header.kid)
    if (!key) throw new InvalidTokenError('token was not signed by a key of this server')
    if (key.alg !== header.alg)
      throw new InvalidTokenError('token algorithm does not match its key')
    if (key.notAfter != null && this.#clock.now() >= key.notAfter) {
      throw new InvalidTokenError('token was signed by a key that is no longer valid')
    }
    try {
      const { payload } = await jwtVerify(token, key.key, {
        algorithms: [key.alg],
        issuer: this.#config.publicUrl,
        audience: this.#config.publicUrl,
        typ: HIVEMIND_JWT_TYP,
        currentDate: new Date(this.#clock.now()),
        clockTolerance: OWN_TOKEN_LEEWAY_S,
        requiredClaims: ['sub', 'exp', 'iat', 'jti'],
      })
      if (typeof payload.scope !== 'string' || typeof payload.sub !== 'string') {
        throw new InvalidTokenError('token lacks the sub or scope claim')
      }
      return payload as HiveMindJwtClaims
    } catch (err) {
      if (err instanceof InvalidTokenError) throw err
      if (err instanceof joseErrors.JWTExpired)
        throw new InvalidTokenError('token has expired', { cause: err })
      if (err instanceof joseErrors.JWSSignatureVerificationFailed) {
        throw new InvalidTokenError('token signature is invalid', { cause: err })
      }
      if (err instanceof joseErrors.JWTClaimValidationFailed) {
        throw new InvalidTokenError(`token claim check failed: ${err.claim} ${err.reason}`, {
          cause: err,
        })
      }
      throw new InvalidTokenError('token is not a valid HiveMind JWT', { cause: err })
    }
  }

  async jwks(): Promise<{ keys: JWK[] }> {
    if (this.#clock.now() - this.#publicLoadedAt > ACTIVE_KEY_REFRESH_MS) await this.#reloadPublic()
    const now = this.#clock.now()
    const keys = [...this.#publicKeys.values()]
      .filter((k) => k.notAfter == null || k.notAfter > now)
      // Active key first: some clients try keys in order.
      .sort((a, b) => Number(b.active) - Number(a.active))
      .map((k) => k.jwk)
    return { keys }
  }

  async rotate(): Promise<{ kid: string }> {
    const now = this.#clock.now()
    const kid = await this.#db.transaction(async (tx) => {
      await lock(tx)
      await tx.query(
        `UPDATE signing_keys SET retired_at = $1, not_after = $2
          WHERE activated_at IS NOT NULL AND retired_at IS NULL`,
        [new Date(now).toISOString(), new Date(now + RETIRED_KEY_GRACE_S * 1000).toISOString()],
      )
      return this.#insertKey(tx, now)
    })
    this.#logger?.info({ kid }, 'signing key rotated')
    this.#active = undefined
    await this.#loadActive()
    await this.#reloadPublic()
    return { kid }
  }

  async #ensureActiveKey(): Promise<void> {
    const has = async (db: Db) =>
      (
        await db.query(
          `SELECT 1 FROM signing_keys WHERE activated_at IS NOT NULL AND retired_at IS NULL LIMIT 1`,
        )
      ).rows.length > 0
    if (await has(this.#db)) return
    await this.#db.transaction(async (tx) => {
      // Two replicas booting on an empty database must not both create a key.
      await lock(tx)
      if (await has(tx)) return
      const kid = await this.#insertKey(tx, this.#clock.now())
      this.#logger?.info({ kid, alg: this.#config.signingAlg }, 'created the first signing key')
    })
  }

  async #insertKey(db: Db, now: number): Promise<string> {
    const alg = this.#config.signingAlg
    const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true })
    const pub = await exportJWK(publicKey)
    // Thumbprint plus randomness: stable-looking, yet unique even for a re-generated key.
    const kid = `${(await calculateJwkThumbprint(pub)).slice(0, 16)}${randomBytes(4).toString('hex')}`
    const publicJwk: JWK = { ...pub, kid, alg, use: 'sig' }
    const privateJson = JSON.stringify({ ...(await exportJWK(privateKey)), kid, alg })
    const secret = this.#config.secretKey
    const sealed = secret ? await encryptSecret(secret, privateJson, kid) : privateJson
    await db.query(
      `INSERT INTO signing_keys (kid, alg, public_jwk, private_key, encrypted, created_at, activated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $6)`,
      [kid, alg, JSON.stringify(publicJwk), sealed, Boolean(secret), new Date(now).toISOString()],
    )
    return kid
  }

  async #activeKey(): Promise<ActiveKey> {
    if (!this.#active || this.#clock.now() - this.#active.loadedAt > ACTIVE_KEY_REFRESH_MS) {
      await this.#loadActive()
    }
    return this.#active!
  }

  async #loadActive(): Promise<void> {
    const { rows } = await this.#db.query<KeyRow>(
      `SELECT kid, alg, public_jwk, private_key, encrypted, activated_at, retired_at, not_after
         FROM signing_keys WHERE activated_at IS NOT NULL AND retired_at IS NULL
        ORDER BY activated_at DESC, kid DESC LIMIT 1`,
    )
    const row = rows[0]
    if (!row) throw new Error('no active signing key (run `hivemind-server keys rotate`)')
    if (this.#active?.kid === row.kid) {
      this.#active.loadedAt = this.#clock.now()
      return
    }
    const privateKey = (await importJWK(await this.#privateJwk(row), row.alg)) as CryptoKey
    this.#active = { kid: row.kid, alg: row.alg, privateKey, loadedAt: this.#clock.now() }
  }

  async #privateJwk(row: KeyRow): Promise<JWK> {
    if (!row.encrypted) return JSON.parse(row.private_key) as JWK
    const secret = this.#config.secretKey
    if (!secret) {
      throw new KeyDecryptionError(
        `signing key ${row.kid} is encrypted but HIVEMIND_SECRET_KEY is not set; set the key it was created with`,
      )
    }
    return JSON.parse(await decryptSecret(secret, row.private_key, row.kid)) as JWK
  }

  async #publicKey(kid: string): Promise<PublicKey | undefined> {
    const stale = this.#clock.now() - this.#publicLoadedAt > ACTIVE_KEY_REFRESH_MS
    if (
      stale ||
      (!this.#publicKeys.has(kid) && Date.now() - this.#lastUnknownReload > UNKNOWN_KID_RELOAD_MS)
    ) {
      if (!stale) this.#lastUnknownReload = Date.now()
      await this.#reloadPublic()
    }
    return this.#publicKeys.get(kid)
  }

  #lastUnknownReload = 0

  #reloadPublic(): Promise<void> {
    this.#reloading ??= (async () => {
      try {
        const { rows } = await this.#db.query<KeyRow>(
          `SELECT kid, alg, public_jwk, activated_at, retired_at, not_after FROM signing_keys
            WHERE activated_at IS NOT NULL`,
        )
        const next = new Map<string, PublicKey>()
        for (const row of rows) {
          const jwk = (
            typeof row.public_jwk === 'string' ? JSON.parse(row.public_jwk) : row.public_jwk
          ) as JWK
          const known = this.#publicKeys.get(row.kid)
          next.set(row.kid, {
            kid: row.kid,
            alg: row.alg,
            jwk,
            key: known?.key ?? ((await importJWK(jwk, row.alg)) as CryptoKey),
            notAfter: toMs(row.not_after),
            active: row.retired_at == null,
          })
        }
        this.#publicKeys = next
        this.#publicLoadedAt = this.#clock.now()
      } finally {
        this.#reloading = undefined
      }
    })()
    return this.#reloading
  }
}

/** Serialises key creation and rotation across replicas on PostgreSQL (PGlite is single-process). */
async function lock(tx: Db): Promise<void> {
  if (tx.kind === 'postgres') await tx.query('SELECT pg_advisory_xact_lock(8585002)')
}
