export { ENV, DEFAULTS, TOKEN_TTL_BOUNDS } from './env.js'
export { AgentId, AGENT_ALIASES, EventKind, Scope, TokenExpiry } from './names.js'
export { normalizeAudience } from './audience.js'
export { replayKey } from './replay-key.js'
export {
  GRANT_TYPE_TOKEN_EXCHANGE,
  TOKEN_TYPE_ID_TOKEN,
  TOKEN_TYPE_JWT,
  TokenExchangeRequest,
  TokenExchangeResponse,
  OAuthErrorCode,
  HiveMindExchangeError,
  OAuthErrorBody,
} from './oauth.js'
export { ApiErrorBody, HealthCheckStatus, HealthResponse, MeResponse } from './api.js'
export {
  ServiceAccountName,
  ServiceAccountCreateRequest,
  ServiceAccountPatchRequest,
  ServiceAccount,
  ServiceAccountList,
  ServiceAccountTokenCreateRequest,
  ServiceAccountToken,
  ServiceAccountTokenCreated,
  ServiceAccountTokenList,
  AuditRecord,
  AuditList,
  OpenIdConfiguration,
  pageOf,
} from './admin.js'
export {
  GITHUB_ACTIONS_ISSUER,
  MODAL_ISSUER,
  IdentityProviderPreset,
  IdentityProviderCreateRequest,
  IdentityProviderPatchRequest,
  IdentityProvider,
  IdentityProviderList,
  ExchangeExplainRequest,
  ExchangeCheck,
  ExchangeExplainResponse,
} from './identity-provider.js'
export {
  RAW_MAX_CHARS,
  RAW_TRUNCATION_MARKER,
  SessionRelation,
  sessionKey,
  eventKey,
  TokenUsage,
  ToolInfo,
  SourceLocation,
  NormalizedSession,
  NormalizedEvent,
} from './sessions.js'
