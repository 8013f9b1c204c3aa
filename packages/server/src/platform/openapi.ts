import { z } from 'zod'
import {
  ApiErrorBody,
  AuditList,
  HealthResponse,
  MeResponse,
  OAuthErrorBody,
  OpenIdConfiguration,
  ServiceAccount,
  ServiceAccountCreateRequest,
  ServiceAccountList,
  ServiceAccountPatchRequest,
  ServiceAccountTokenCreateRequest,
  ServiceAccountTokenCreated,
  ServiceAccountTokenList,
  TokenExchangeRequest,
  TokenExchangeResponse,
  BatchUploadRequest,
  BatchUploadResponse,
  EventList,
  SearchResponse,
  SessionList,
  SessionRecord,
  StatsResponse,
} from '@hivemind/sdk/schemas'

type Auth = 'public' | 'admin' | 'any'

/** One documented operation. Schemas come from `@hivemind/sdk/schemas`, so docs and code cannot drift. */
export interface ApiOperation {
  method: 'get' | 'post' | 'patch' | 'put' | 'delete'
  path: string
  summary: string
  auth: Auth
  tag: string
  request?: z.ZodType
  /** Request content types; JSON unless listed. */
  requestTypes?: string[]
  response?: z.ZodType
  status?: number
  query?: Record<string, string>
}

const ServiceAccountId = { id: 'Service account id (`sa_…`)' }
const SessionFilterParams = {
  agent: 'Agent id (`claude-code`, `codex`, …)',
  owner: 'Owner id (`sa_…`, `usr_…`): a filter, not a wall',
  since: 'Sessions started at or after (ISO 8601 or YYYY-MM-DD)',
  until: 'Sessions started before (ISO 8601 or YYYY-MM-DD)',
  cwd: 'Working directory prefix',
  repo: '`org/name`, or `name` alone',
  git_branch: 'Git branch',
}
const PageParams = {
  limit: 'Page size, 1-500 (default 50)',
  cursor: '`next_cursor` of the previous page',
}

/** Every route this server serves. The exchange engineer's routes are listed here too. */
export const OPERATIONS: ApiOperation[] = [
  {
    method: 'post',
    path: '/oauth/token',
    summary: 'RFC 8693 token exchange',
    auth: 'public',
    tag: 'exchange',
    request: TokenExchangeRequest,
    requestTypes: ['application/x-www-form-urlencoded', 'application/json'],
    response: TokenExchangeResponse,
  },
  {
    method: 'get',
    path: '/.well-known/jwks.json',
    summary: "The server's public signing keys",
    auth: 'public',
    tag: 'discovery',
  },
  {
    method: 'get',
    path: '/.well-known/openid-configuration',
    summary: 'Issuer metadata and expected audience',
    auth: 'public',
    tag: 'discovery',
    response: OpenIdConfiguration,
  },
  {
    method: 'get',
    path: '/api/v1/health',
    summary: 'Readiness (503 when a dependency is down)',
    auth: 'public',
    tag: 'operations',
    response: HealthResponse,
  },
  {
    method: 'get',
    path: '/api/v1/health/live',
    summary: 'Liveness',
    auth: 'public',
    tag: 'operations',
  },
  {
    method: 'get',
    path: '/metrics',
    summary: 'Prometheus metrics (text format)',
    auth: 'public',
    tag: 'operations',
  },
  {
    method: 'get',
    path: '/api/v1/me',
    summary: 'Who the credential acts as',
    auth: 'any',
    tag: 'identity',
    response: MeResponse,
  },
  {
    method: 'get',
    path: '/api/v1/service-accounts',
    summary: 'List service accounts',
    auth: 'admin',
    tag: 'service accounts',
    response: ServiceAccountList,
    query: PageParams,
  },
  {
    method: 'post',
    path: '/api/v1/service-accounts',
    summary: 'Create a service account',
    auth: 'admin',
    tag: 'service accounts',
    request: ServiceAccountCreateRequest,
    response: ServiceAccount,
    status: 201,
  },
  {
    method: 'get',
    path: '/api/v1/service-accounts/{id}',
    summary: 'Read a service account',
    auth: 'admin',
    tag: 'service accounts',
    response: ServiceAccount,
  },
  {
    method: 'patch',
    path: '/api/v1/service-accounts/{id}',
    summary: 'Change a service account (disabling revokes all its credentials at once)',
    auth: 'admin',
    tag: 'service accounts',
    request: ServiceAccountPatchRequest,
    response: ServiceAccount,
  },
  {
    method: 'delete',
    path: '/api/v1/service-accounts/{id}',
    summary: 'Delete a service account',
    auth: 'admin',
    tag: 'service accounts',
    status: 204,
  },
  {
    method: 'get',
    path: '/api/v1/service-accounts/{id}/tokens',
    summary: 'List static tokens (without secrets)',
    auth: 'admin',
    tag: 'service accounts',
    response: ServiceAccountTokenList,
    query: PageParams,
  },
  {
    method: 'post',
    path: '/api/v1/service-accounts/{id}/tokens',
    summary: 'Create a static `hmsa_` token (shown once)',
    auth: 'admin',
    tag: 'service accounts',
    request: ServiceAccountTokenCreateRequest,
    response: ServiceAccountTokenCreated,
    status: 201,
  },
  {
    method: 'delete',
    path: '/api/v1/service-accounts/{id}/tokens/{tokenId}',
    summary: 'Revoke a static token',
    auth: 'admin',
    tag: 'service accounts',
    status: 204,
  },
  {
    method: 'post',
    path: '/api/v1/exchange/explain',
    summary: 'Dry-run an exchange: each check with pass/fail',
    auth: 'admin',
    tag: 'exchange',
  },
  {
    method: 'get',
    path: '/api/v1/audit',
    summary: 'Audit log, newest first',
    auth: 'admin',
    tag: 'audit',
    response: AuditList,
    query: {
      ...PageParams,
      action: 'Exact action, or a prefix ending in `*`',
      actor: 'Actor id',
      result: '`success` or `failure`',
    },
  },
  {
    method: 'post',
    path: '/api/v1/sessions/batch',
    summary:
      'Upload normalised sessions and events (scope write); per-item results, 413 over the limits',
    auth: 'any',
    tag: 'sessions',
    request: BatchUploadRequest,
    response: BatchUploadResponse,
  },
  {
    method: 'get',
    path: '/api/v1/sessions',
    summary: 'Sessions of the whole team, newest first (scope read)',
    auth: 'any',
    tag: 'sessions',
    response: SessionList,
    query: { ...PageParams, ...SessionFilterParams },
  },
  {
    method: 'get',
    path: '/api/v1/sessions/{id}',
    summary: 'One session by id or session_key (scope read)',
    auth: 'any',
    tag: 'sessions',
    response: SessionRecord,
    query: { owner: 'Owner id, when two owners uploaded the same session_key' },
  },
  {
    method: 'get',
    path: '/api/v1/sessions/{id}/events',
    summary: "A session's events in source order: seq, then thread (scope read)",
    auth: 'any',
    tag: 'sessions',
    response: EventList,
    query: {
      ...PageParams,
      owner: 'Owner id, when two owners uploaded the same session_key',
      thread: 'Only this thread (`main` or a subagent id)',
      kind: 'Only this event kind',
      include_removed: '`true` to list tombstoned events too',
      include_raw: '`true` to include the raw source record',
    },
  },
  {
    method: 'get',
    path: '/api/v1/search',
    summary: 'Full-text search over event text, ranked, with highlighted snippets (scope read)',
    auth: 'any',
    tag: 'sessions',
    response: SearchResponse,
    query: {
      q: 'Web-search syntax: words, "a phrase", -not, or',
      kind: 'Only this event kind',
      ...PageParams,
      ...SessionFilterParams,
    },
  },
  {
    method: 'get',
    path: '/api/v1/stats',
    summary: 'Sessions, events and tokens in total and by agent, owner and day (scope read)',
    auth: 'any',
    tag: 'sessions',
    response: StatsResponse,
    query: SessionFilterParams,
  },
]

