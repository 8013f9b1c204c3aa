import { homedir } from 'node:os'
import { isIP } from 'node:net'
import { join } from 'node:path'
import { z } from 'zod'
import { DEFAULTS, normalizeAudience } from '@hivemind/sdk/schemas'

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no', ''])
  .transform((v) => v === 'true' || v === '1' || v === 'yes')

const port = z.coerce.number().int().min(0).max(65535)
const seconds = (min: number) => z.coerce.number().int().min(min)
const headerName = z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'must be an HTTP header name')

/** Comma-separated CIDRs (a bare address means that one host), checked at startup. */
function cidrList(name: string, raw: string | undefined): string[] {
  const list = (raw ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  for (const entry of list) {
    if (!isCidr(entry)) {
      throw new ConfigError(
        `invalid ${name}=${JSON.stringify(raw)}: "${entry}" is not an IPv4 or IPv6 address or CIDR`,
      )
    }
  }
  return list
}

function isCidr(entry: string): boolean {
  const [addr, prefix, extra] = entry.split('/')
  if (extra !== undefined || addr === undefined) return false
  const family = isIP(addr)
  if (family === 0) return false
  if (prefix === undefined) return true
  if (!/^\d{1,3}$/.test(prefix)) return false
  return Number(prefix) <= (family === 4 ? 32 : 128)
}

/**
 * Server configuration, read once from the environment. Every variable is
 * listed here; a bad value stops startup with one line naming it.
 */
export const ServerEnv = z.object({
  HIVEMIND_HOST: z.string().min(1).default(DEFAULTS.serverHost),
  HIVEMIND_PORT: port.default(DEFAULTS.serverPort),
  /** Issuer of HiveMind JWTs and the default audience. Default `http://HOST:PORT`. */
  HIVEMIND_PUBLIC_URL: z.url({ protocol: /^https?$/ }).optional(),
  /** PGlite data directory when DATABASE_URL is unset. */
  HIVEMIND_DATA_DIR: z.string().min(1).optional(),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
    .optional(),
  /** Replay store in Redis instead of PostgreSQL. */
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
    .optional(),
  /** Encrypts signing keys at rest (any string ≥ 32 chars; keep it with your backups). */
  HIVEMIND_SECRET_KEY: z.string().min(32, 'must be at least 32 characters').optional(),
  /** Bootstrap admin credential, sent as X-API-Key or bearer. */
  ADMIN_API_KEY: z.string().min(16, 'must be at least 16 characters').optional(),
  /** Leeway for ID-token time checks and the replay window (seconds). */
  HIVEMIND_CLOCK_TOLERANCE_S: seconds(0).max(300).default(60),
  /** Minimum time between two JWKS refetches of one issuer (seconds). */
  HIVEMIND_JWKS_COOLDOWN_S: seconds(0).default(30),
  /** Longest subject (ID) token accepted, in bytes. */
  HIVEMIND_MAX_SUBJECT_TOKEN_BYTES: seconds(512).default(16_384),
  /** Signing algorithm for new keys. */
  HIVEMIND_SIGNING_ALG: z.enum(['ES256', 'EdDSA']).default('ES256'),
  /** Failed exchanges allowed per client address per minute before 429. */
  HIVEMIND_RATE_LIMIT_EXCHANGE_PER_MIN: seconds(0).default(100),
  /** Failed exchanges allowed per verified (issuer, sub) per minute before 429 (0 = off). */
  HIVEMIND_RATE_LIMIT_EXCHANGE_PER_SUBJECT_PER_MIN: seconds(0).default(100),
  /** Key prefix of the Redis replay store. */
  HIVEMIND_REDIS_KEY_PREFIX: z.string().min(1).default('hivemind:replay:'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  NODE_ENV: z.string().optional(),
  /** Test-only clock offset (seconds); honoured only when NODE_ENV=test. */
  HIVEMIND_TEST_CLOCK_OFFSET_S: z.coerce.number().int().optional(),
  HIVEMIND_METRICS: bool.default(true),
  /** Largest `POST /api/v1/sessions/batch` body (bytes); larger → 413. */
  HIVEMIND_SESSIONS_MAX_BODY_BYTES: seconds(1024).default(32 * 1024 * 1024),
  /** Most sessions + events in one batch; more → 413. */
  HIVEMIND_SESSIONS_MAX_BATCH_ITEMS: seconds(1).default(5000),
  /** Comma-separated CIDRs of reverse proxies whose X-Forwarded-For names the client. */
  HIVEMIND_TRUSTED_PROXIES: z.string().optional(),
  /** Failed authentications allowed per client address per minute before 429. */
  HIVEMIND_RATE_LIMIT_AUTH_FAILURES_PER_MIN: seconds(0).default(100),
  /** Failed logins allowed per (account, client address) per minute before 429. */
  HIVEMIND_RATE_LIMIT_LOGIN_FAILURES_PER_MIN: seconds(0).default(20),
  /** Browser session lifetime (seconds). */
  HIVEMIND_SESSION_TTL_S: seconds(60).default(7 * 86_400),
  /** SSO through a reverse proxy that sets identity headers (Authentik, Authelia, oauth2-proxy). */
  HIVEMIND_FORWARD_AUTH: bool.default(false),
  /** Comma-separated CIDRs (IPv4 and IPv6) of the proxies allowed to send identity headers. */
  HIVEMIND_FORWARD_AUTH_TRUSTED_NETS: z.string().optional(),
  HIVEMIND_FORWARD_AUTH_USER_HEADER: headerName.default('X-Authentik-Username'),
  HIVEMIND_FORWARD_AUTH_EMAIL_HEADER: headerName.default('X-Authentik-Email'),
  HIVEMIND_FORWARD_AUTH_GROUPS_HEADER: headerName.default('X-Authentik-Groups'),
  HIVEMIND_FORWARD_AUTH_GROUPS_DELIM: z.string().min(1).max(8).default('|'),
  HIVEMIND_GROUP_ADMIN: z.string().min(1).default('hivemind-admin'),
  HIVEMIND_GROUP_USER: z.string().min(1).default('hivemind-user'),
  HIVEMIND_GROUP_READONLY: z.string().min(1).default('hivemind-readonly'),
})

export interface ServerConfig {
  host: string
  port: number
  /** Normalised (no trailing slash). */
  publicUrl: string
  /** The audience ID tokens must carry by default: the normalised public URL. */
  audience: string
  /** False when derived from HOST:PORT; `listen` then fills in the real port when PORT is 0. */
  publicUrlConfigured: boolean
  dataDir: string
  databaseUrl: string | undefined
  redisUrl: string | undefined
  secretKey: string | undefined
  adminApiKey: string | undefined
  clockToleranceS: number
  jwksCooldownS: number
  maxSubjectTokenBytes: number
  signingAlg: 'ES256' | 'EdDSA'
  rateLimitExchangePerMin: number
  rateLimitExchangePerSubjectPerMin: number
  redisKeyPrefix: string
  logLevel: z.output<typeof ServerEnv>['LOG_LEVEL']
  testClockOffsetS: number
  metrics: boolean
  /** HIVEMIND_SESSIONS_MAX_BODY_BYTES: largest batch upload body. */
  sessionsMaxBodyBytes: number
  /** HIVEMIND_SESSIONS_MAX_BATCH_ITEMS: most sessions + events per batch. */
  sessionsMaxBatchItems: number
  /** HIVEMIND_TRUSTED_PROXIES: CIDRs whose X-Forwarded-For is believed. */
  trustedProxies: string[]
  rateLimitAuthFailuresPerMin: number
  rateLimitLoginFailuresPerMin: number
  sessionTtlS: number
  forwardAuth: {
    enabled: boolean
    /** Empty = trust nobody (fail closed). */
    trustedNets: string[]
    userHeader: string
    emailHeader: string
    groupsHeader: string
    groupsDelim: string
    groupAdmin: string
    groupUser: string
    groupReadOnly: string
  }
}

/** Thrown for a bad environment; `main` prints `message` as one line and exits 2. */
export class ConfigError extends Error {
  readonly code = 'ERR_CONFIG'
}

/** Parse the environment once. Throws ConfigError naming the variable. */
export function loadConfig(
  env: Readonly<Record<string, string | undefined>> = process.env,
): ServerConfig {
  // Empty strings mean "unset", as in most twelve-factor servers.
  const cleaned = Object.fromEntries(
    Object.entries(env).filter(([, v]) => v !== undefined && v !== ''),
  )
  const parsed = ServerEnv.safeParse(cleaned)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    const name = String(issue.path[0] ?? '')
    throw new ConfigError(
      `invalid ${name}=${JSON.stringify(cleaned[name] ?? '')}: ${issue.message}`,
    )
  }
  const e = parsed.data
  const publicUrl = normalizeAudience(
    e.HIVEMIND_PUBLIC_URL ??
      `http://${e.HIVEMIND_HOST.includes(':') ? `[${e.HIVEMIND_HOST}]` : e.HIVEMIND_HOST}:${e.HIVEMIND_PORT}`,
  )
  return {
    host: e.HIVEMIND_HOST,
    port: e.HIVEMIND_PORT,
    publicUrl,
    audience: publicUrl,
    publicUrlConfigured: e.HIVEMIND_PUBLIC_URL !== undefined,
    dataDir: e.HIVEMIND_DATA_DIR ?? join(homedir(), '.hivemind-server', 'data'),
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    secretKey: e.HIVEMIND_SECRET_KEY,
    adminApiKey: e.ADMIN_API_KEY,
    clockToleranceS: e.HIVEMIND_CLOCK_TOLERANCE_S,
    jwksCooldownS: e.HIVEMIND_JWKS_COOLDOWN_S,
    maxSubjectTokenBytes: e.HIVEMIND_MAX_SUBJECT_TOKEN_BYTES,
    signingAlg: e.HIVEMIND_SIGNING_ALG,
    rateLimitExchangePerMin: e.HIVEMIND_RATE_LIMIT_EXCHANGE_PER_MIN,
    rateLimitExchangePerSubjectPerMin: e.HIVEMIND_RATE_LIMIT_EXCHANGE_PER_SUBJECT_PER_MIN,
    redisKeyPrefix: e.HIVEMIND_REDIS_KEY_PREFIX,
    logLevel: e.LOG_LEVEL,
    testClockOffsetS: e.NODE_ENV === 'test' ? (e.HIVEMIND_TEST_CLOCK_OFFSET_S ?? 0) : 0,
    metrics: e.HIVEMIND_METRICS,
    sessionsMaxBodyBytes: e.HIVEMIND_SESSIONS_MAX_BODY_BYTES,
    sessionsMaxBatchItems: e.HIVEMIND_SESSIONS_MAX_BATCH_ITEMS,
    trustedProxies: cidrList('HIVEMIND_TRUSTED_PROXIES', e.HIVEMIND_TRUSTED_PROXIES),
    rateLimitAuthFailuresPerMin: e.HIVEMIND_RATE_LIMIT_AUTH_FAILURES_PER_MIN,
    rateLimitLoginFailuresPerMin: e.HIVEMIND_RATE_LIMIT_LOGIN_FAILURES_PER_MIN,
    sessionTtlS: e.HIVEMIND_SESSION_TTL_S,
    forwardAuth: {
      enabled: e.HIVEMIND_FORWARD_AUTH,
      trustedNets: cidrList(
        'HIVEMIND_FORWARD_AUTH_TRUSTED_NETS',
        e.HIVEMIND_FORWARD_AUTH_TRUSTED_NETS,
      ),
      userHeader: e.HIVEMIND_FORWARD_AUTH_USER_HEADER,
      emailHeader: e.HIVEMIND_FORWARD_AUTH_EMAIL_HEADER,
      groupsHeader: e.HIVEMIND_FORWARD_AUTH_GROUPS_HEADER,
      groupsDelim: e.HIVEMIND_FORWARD_AUTH_GROUPS_DELIM,
      groupAdmin: e.HIVEMIND_GROUP_ADMIN,
      groupUser: e.HIVEMIND_GROUP_USER,
      groupReadOnly: e.HIVEMIND_GROUP_READONLY,
    },
  }
}
