-- People and their credentials: local and forward-auth users, browser sessions,
-- user API keys, personal access tokens (PATs) and the org policy for PATs.
-- Every secret is stored as a hash only: Argon2id for passwords, SHA-256 hex for
-- high-entropy tokens (sessions, keys, PATs, CSRF tokens).

CREATE TABLE users (
  id text PRIMARY KEY CHECK (id LIKE 'usr\_%'),
  username text NOT NULL,
  email text,
  -- Argon2id PHC string; NULL for forward-auth and bootstrap users (no password login).
  password_hash text,
  role text NOT NULL CHECK (role IN ('Admin', 'User', 'ReadOnly')),
  source text NOT NULL CHECK (source IN ('local', 'forward_auth', 'bootstrap')),
  disabled boolean NOT NULL DEFAULT false,
  disabled_at timestamptz,
  last_login_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Names and emails are matched case-insensitively (forward-auth headers vary in case).
CREATE UNIQUE INDEX users_username_key ON users (lower(username));
CREATE UNIQUE INDEX users_email_key ON users (lower(email)) WHERE email IS NOT NULL;

-- At most one row, ever: `POST /auth/register` claims it in the same transaction that
-- creates the first (Admin) account, so two concurrent first registrations cannot
-- both succeed, on PostgreSQL and PGlite alike.
CREATE TABLE first_registration (
  only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  user_id text NOT NULL,
  at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE user_sessions (
  id text PRIMARY KEY CHECK (id LIKE 'ses\_%'),
  user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  -- SHA-256 of the `hms-…` cookie value.
  token_hash text NOT NULL UNIQUE,
  -- SHA-256 of the `hm_csrf` value issued with this session (double submit, bound).
  csrf_hash text NOT NULL,
  expires_at timestamptz NOT NULL,
  address text,
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz
);

CREATE INDEX user_sessions_user_idx ON user_sessions (user_id);

CREATE TABLE user_api_keys (
  id text PRIMARY KEY CHECK (id LIKE 'uak\_%'),
  user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  -- SHA-256 of the `hm-…` key.
  key_hash text NOT NULL UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  revoked_at timestamptz
);

CREATE INDEX user_api_keys_user_idx ON user_api_keys (user_id);

CREATE TABLE personal_access_tokens (
  id text PRIMARY KEY CHECK (id LIKE 'pat\_%'),
  user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name text NOT NULL,
  -- SHA-256 of the `hmpat_…` token.
  token_hash text NOT NULL UNIQUE,
  scopes text[] NOT NULL,
  -- NULL = never expires.
  expires_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  revoked_at timestamptz
);

CREATE INDEX personal_access_tokens_user_idx ON personal_access_tokens (user_id, created_at);

-- Org-wide settings; at most one row. No row means the defaults (a restore needs
-- a freshly migrated database to be empty).
CREATE TABLE org_policy (
  only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  pats text NOT NULL DEFAULT 'enabled' CHECK (pats IN ('enabled', 'write-only', 'disabled')),
  updated_at timestamptz NOT NULL DEFAULT now()
);