function schema(s: z.ZodType, io: 'input' | 'output'): unknown {
  // The document declares the dialect once; nested `$schema` keys would only be noise.
  const { $schema: _dialect, ...rest } = z.toJSONSchema(s, {
    io,
    unrepresentable: 'any',
    target: 'draft-2020-12',
  })
  return rest
}

/**
 * OpenAPI 3.1 document of the HTTP API, generated from the zod wire schemas.
 *
 * @see https://spec.openapis.org/oas/v3.1.0
 */
export function buildOpenApi(options: {
  serverUrl: string
  version: string
  extra?: ApiOperation[]
}) {
  const paths: Record<string, Record<string, unknown>> = {}
  const errorResponse = {
    description: 'Error',
    content: { 'application/json': { schema: schema(ApiErrorBody, 'output') } },
  }
  for (const op of [...OPERATIONS, ...(options.extra ?? [])]) {
    const params = [
      ...[...op.path.matchAll(/\{(\w+)\}/g)].map((m) => ({
        name: m[1],
        in: 'path',
        required: true,
        schema: { type: 'string' },
        ...(m[1] === 'id' && op.path.startsWith('/api/v1/service-accounts/')
          ? { description: ServiceAccountId.id }
          : m[1] === 'id' && op.path.startsWith('/api/v1/sessions/')
            ? { description: 'Session id, or its 64-hex session_key' }
            : {}),
      })),
      ...Object.entries(op.query ?? {}).map(([name, description]) => ({
        name,
        in: 'query',
        required: false,
        schema: { type: 'string' },
        description,
      })),
    ]
    const status = String(op.status ?? 200)
    const isOAuth = op.path === '/oauth/token'
    ;(paths[op.path] ??= {})[op.method] = {
      summary: op.summary,
      tags: [op.tag],
      ...(op.auth === 'public'
        ? { security: [] }
        : op.auth === 'admin'
          ? { security: [{ adminApiKey: [] }, { bearer: [] }] }
          : {}),
      ...(params.length ? { parameters: params } : {}),
      ...(op.request
        ? {
            requestBody: {
              required: true,
              content: Object.fromEntries(
                (op.requestTypes ?? ['application/json']).map((t) => [
                  t,
                  { schema: schema(op.request!, 'input') },
                ]),
              ),
            },
          }
        : {}),
      responses: {
        [status]: op.response
          ? {
              description: 'OK',
              content: { 'application/json': { schema: schema(op.response, 'output') } },
            }
          : { description: status === '204' ? 'No content' : 'OK' },
        ...(isOAuth
          ? {
              '400': {
                description: 'RFC 6749 error',
                content: { 'application/json': { schema: schema(OAuthErrorBody, 'output') } },
              },
            }
          : { '4XX': errorResponse }),
      },
    }
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'HiveMind server API',
      version: options.version,
      description:
        'Errors outside /oauth/token are `{"error": message, "code": stable_code, "details"?}`.',
    },
    servers: [{ url: options.serverUrl }],
    components: {
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description: 'HiveMind JWT, `hmsa_` static token, or ADMIN_API_KEY',
        },
        adminApiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
      },
    },
    security: [{ bearer: [] }],
    paths,
  }
}
