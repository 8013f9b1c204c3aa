import { z } from 'zod'

/** RFC 8693 token-exchange grant type. */
export const GRANT_TYPE_TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
export const TOKEN_TYPE_ID_TOKEN = 'urn:ietf:params:oauth:token-type:id_token'
export const TOKEN_TYPE_JWT = 'urn:ietf:params:oauth:token-type:jwt'

/**
 * Body of `POST /oauth/token` (form-encoded or JSON).
 * @see https://www.rfc-editor.org/rfc/rfc8693#section-2.1
 */
export const TokenExchangeRequest = z.object({
  grant_type: z.string(),
  subject_token: z.string(),
  subject_token_type: z.string(),
  /** Space-separated; may only narrow the service account's scopes. */
  scope: z.string().optional(),
  audience: z.string().optional(),
  resource: z.string().optional(),
})
export type TokenExchangeRequest = z.infer<typeof TokenExchangeRequest>

/**
 * Successful exchange.
 * @see https://www.rfc-editor.org/rfc/rfc8693#section-2.2.1
 */
export const TokenExchangeResponse = z.object({
  access_token: z.string().min(1),
  issued_token_type: z.literal(TOKEN_TYPE_JWT),
  token_type: z.literal('Bearer'),
  expires_in: z.number().int().positive(),
  scope: z.string(),
})
export type TokenExchangeResponse = z.infer<typeof TokenExchangeResponse>

/** RFC 6749 error codes the exchange endpoint answers with. */
export const OAuthErrorCode = z.enum([
  'invalid_request',
  'invalid_client',
  'invalid_grant',
  'invalid_scope',
  'invalid_target',
  'unauthorized_client',
  'unsupported_grant_type',
  'temporarily_unavailable',
  'server_error',
])
export type OAuthErrorCode = z.infer<typeof OAuthErrorCode>

/** The check that failed, in `hivemind_error` beside the RFC 6749 `error`. */
export const HiveMindExchangeError = z.enum([
  'malformed_token',
  'unknown_issuer',
  'jwks_unavailable',
  'unknown_key',
  'bad_signature',
  'disallowed_algorithm',
  'audience_mismatch',
  'expired',
  'not_yet_valid',
  'missing_claim',
  'invalid_claim',
  'replayed_token',
  'no_matching_service_account',
  'service_account_disabled',
  'policy_denied',
  'invalid_scope',
  'rate_limited',
  'replay_store_unavailable',
  'unsupported_token_type',
  'unsupported_grant_type',
  'invalid_request',
  'invalid_target',
])
export type HiveMindExchangeError = z.infer<typeof HiveMindExchangeError>

/**
 * RFC 6749 §5.2 error body, plus the HiveMind check that failed.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.2
 */
export const OAuthErrorBody = z.object({
  error: z.string(),
  error_description: z.string().optional(),
  hivemind_error: z.string().optional(),
  /** Present on `audience_mismatch`: what the server expects. */
  expected_audience: z.string().optional(),
})
export type OAuthErrorBody = z.infer<typeof OAuthErrorBody>
