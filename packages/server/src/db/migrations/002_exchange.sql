-- Token exchange: identity providers bound to service accounts, and the replay
-- table (the default replay store; Redis replaces it when REDIS_URL is set).

CREATE TABLE identity_providers (
  id text PRIMARY KEY CHECK (id LIKE 'idp\_%'),
  service_account_id text NOT NULL REFERENCES service_accounts (id) ON DELETE CASCADE,
  preset text NOT NULL CHECK (preset IN ('github', 'kubernetes', 'modal', 'generic')),
  -- Exact `iss`; no normalisation (a trailing slash makes another issuer).
  issuer text NOT NULL,
  -- NULL = the server's own audience (HIVEMIND_PUBLIC_URL), resolved per exchange.
  audiences text[],
  selector text NOT NULL,
  policy text,
  jwks_uri text,
  jwks jsonb,
  ca_pem text,
  replay text NOT NULL DEFAULT 'single-use' CHECK (replay IN ('single-use')),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Two providers (of any service accounts) may not share (issuer, selector).
CREATE UNIQUE INDEX identity_providers_issuer_selector_key ON identity_providers (issuer, selector);
CREATE INDEX identity_providers_sa_idx ON identity_providers (service_account_id, created_at);

-- One row per exchanged ID token, kept until the token's exp + leeway.
CREATE TABLE replay_claims (
  key text PRIMARY KEY,
  expires_at timestamptz NOT NULL
);

CREATE INDEX replay_claims_expires_idx ON replay_claims (expires_at);
