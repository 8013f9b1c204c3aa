// Public surface of @hivemind/sdk. Named exports only; wire shapes live in
// `@hivemind/sdk/schemas`.

export {
  HiveMindError,
  CredentialUnavailableError,
  AuthenticationError,
  SubjectTokenExhaustedError,
  HiveMindApiError,
  ResponseValidationError,
  HiveMindNetworkError,
  ConfigurationError,
  isHiveMindError,
} from './errors.js'
export type { HiveMindErrorCode, AnyHiveMindError, ApiErrorInit } from './errors.js'

export type {
  Credential,
  CredentialProvider,
  ProviderCallOptions,
  ProviderInit,
  Logger,
} from './credentials/types.js'
export { fromStatic, ENV_TOKEN } from './credentials/from-static.js'
export type { FromStaticInit } from './credentials/from-static.js'
export { fromApiKey, ENV_API_KEY } from './credentials/from-api-key.js'
export type { FromApiKeyInit } from './credentials/from-api-key.js'
export {
  fromGitHubActions,
  ENV_ACTIONS_ID_TOKEN_REQUEST_URL,
  ENV_ACTIONS_ID_TOKEN_REQUEST_TOKEN,
  GITHUB_MISSING_PERMISSION_MESSAGE,
} from './credentials/from-github-actions.js'
export type { FromGitHubActionsInit } from './credentials/from-github-actions.js'
export { fromModal, ENV_MODAL_IDENTITY_TOKEN } from './credentials/from-modal.js'
export type { FromModalInit } from './credentials/from-modal.js'
export {
  fromTokenFile,
  ENV_OIDC_TOKEN_FILE,
  DEFAULT_OIDC_TOKEN_FILE,
} from './credentials/from-token-file.js'
export type { FromTokenFileInit } from './credentials/from-token-file.js'
export { chain, defaultChain } from './credentials/chain.js'
export type { DefaultChainInit } from './credentials/chain.js'

export { TokenManager, TokenManagerOptions } from './token/token-manager.js'
export type { Clock } from './internal/clock.js'
export type {
  TokenManagerInit,
  TokenManagerOptionsInput,
  TokenManagerStateChange,
  TokenManagerState,
  TokenManagerEvents,
  AccessToken,
} from './token/token-manager.js'

export { HiveMindClient, HiveMindClientOptions } from './http/client.js'
export type {
  HiveMindClientInit,
  HiveMindClientOptionsInput,
  ClientAuth,
  ExchangeOptions,
} from './http/client.js'
