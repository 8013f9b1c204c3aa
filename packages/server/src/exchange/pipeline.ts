import { compactVerify, importJWK, type CryptoKey, type JWK } from 'jose'
import type { Logger } from 'pino'
import {
  TOKEN_TTL_BOUNDS,
  normalizeAudience,
  replayKey,
  type ExchangeCheck,
} from '@hivemind/sdk/schemas'
import { nowSeconds, type Clock } from '../clock.js'
import type { ServerConfig } from '../config.js'
import type { Db } from '../db/types.js'
import { ReplayStoreUnavailableError } from '../errors.js'
import {
  compilePolicyCached,
  evaluatePolicy,
  PolicyCompileError,
} from '../identity-providers/policy.js'
import { PRESETS } from '../identity-providers/presets.js'
import { pickMostSpecific, selectorMatches } from '../identity-providers/selector.js'
import {
  cachedProvidersForIssuer,
  effectiveAudiences,
  providersForIssuer,
  type ProviderBinding,
} from '../identity-providers/store.js'
import { cachedServiceAccount } from '../service-accounts/status-cache.js'
import { ExchangeFailure, grantFailure } from './failure.js'
import { IssuerKeyCache, JwksUnavailableError, type KeySource } from './issuer-keys.js'
import { parseUnverified, tooLarge } from './parse-token.js'
import { parseJsonObjectStrict } from './strict-json.js'
import type { ReplayStore } from './replay-store.js'

/**
 * Asymmetric algorithms only. Never `none`, never HS* (an HMAC "signed" with an
 * issuer's public key is the classic key-confusion attack).
 */
export const ALLOWED_ALGORITHMS: ReadonlySet<string> = new Set([
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
])

const REQUIRED_CLAIMS = ['iat', 'sub', 'exp'] as const

/** What the pipeline needs: no key store (explain never mints). */
export type PipelineDeps = {
  config: Pick<
    ServerConfig,
    'audience' | 'clockToleranceS' | 'jwksCooldownS' | 'maxSubjectTokenBytes'
  >
  db: Db
  clock: Clock
  replay: ReplayStore
  logger?: Logger | undefined
}

/** One exchange request, as far as the checks are concerned. */
export interface ExchangeRequest {
  subjectToken: string
  /** Space-separated scopes; may only narrow the service account's. */
  scope?: string | undefined
}

/** `exchange` claims the replay key and stops at the first failure; `explain` looks only and goes on where it can. */
export type PipelineMode = 'exchange' | 'explain'

/** Hook run right after the signature verifies (exchange mode): the per-subject rate limit. */
export type VerifiedGate = (issuer: string, sub: string) => ExchangeFailure | undefined

/** Everything the pipeline found out. */
export interface PipelineResult {
  ok: boolean
  checks: ExchangeCheck[]
  /** The first failure (what a real exchange answers). */
  failure?: ExchangeFailure
  /** `iss` and `sub` as presented (verified only when `verified`). */
  issuer?: string
  sub?: string
  verified: boolean
  claims?: Record<string, unknown>
  binding?: ProviderBinding
  /** The matched service account as it is now. */
  account?: { id: string; name: string }
  /** Granted scopes, in the account's order. */
  scopes?: string[]
  /** Lifetime of the JWT to mint (seconds). */
  ttlSeconds?: number
}

const ALG_FAMILY: Record<string, (k: JWK) => boolean> = {
  RS: (k) => k.kty === 'RSA',
  PS: (k) => k.kty === 'RSA',
  ES256: (k) => k.kty === 'EC' && k.crv === 'P-256',
  ES384: (k) => k.kty === 'EC' && k.crv === 'P-384',
  ES512: (k) => k.kty === 'EC' && k.crv === 'P-521',
  EdDSA: (k) => k.kty === 'OKP' && (k.crv === 'Ed25519' || k.crv === 'Ed448'),
  Ed25519: (k) => k.kty === 'OKP' && k.crv === 'Ed25519',
}

