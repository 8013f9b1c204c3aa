/** Something that logs; `console` fits, and so does a pino logger. */
export interface Logger {
  debug(message: string, ...args: unknown[]): void
  info(message: string, ...args: unknown[]): void
  warn(message: string, ...args: unknown[]): void
  error(message: string, ...args: unknown[]): void
}

/**
 * A credential a provider resolved. `bearer` and `api-key` are sent as they are;
 * `id-token` must be exchanged at `/oauth/token` first.
 */
export type Credential =
  | { kind: 'bearer'; token: string; source: string }
  | { kind: 'api-key'; apiKey: string; source: string }
  | {
      kind: 'id-token'
      token: string
      source: string
      /**
       * Whether asking the provider again can yield a different token
       * (GitHub mints one per call; Modal's env var never changes; a file may rotate).
       */
      refreshable: 'always' | 'maybe' | 'never'
    }

/** Options every call to a provider may take. */
export interface ProviderCallOptions {
  /** Audience to request, for providers that mint on demand (GitHub). */
  audience?: string | undefined
  signal?: AbortSignal | undefined
}

/**
 * An async thunk that resolves a credential or throws
 * `CredentialUnavailableError` (try the next provider) or `AuthenticationError` (stop).
 */
export type CredentialProvider = ((options?: ProviderCallOptions) => Promise<Credential>) & {
  /** Name used in logs and errors, e.g. `fromTokenFile`. */
  readonly providerName: string
}

/** Init every provider factory accepts. */
export interface ProviderInit {
  logger?: Logger | undefined
  /** Defaults to `process.env`. */
  env?: Readonly<Record<string, string | undefined>> | undefined
}
