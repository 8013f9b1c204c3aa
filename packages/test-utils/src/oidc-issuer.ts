import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { randomUUID } from 'node:crypto'
import { exportJWK, generateKeyPair, SignJWT, type JWK, type CryptoKey } from 'jose'

export type IssuerAlg = 'ES256' | 'RS256' | 'EdDSA'

interface IssuerKey {
  kid: string
  alg: IssuerAlg
  privateKey: CryptoKey
  publicJwk: JWK
}

export interface MintOptions {
  /** Seconds until `exp`. Default 300 (GitHub's ~5 min). */
  ttlSeconds?: number
  /** Leave out `jti`. Kubernetes projected tokens have none before 1.29, some issuers never set one. */
  noJti?: boolean
  /** Sign with this key id instead of the current one. */
  kid?: string
  /** Leave `kid` out of the header. */
  omitKid?: boolean
  /** Override `iat` (seconds). Default: now. */
  iat?: number
  /** Claims to drop entirely (e.g. `['iat']`). */
  omit?: readonly string[]
  /** Clock (ms). Default `Date.now`. */
  now?: number
}

export interface LocalOidcIssuer {
  /** e.g. `http://127.0.0.1:41234` (or with a path prefix; `https://` with `tls`). */
  readonly issuer: string
  readonly jwksUri: string
  /** How many times the JWKS was served. */
  readonly jwksFetches: number
  /** Kid of the key `mint` signs with by default. */
  readonly currentKid: string
  /** Mint a signed ID token. `iss`, `iat`, `exp`, `jti` are filled in unless given. */
  mint(claims: Record<string, unknown>, options?: MintOptions): Promise<string>
  /** Add a new signing key and make it current; old keys stay published unless `retireOld`. */
  rotateKey(options?: { alg?: IssuerAlg; retireOld?: boolean }): Promise<string>
  /** Keep a key out of the published JWKS (it can still sign, to test unknown kids). */
  unpublish(kid: string): void
  /** Answer JWKS and discovery with 503 while true. */
  setDown(down: boolean): void
  /** Public keys as published. */
  jwks(): { keys: JWK[] }
  /** The public JWK of any key of this issuer, published or not. */
  publicJwk(kid: string): JWK
  close(): Promise<void>
}

export interface StartIssuerOptions {
  alg?: IssuerAlg
  host?: string
  /** Path prefix, so the issuer looks like `http://127.0.0.1:port/prefix`. */
  pathPrefix?: string
  /** Serve `/.well-known/openid-configuration` (default true); false answers 404, as for an issuer publishing only a JWKS URL. */
  discovery?: boolean
  /** Serve over https with this PEM key and certificate chain; the issuer URL becomes `https://…`. */
  tls?: { key: string; cert: string }
}

/**
 * A real OIDC issuer on loopback: discovery, JWKS and signing with jose keys.
 * Stands in for GitHub Actions, Kubernetes, Modal or any generic issuer.
 */
export async function startOidcIssuer(options: StartIssuerOptions = {}): Promise<LocalOidcIssuer> {
  const keys: IssuerKey[] = []
  const unpublished = new Set<string>()
  let current = await newKey(options.alg ?? 'ES256')
  keys.push(current)
  let down = false
  let jwksFetches = 0
  const prefix = (options.pathPrefix ?? '').replace(/\/+$/, '')

  const discovery = options.discovery ?? true
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname
    if (down) {
      res.writeHead(503).end('down')
      return
    }
    if (discovery && path === `${prefix}/.well-known/openid-configuration`) {
      json(res, {
        issuer: api.issuer,
        jwks_uri: api.jwksUri,
        response_types_supported: ['id_token'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['ES256', 'RS256', 'EdDSA'],
      })
      return
    }
    if (path === `${prefix}/.well-known/jwks`) {
      jwksFetches++
      json(res, publicJwks())
      return
    }
    res.writeHead(404).end()
  }
  const server: Server = options.tls
    ? createHttpsServer({ key: options.tls.key, cert: options.tls.cert }, handler)
    : createServer(handler)
  await new Promise<void>((resolve) => server.listen(0, options.host ?? '127.0.0.1', resolve))
  const { port, address } = server.address() as AddressInfo
  const scheme = options.tls ? 'https' : 'http'
  const base = `${scheme}://${address.includes(':') ? `[${address}]` : address}:${port}${prefix}`

  function publicJwks(): { keys: JWK[] } {
    return { keys: keys.filter((k) => !unpublished.has(k.kid)).map((k) => k.publicJwk) }
  }

  const api: LocalOidcIssuer = {
    issuer: base,
    jwksUri: `${base}/.well-known/jwks`,
    get jwksFetches() {
      return jwksFetches
    },
    get currentKid() {
      return current.kid
    },
    async mint(claims, mintOptions = {}) {
      const key = mintOptions.kid ? keys.find((k) => k.kid === mintOptions.kid) : current
      if (!key) throw new Error(`no key ${mintOptions.kid}`)
      const nowS = Math.floor((mintOptions.now ?? Date.now()) / 1000)
      const iat = mintOptions.iat ?? nowS
      const body: Record<string, unknown> = {
        iss: base,
        iat,
        nbf: iat,
        exp: iat + (mintOptions.ttlSeconds ?? 300),
        ...(mintOptions.noJti ? {} : { jti: randomUUID() }),
        ...claims,
      }
      for (const name of mintOptions.omit ?? []) delete body[name]
      const header = mintOptions.omitKid
        ? { alg: key.alg, typ: 'JWT' }
        : { alg: key.alg, typ: 'JWT', kid: key.kid }
      return new SignJWT(body).setProtectedHeader(header).sign(key.privateKey)
    },
    async rotateKey(rotateOptions = {}) {
      current = await newKey(rotateOptions.alg ?? current.alg)
      if (rotateOptions.retireOld) keys.length = 0
      keys.push(current)
      return current.kid
    },
    unpublish(kid) {
      unpublished.add(kid)
    },
    setDown(value) {
      down = value
    },
    jwks: publicJwks,
    publicJwk(kid) {
      const key = keys.find((k) => k.kid === kid)
      if (!key) throw new Error(`no key ${kid}`)
      return key.publicJwk
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections()
        server.close((err) => (err ? reject(err) : resolve()))
      }),
  }
  return api
}

async function newKey(alg: IssuerAlg): Promise<IssuerKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  const kid = randomUUID()
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }
  return { kid, alg, privateKey, publicJwk }
}

function json(res: ServerResponse, body: unknown): void {
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body))
}