/** Whether a JWK may verify a token signed with `alg`. */
function usableWith(k: JWK, alg: string): boolean {
  if (k.use !== undefined && k.use !== 'sig') return false
  if (k.alg !== undefined && k.alg !== alg) return false
  if (k.key_ops !== undefined && !k.key_ops.includes('verify')) return false
  const family = ALG_FAMILY[alg] ?? ALG_FAMILY[alg.slice(0, 2)]
  return family ? family(k) : false
}

const short = (v: unknown, max = 200): string => {
  const s = typeof v === 'string' ? v : (JSON.stringify(v) ?? String(v))
  return s.length > max ? `${s.slice(0, max)}…` : s
}

/**
 * The token-exchange checks, in DESIGN.md order, shared by `POST /oauth/token`
 * (mode `exchange`) and explain (mode `explain`, which never consumes the
 * replay key). One implementation, so explain can never disagree with a real
 * exchange about why a token fails.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8693
 */
export class ExchangePipeline {
  readonly keys: IssuerKeyCache
  // Keyed by the JWK object: the key cache and the provider cache hand out the same
  // objects until they refetch, so a key is imported once per fetch, not per exchange.
  readonly #imported = new WeakMap<JWK, Map<string, CryptoKey | Uint8Array>>()
  // Same for a provider's key source and its hashed id (which may cover a CA bundle).
  readonly #sources = new WeakMap<ProviderBinding, { id: string; source: KeySource }>()

  constructor(private readonly deps: PipelineDeps) {
    this.keys = new IssuerKeyCache({
      clock: deps.clock,
      cooldownS: deps.config.jwksCooldownS,
      logger: deps.logger,
    })
  }

