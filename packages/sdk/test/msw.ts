// msw for the SDK's unit tests of HTTP behaviour (retries, error mapping) only.
// Anything that crosses a process boundary uses real servers on loopback instead.
import { http, HttpResponse, type RequestHandler } from 'msw'
import { setupServer, type SetupServer } from 'msw/node'
import { afterAll, afterEach, beforeAll } from 'vitest'
import {
  HealthResponse,
  MeResponse,
  OAuthErrorBody,
  ApiErrorBody,
  TOKEN_TYPE_JWT,
  TokenExchangeRequest,
  TokenExchangeResponse,
} from '../src/schemas/index.js'

/** Base URL the msw handlers answer on; never resolves for real. */
export const TEST_ENDPOINT = 'https://hivemind.test'

/** One request a handler saw. */
export interface RecordedCall {
  method: string
  /** Path only, e.g. `/oauth/token`. */
  path: string
  headers: Record<string, string>
  body: string
  /** Parsed form body, for `application/x-www-form-urlencoded` requests. */
  form: Record<string, string> | undefined
}

/** Every call the handlers recorded in the current test (cleared after each). */
export const calls: RecordedCall[] = []

/** Calls to one path. */
export function callsTo(path: string): RecordedCall[] {
  return calls.filter((c) => c.path === path)
}

/**
 * Starts one msw server for the test file with `onUnhandledFrame: 'error'` (msw 3's
 * name for `onUnhandledRequest`), resets
 * handlers and recorded calls after each test and closes it at the end.
 */
export function useMswServer(...handlers: RequestHandler[]): SetupServer {
  const server = setupServer(...handlers)
  beforeAll(() => server.listen({ onUnhandledFrame: 'error' }))
  afterEach(() => {
    server.resetHandlers()
    calls.length = 0
  })
  afterAll(() => server.close())
  return server
}

type Resolver = (info: {
  request: Request
  call: RecordedCall
  /** 1-based count of calls to this path in the test. */
  n: number
}) => Response | Promise<Response>

/** A handler that records each call before answering. */
export function route(method: 'get' | 'post', path: string, resolve: Resolver): RequestHandler {
  return http[method](`${TEST_ENDPOINT}${path}`, async ({ request }) => {
    const body = await request.clone().text()
    const contentType = request.headers.get('content-type') ?? ''
    const call: RecordedCall = {
      method: request.method,
      path: new URL(request.url).pathname,
      headers: Object.fromEntries(request.headers.entries()),
      body,
      form: contentType.includes('application/x-www-form-urlencoded')
        ? Object.fromEntries(new URLSearchParams(body))
        : undefined,
    }
    calls.push(call)
    return resolve({ request, call, n: callsTo(call.path).length })
  }) as RequestHandler
}

/** A schema-valid exchange answer. */
export function exchangeBody(
  overrides: Partial<TokenExchangeResponse> = {},
): TokenExchangeResponse {
  return TokenExchangeResponse.parse({
    access_token: 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJzYV8xIiwianRpIjoiajEifQ.c2ln',
    issued_token_type: TOKEN_TYPE_JWT,
    token_type: 'Bearer',
    expires_in: 3600,
    scope: 'read write',
    ...overrides,
  })
}

/** A schema-valid RFC 6749 error response. */
export function oauthError(
  status: number,
  body: OAuthErrorBody,
  headers: Record<string, string> = {},
): Response {
  return HttpResponse.json(OAuthErrorBody.parse(body), { status, headers })
}

/** A schema-valid API error response. */
export function apiError(
  status: number,
  body: ApiErrorBody,
  headers: Record<string, string> = {},
): Response {
  return HttpResponse.json(ApiErrorBody.parse(body), { status, headers })
}

/** Default handlers: a server that exchanges anything well-formed and answers health and me. */
export const defaultHandlers: RequestHandler[] = [
  route('post', '/oauth/token', ({ call }) => {
    const parsed = TokenExchangeRequest.safeParse(call.form)
    if (!parsed.success) return oauthError(400, { error: 'invalid_request' })
    return HttpResponse.json(exchangeBody(), { headers: { 'cache-control': 'no-store' } })
  }),
  route('get', '/api/v1/health', () =>
    HttpResponse.json(
      HealthResponse.parse({
        status: 'ok',
        version: '0.1.0',
        audience: TEST_ENDPOINT,
        checks: { database: 'ok' },
      }),
    ),
  ),
  route('get', '/api/v1/me', () =>
    HttpResponse.json(
      MeResponse.parse({ kind: 'service_account', id: 'sa_1', name: 'ci', scopes: ['write'] }),
    ),
  ),
]
