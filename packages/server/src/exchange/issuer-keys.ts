import { createHash } from 'node:crypto'
import { isIP } from 'node:net'
import type { JWK } from 'jose'
import type { Logger } from 'pino'
import type { Clock } from '../clock.js'
import { httpGetJson } from './http-get-json.js'

/** Where an issuer's verification keys come from (one identity provider's settings). */
export interface KeySource {
  issuer: string
  jwksUri: string | null
  jwks: { keys: JWK[] } | null
  caPem: string | null
}

/** Options of {@link IssuerKeyCache}. */
export interface IssuerKeyCacheOptions {
  clock: Clock
  /** Minimum time between two fetches of one source (seconds). */
  cooldownS: number
  /** Refetch keys older than this even when the kid is known (ms). @default 600000 */
  maxAgeMs?: number
  /** @default 5000 */
  fetchTimeoutMs?: number
  logger?: Logger | undefined
  /** Fetcher, replaceable in tests. */
  getJson?: typeof httpGetJson
}

/** Keys to try for one token. */
export interface KeyLookup {
  keys: JWK[]
  /** Where they came from: `inline`, the JWKS URL. */
  origin: string
  /** A fetch was attempted for this lookup and failed; `keys` are the last good ones. */
  stale: boolean
}

/** No keys at all: the source was never fetched successfully. */
export class JwksUnavailableError extends Error {
  readonly code = 'ERR_JWKS_UNAVAILABLE'
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'JwksUnavailableError'
  }
}

interface Entry {
  keys: JWK[] | undefined
  fetchedAt: number
  lastAttempt: number
  discoveredJwksUri: string | undefined
  inflight: Promise<void> | undefined
  lastError: string | undefined
}

function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '')
  return h === 'localhost' || h === '::1' || (isIP(h) === 4 && h.startsWith('127.'))
}

/**
 * Remote JWKS per key source, with a refetch cooldown: an unknown `kid` triggers
 * at most one fetch per cooldown (a flood of made-up kids costs the issuer one
 * request), concurrent lookups share one fetch, an empty key set is never cached,
 * and when the endpoint is down the last good keys keep working.
 */
export class IssuerKeyCache {
  readonly #entries = new Map<string, Entry>()
  readonly #opts: Required<Omit<IssuerKeyCacheOptions, 'logger'>> & { logger?: Logger | undefined }

  constructor(options: IssuerKeyCacheOptions) {
    this.#opts = {
      maxAgeMs: 600_000,
      fetchTimeoutMs: 5000,
      getJson: httpGetJson,
      ...options,
    }
  }

  /** Stable id of a source: providers with the same settings share one cache entry. */
  static sourceId(source: KeySource): string {
    return createHash('sha256')
      .update(JSON.stringify([source.issuer, source.jwksUri, source.jwks, source.caPem]))
      .digest('hex')
  }

  /**
   * Keys of `source`, refetched when `kid` is unknown or the keys are old (cooldown
   * permitting). `id` is {@link IssuerKeyCache.sourceId} when the caller already has it
   * (hashing a CA bundle per exchange is not free).
   */
  async lookup(
    source: KeySource,
    kid: string | undefined,
    id = IssuerKeyCache.sourceId(source),
  ): Promise<KeyLookup> {
    if (source.jwks) return { keys: source.jwks.keys, origin: 'inline jwks', stale: false }
    let entry = this.#entries.get(id)
    if (!entry) {
      entry = {
        keys: undefined,
        fetchedAt: 0,
        lastAttempt: Number.NEGATIVE_INFINITY,
        discoveredJwksUri: undefined,
        inflight: undefined,
        lastError: undefined,
      }
      if (this.#entries.size > 1000) this.#entries.clear()
      this.#entries.set(id, entry)
    }
    const now = this.#opts.clock.now()
    const unknownKid = kid !== undefined && !entry.keys?.some((k) => k.kid === kid)
    const old = now - entry.fetchedAt > this.#opts.maxAgeMs
    let attempted = false
    if (!entry.keys || unknownKid || old) {
      if (entry.inflight) {
        attempted = true
        await entry.inflight
      } else if (now - entry.lastAttempt >= this.#opts.cooldownS * 1000) {
        attempted = true
        entry.inflight = this.#refresh(entry, source).finally(() => {
          entry.inflight = undefined
        })
        await entry.inflight
      }
    }
    const origin = source.jwksUri ?? entry.discoveredJwksUri ?? `${source.issuer} (discovery)`
    if (!entry.keys) {
      throw new JwksUnavailableError(
        `could not get the signing keys of ${source.issuer}: ${entry.lastError ?? 'fetch pending (cooldown)'}`,
      )
    }
    return { keys: entry.keys, origin, stale: attempted && entry.lastError !== undefined }
  }

  async #refresh(entry: Entry, source: KeySource): Promise<void> {
    entry.lastAttempt = this.#opts.clock.now()
    const get = (url: string) =>
      this.#opts.getJson(url, {
        ca: source.caPem ?? undefined,
        timeoutMs: this.#opts.fetchTimeoutMs,
      })
    let usedDiscovery = false
    try {
      let uri = source.jwksUri ?? entry.discoveredJwksUri
      if (!uri) {
        usedDiscovery = true
        uri = await this.#discover(source, get)
        entry.discoveredJwksUri = uri
      }
      const doc = (await get(uri)) as { keys?: unknown }
      if (!doc || !Array.isArray(doc.keys)) throw new Error(`${uri} is not a JWKS (no keys array)`)
      // Only public asymmetric keys; a JWKS leaking private or symmetric keys is not trusted for them.
      const keys = (doc.keys as JWK[]).filter(
        (k) =>
          k && typeof k === 'object' && ['RSA', 'EC', 'OKP'].includes(k.kty ?? '') && !('d' in k),
      )
      // PyPI lesson: never cache an empty key set, it would lock every token out.
      if (keys.length === 0) throw new Error(`${uri} has no usable public keys`)
      entry.keys = keys
      entry.fetchedAt = this.#opts.clock.now()
      entry.lastError = undefined
    } catch (err) {
      entry.lastError = (err as Error).message
      // A stale discovered URL might be the problem: rediscover next time.
      if (!usedDiscovery) entry.discoveredJwksUri = undefined
      this.#opts.logger?.warn(
        { issuer: source.issuer, err: entry.lastError, cachedKeys: entry.keys?.length ?? 0 },
        'fetching issuer keys failed; using the last good keys if any',
      )
    }
  }

  async #discover(source: KeySource, get: (url: string) => Promise<unknown>): Promise<string> {
    const url = `${source.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`
    const doc = (await get(url)) as { issuer?: unknown; jwks_uri?: unknown }
    if (!doc || typeof doc.jwks_uri !== 'string') throw new Error(`${url} has no jwks_uri`)
    // OIDC Discovery §4.3: the document must name the issuer it was fetched for.
    if (doc.issuer !== undefined && doc.issuer !== source.issuer) {
      throw new Error(`${url} names issuer ${JSON.stringify(doc.issuer)}, not ${source.issuer}`)
    }
    const jwksUrl = new URL(doc.jwks_uri)
    if (
      jwksUrl.protocol !== 'https:' &&
      !(jwksUrl.protocol === 'http:' && isLoopback(jwksUrl.hostname))
    ) {
      throw new Error(`${url} points at a non-https jwks_uri`)
    }
    return doc.jwks_uri
  }
}