  /** Runs every check; see {@link PipelineMode}. Never throws for a bad token. */
  async run(
    input: ExchangeRequest,
    mode: PipelineMode,
    gate?: VerifiedGate,
  ): Promise<PipelineResult> {
    const { config, clock } = this.deps
    const explain = mode === 'explain'
    const r: PipelineResult = { ok: false, checks: [], verified: false }
    const pass = (name: string, detail: string, claims?: Record<string, unknown>) => {
      r.checks.push({ name, ok: true, detail, ...(claims ? { claims } : {}) })
    }
    /** Records a failure; returns true when the caller must stop. */
    const fail = (
      name: string,
      f: ExchangeFailure,
      claims?: Record<string, unknown>,
      soft = false,
    ): boolean => {
      r.checks.push({
        name,
        ok: false,
        detail: f.message,
        hivemind_error: f.hivemindError,
        ...(claims ? { claims } : {}),
      })
      r.failure ??= f
      return !(explain && soft)
    }

    // 1. Size, before any decoding.
    const bytes = Buffer.byteLength(input.subjectToken, 'utf8')
    if (bytes > config.maxSubjectTokenBytes) {
      fail('token_size', tooLarge(bytes, config.maxSubjectTokenBytes))
      return r
    }
    pass('token_size', `${bytes} bytes (limit ${config.maxSubjectTokenBytes})`)

    // 2. Shape: compact JWS, JSON objects, no duplicate keys.
    let header: Record<string, unknown>
    let unverified: Record<string, unknown>
    let payloadBytes: Buffer
    try {
      ;({ header, payload: unverified, payloadBytes } = parseUnverified(input.subjectToken))
    } catch (err) {
      if (!(err instanceof ExchangeFailure)) throw err
      fail('token_format', err)
      return r
    }
    const alg = header.alg
    const kid = typeof header.kid === 'string' ? header.kid : undefined
    if (typeof unverified.iss === 'string') r.issuer = unverified.iss
    if (typeof unverified.sub === 'string') r.sub = unverified.sub
    pass('token_format', `compact JWS; header alg ${short(alg)}, ${kid ? `kid ${kid}` : 'no kid'}`)

    // 3. Algorithm allow-list. jku / x5u / jwk headers are never read: keys come
    // only from the issuer's configured source.
    if (typeof alg !== 'string' || !ALLOWED_ALGORITHMS.has(alg)) {
      fail(
        'algorithm',
        grantFailure(
          'disallowed_algorithm',
          `algorithm ${short(alg)} is not allowed (allowed: ${[...ALLOWED_ALGORITHMS].join(', ')})`,
        ),
      )
      return r
    }
    pass('algorithm', `${alg} is on the allow-list`)

    // 4. Issuer: exact string match against configured providers.
    const iss = unverified.iss
    if (typeof iss !== 'string' || iss === '') {
      fail('issuer', grantFailure('unknown_issuer', 'the token has no iss claim'))
      return r
    }
    const providers = await cachedProvidersForIssuer(this.deps.db, iss, clock.now())
    if (providers.length === 0) {
      const variant = iss.endsWith('/') ? iss.replace(/\/+$/, '') : `${iss}/`
      const near = (await providersForIssuer(this.deps.db, variant)).length > 0
      fail(
        'issuer',
        grantFailure(
          'unknown_issuer',
          `no identity provider is configured for issuer ${JSON.stringify(iss)}${
            near ? ` (one exists for ${JSON.stringify(variant)}: issuers must match exactly)` : ''
          }`,
        ),
        { iss },
      )
      return r
    }
    pass('issuer', `${providers.length} identity provider(s) for ${iss}`, { iss })

    // 5. Signature against the issuer's keys.
    let claims: Record<string, unknown>
    let verifiedBy: string
    try {
      const v = await this.#verify(input.subjectToken, alg, kid, providers, {
        claims: unverified,
        bytes: payloadBytes,
      })
      claims = v.claims
      verifiedBy = v.sourceId
      pass('signature', `verified with key ${v.kid ?? '(no kid)'} from ${v.origin}`)
    } catch (err) {
      if (!(err instanceof ExchangeFailure)) throw err
      fail('signature', err)
      return r
    }
    r.verified = true
    r.claims = claims
    if (!explain && gate && typeof claims.sub === 'string') {
      const limited = gate(iss, claims.sub)
      if (limited) {
        r.failure = limited
        return r
      }
    }

    // 6. Required claims and their types.
    const missing = REQUIRED_CLAIMS.filter((c) => claims[c] === undefined)
    if (missing.length > 0) {
      fail(
        'required_claims',
        grantFailure('missing_claim', `the token lacks required claim(s): ${missing.join(', ')}`),
      )
      return r
    }
    const numeric = (['exp', 'iat', 'nbf'] as const).filter(
      (c) =>
        claims[c] !== undefined && (typeof claims[c] !== 'number' || !Number.isFinite(claims[c])),
    )
    if (numeric.length > 0) {
      fail(
        'required_claims',
        grantFailure('invalid_claim', `${numeric.join(', ')} must be a number (NumericDate)`),
        Object.fromEntries(numeric.map((c) => [c, claims[c]])),
      )
      return r
    }
    if (typeof claims.sub !== 'string' || claims.sub === '') {
      fail('required_claims', grantFailure('invalid_claim', 'sub must be a non-empty string'))
      return r
    }
    pass('required_claims', 'iat, sub and exp are present and well-typed')
    const exp = claims.exp as number
    const iat = claims.iat as number
    const nbf = claims.nbf as number | undefined

    // 7. Audience (any of the token's, normalised, against any provider's).
    const accepted = new Set(providers.flatMap((p) => effectiveAudiences(p, config.audience)))
    const tokenAud = (Array.isArray(claims.aud) ? claims.aud : [claims.aud]).filter(
      (a): a is string => typeof a === 'string' && a !== '',
    )
    const audOk = tokenAud.some((a) => accepted.has(normalizeAudience(a)))
    const expected = accepted.has(config.audience) ? config.audience : [...accepted][0]
    if (!audOk) {
      const stop = fail(
        'audience',
        new ExchangeFailure(
          'invalid_grant',
          'audience_mismatch',
          `token audience ${tokenAud.length ? JSON.stringify(claims.aud) : '(none)'} is not accepted; expected ${[...accepted].join(' or ')}`,
          { expectedAudience: expected },
        ),
        { aud: claims.aud },
        true,
      )
      if (stop) return r
    } else {
      pass('audience', `aud ${JSON.stringify(claims.aud)} is accepted`, { aud: claims.aud })
    }

    // 8. Time, with leeway.
    const now = nowSeconds(clock)
    const leeway = config.clockToleranceS
    const timeClaims = { exp, iat, ...(nbf !== undefined ? { nbf } : {}), now, leeway }
    let timeFailure: ExchangeFailure | undefined
    if (exp + leeway <= now) {
      timeFailure = grantFailure(
        'expired',
        `the token expired at ${exp} (now ${now}, leeway ${leeway} s)`,
      )
    } else if (nbf !== undefined && nbf > now + leeway) {
      timeFailure = grantFailure(
        'not_yet_valid',
        `the token is not valid before ${nbf} (now ${now}, leeway ${leeway} s)`,
      )
    } else if (iat > now + leeway) {
      timeFailure = grantFailure(
        'not_yet_valid',
        `the token was issued in the future (iat ${iat}, now ${now}, leeway ${leeway} s)`,
      )
    }
    if (timeFailure) {
      if (fail('time', timeFailure, timeClaims, true)) return r
    } else {
      pass('time', `valid now (expires in ${exp - now} s)`, timeClaims)
    }

    // 9. Selector: most specific match among this issuer's providers.
    const candidates = providers
      .map((p) => ({ p, selector: p.selector, subject: PRESETS[p.preset].subject(claims) }))
      .filter((c) => c.subject !== undefined && selectorMatches(c.selector, c.subject))
    const pick = pickMostSpecific(candidates)
    const subjectClaims = Object.fromEntries(
      [...new Set(providers.flatMap((p) => PRESETS[p.preset].subjectClaims))].map((c) => [
        c,
        claims[c],
      ]),
    )
    if (pick.kind !== 'match') {
      fail(
        'selector',
        grantFailure(
          'no_matching_service_account',
          pick.kind === 'none'
            ? `no selector of issuer ${iss} matches this token (selectors: ${providers.map((p) => JSON.stringify(p.selector)).join(', ')})`
            : `selectors ${pick.items.map((c) => JSON.stringify(c.selector)).join(' and ')} match equally; make one more specific`,
        ),
        subjectClaims,
      )
      return r
    }
    const binding = pick.item.p
    r.binding = binding
    pass(
      'selector',
      `selector ${JSON.stringify(binding.selector)} (${binding.preset}, provider ${binding.id}) matched ${JSON.stringify(pick.item.subject)}`,
      subjectClaims,
    )
    // The matched provider's own key source must verify the token: another provider of the
    // same issuer (an inline JWKS, another CA) must not vouch for this provider's subjects.
    if (this.#sourceOf(binding).id !== verifiedBy) {
      try {
        await this.#verify(input.subjectToken, alg, kid, [binding], {
          claims: unverified,
          bytes: payloadBytes,
        })
      } catch (err) {
        if (!(err instanceof ExchangeFailure)) throw err
        fail('signature', err)
        return r
      }
    }
    // The matched provider itself must accept the audience (another one of the issuer may have).
    const own = effectiveAudiences(binding, config.audience)
    if (audOk && !tokenAud.some((a) => own.includes(normalizeAudience(a)))) {
      const stop = fail(
        'audience',
        new ExchangeFailure(
          'invalid_grant',
          'audience_mismatch',
          `provider ${binding.id} accepts ${own.join(' or ')}, not ${JSON.stringify(claims.aud)}`,
          { expectedAudience: own[0] },
        ),
        { aud: claims.aud },
        true,
      )
      if (stop) return r
    }

    // 10. Service account, through the same ≤ 30 s status cache as bearer auth, so a
    // disable through this process takes effect at once.
    const current = await cachedServiceAccount(this.deps.db, clock, binding.account.id)
    if (!current) {
      fail(
        'service_account',
        grantFailure(
          'no_matching_service_account',
          `service account ${binding.account.id} no longer exists`,
        ),
      )
      return r
    }
    const account = {
      id: current.id,
      name: current.name,
      scopes: current.scopes as string[],
      maxTtlSeconds: current.maxTtlSeconds,
      disabled: current.disabled,
    }
    if (account.disabled) {
      fail(
        'service_account',
        grantFailure(
          'service_account_disabled',
          `service account ${account.id} (${account.name}) is disabled`,
        ),
      )
      return r
    }
    r.account = { id: account.id, name: account.name }
    pass('service_account', `${account.id} (${account.name}), scopes ${account.scopes.join(' ')}`)

    // 11. CEL policy: only exactly `true` allows.
    if (binding.policy) {
      const referenced = (names: readonly string[]) =>
        Object.fromEntries(names.map((n) => [n, Object.hasOwn(claims, n) ? claims[n] : null]))
      let policyFailure: ExchangeFailure | undefined
      let decided: Record<string, unknown> = {}
      try {
        const policy = compilePolicyCached(binding.policy)
        decided = referenced(policy.claimNames)
        const outcome = evaluatePolicy(policy, claims)
        if (!outcome.allow) {
          const why =
            outcome.error !== undefined
              ? `failed: ${outcome.error}`
              : outcome.value === false
                ? 'returned false'
                : `returned ${short(outcome.value)} (${typeof outcome.value}), not true`
          policyFailure = grantFailure('policy_denied', `policy of provider ${binding.id} ${why}`)
        }
      } catch (err) {
        if (!(err instanceof PolicyCompileError)) throw err
        policyFailure = grantFailure(
          'policy_denied',
          `policy of provider ${binding.id} does not compile: ${err.message}`,
        )
      }
      if (policyFailure) {
        if (fail('policy', policyFailure, decided, true)) return r
      } else {
        pass('policy', `policy of provider ${binding.id} returned true`, decided)
      }
    } else {
      pass('policy', 'no policy configured')
    }

    // 12. Scope narrowing.
    const requested = input.scope?.trim() ? input.scope.trim().split(/\s+/) : account.scopes
    const extra = requested.filter((s) => !account.scopes.includes(s))
    if (extra.length > 0) {
      const f = new ExchangeFailure(
        'invalid_scope',
        'invalid_scope',
        `scope ${extra.join(' ')} is not granted to ${account.id} (it has ${account.scopes.join(' ') || 'none'})`,
      )
      if (fail('scope', f, undefined, true)) return r
    } else {
      r.scopes = account.scopes.filter((s) => requested.includes(s))
      pass('scope', `granting ${r.scopes.join(' ')}`)
    }

    // 13. TTL: clamp(exp - now, 1 h, 24 h), never above the account's maximum.
    const ttl = Math.min(
      Math.max(exp - now, TOKEN_TTL_BOUNDS.minSeconds),
      TOKEN_TTL_BOUNDS.maxSeconds,
      account.maxTtlSeconds ?? Number.POSITIVE_INFINITY,
    )
    r.ttlSeconds = ttl

    // 14. Replay, last: only a token that passed everything else consumes its key.
    const key = replayKey(claims)
    const keyedBy =
      typeof claims.jti === 'string' && claims.jti
        ? 'iss + jti'
        : 'issuer, audience and claims (no jti)'
    try {
      if (explain) {
        if (await this.deps.replay.has(key)) {
          fail(
            'replay',
            grantFailure(
              'replayed_token',
              `this token was already exchanged (keyed by ${keyedBy})`,
            ),
            {
              ...(claims.jti !== undefined ? { jti: claims.jti } : {}),
            },
          )
        } else {
          pass('replay', `not exchanged yet (keyed by ${keyedBy}; explain does not consume it)`)
        }
      } else if (r.failure === undefined) {
        if (!(await this.deps.replay.claim(key, exp + leeway))) {
          fail(
            'replay',
            grantFailure(
              'replayed_token',
              `this token was already exchanged (keyed by ${keyedBy})`,
            ),
          )
          return r
        }
        pass('replay', `claimed until ${exp + leeway}`)
      }
    } catch (err) {
      if (!(err instanceof ReplayStoreUnavailableError)) throw err
      this.deps.logger?.error({ err }, 'replay store unavailable: refusing to mint')
      fail(
        'replay',
        new ExchangeFailure(
          'temporarily_unavailable',
          'replay_store_unavailable',
          'the replay store is unavailable; try again shortly',
        ),
      )
      return r
    }

    pass('ttl', `would mint a ${ttl} s JWT for ${account.id}`)
    r.ok = r.failure === undefined
    return r
  }

  async #verify(
    token: string,
    alg: string,
    kid: string | undefined,
    providers: readonly ProviderBinding[],
    unverified: { claims: Record<string, unknown>; bytes: Buffer },
  ): Promise<{
    claims: Record<string, unknown>
    kid: string | undefined
    origin: string
    /** Which key source verified the token (an issuer's providers may each have their own). */
    sourceId: string
  }> {
    const sources = new Map<string, KeySource>()
    for (const p of providers) {
      const s = this.#sourceOf(p)
      sources.set(s.id, s.source)
    }
    let failure: ExchangeFailure | undefined
    for (const [id, source] of sources) {
      let lookup
      try {
        lookup = await this.keys.lookup(source, kid, id)
      } catch (err) {
        if (!(err instanceof JwksUnavailableError)) throw err
        failure ??= new ExchangeFailure('temporarily_unavailable', 'jwks_unavailable', err.message)
        continue
      }
      const byKid = kid === undefined ? lookup.keys : lookup.keys.filter((k) => k.kid === kid)
      const usable = byKid.filter((k) => usableWith(k, alg))
      if (usable.length === 0) {
        failure = grantFailure(
          'unknown_key',
          byKid.length === 0
            ? `no key ${kid ? `with kid ${kid} ` : ''}in the keys of ${source.issuer} (${lookup.origin})${lookup.stale ? '; the key endpoint is failing' : ''}`
            : `key ${kid ?? ''} of ${source.issuer} cannot verify ${alg}`,
        )
        continue
      }
      // Without a kid every key usable with alg is tried (documented); with a kid, just that one.
      for (const jwk of usable) {
        let key: CryptoKey | Uint8Array
        try {
          key = await this.#import(jwk, alg)
        } catch {
          // A malformed key in the issuer's set must not fail tokens signed by a good one.
          failure ??= grantFailure(
            'unknown_key',
            `key ${jwk.kid ?? ''} of ${source.issuer} cannot be imported`,
          )
          continue
        }
        try {
          const { payload } = await compactVerify(token, key, { algorithms: [alg] })
          // The signed bytes are the ones already parsed strictly (no duplicate keys) in
          // step 2: reuse that object rather than parse the same JSON a second time.
          const same = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).equals(
            unverified.bytes,
          )
          return {
            claims: same
              ? unverified.claims
              : parseJsonObjectStrict(new TextDecoder().decode(payload)),
            kid: jwk.kid,
            origin: lookup.origin,
            sourceId: id,
          }
        } catch (err) {
          const code = (err as { code?: string }).code
          if (code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') {
            failure = grantFailure(
              'bad_signature',
              `the signature does not verify with the keys of ${source.issuer}`,
            )
            continue
          }
          throw grantFailure(
            'malformed_token',
            `the token cannot be verified: ${(err as Error).message}`,
          )
        }
      }
    }
    throw failure ?? grantFailure('unknown_key', 'no key to verify the token with')
  }

  /** A provider's key source and its cache id, computed once per provider object. */
  #sourceOf(p: ProviderBinding): { id: string; source: KeySource } {
    let s = this.#sources.get(p)
    if (!s) {
      const source: KeySource = {
        issuer: p.issuer,
        jwksUri: p.jwksUri,
        jwks: p.jwks,
        caPem: p.caPem,
      }
      s = { id: IssuerKeyCache.sourceId(source), source }
      this.#sources.set(p, s)
    }
    return s
  }

  async #import(jwk: JWK, alg: string): Promise<CryptoKey | Uint8Array> {
    let byAlg = this.#imported.get(jwk)
    if (!byAlg) this.#imported.set(jwk, (byAlg = new Map<string, CryptoKey | Uint8Array>()))
    let key = byAlg.get(alg)
    if (!key) {
      key = await importJWK(jwk, alg)
      byAlg.set(alg, key)
    }
    return key
  }
}
