-- Sessions API: agent sessions and their events, stored per owner (the service account
-- or user behind the uploading credential), read team-wide.
-- Runs on PostgreSQL 15 and PGlite: no PG16+ syntax, no extensions.

CREATE TABLE sessions (
  id bigserial PRIMARY KEY,
  owner_kind text NOT NULL CHECK (owner_kind IN ('admin', 'service_account', 'user')),
  owner_id text NOT NULL,
  -- sha256 hex of (agent, source session id): the client's identity of the session.
  session_key text NOT NULL,
  -- NULL while only events of the session have arrived (its record comes later).
  agent text,
  source_session_id text,
  parent_session_key text,
  parent_source_session_id text,
  relation text,
  cwd text,
  -- `org/name` from the client, else the last segment of cwd.
  repo text,
  git_branch text,
  model text,
  title text,
  host text,
  agent_versions text[] NOT NULL DEFAULT '{}',
  source_paths text[] NOT NULL DEFAULT '{}',
  started_at timestamptz,
  ended_at timestamptz,
  -- List order and the since/until filter: started_at, else the first upload time.
  sort_at timestamptz NOT NULL,
  -- Maintained by the batch upload (deltas per batch), so lists and stats never scan events.
  event_count bigint NOT NULL DEFAULT 0,
  input_tokens bigint NOT NULL DEFAULT 0,
  output_tokens bigint NOT NULL DEFAULT 0,
  cache_read_tokens bigint NOT NULL DEFAULT 0,
  cache_write_tokens bigint NOT NULL DEFAULT 0,
  reasoning_tokens bigint NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX sessions_owner_session_key ON sessions (owner_kind, owner_id, session_key);
-- Keyset pagination, newest first, alone and under each equality filter.
CREATE INDEX sessions_sort_idx ON sessions (sort_at DESC, id DESC);
CREATE INDEX sessions_agent_sort_idx ON sessions (agent, sort_at DESC, id DESC);
CREATE INDEX sessions_owner_sort_idx ON sessions (owner_id, sort_at DESC, id DESC);
CREATE INDEX sessions_repo_sort_idx ON sessions (repo, sort_at DESC, id DESC);
CREATE INDEX sessions_branch_sort_idx ON sessions (git_branch, sort_at DESC, id DESC);
-- cwd prefix filter (LIKE 'prefix%') whatever the database collation.
CREATE INDEX sessions_cwd_idx ON sessions (cwd text_pattern_ops);
-- GET /api/v1/sessions/{session_key} across owners.
CREATE INDEX sessions_key_idx ON sessions (session_key);

CREATE TABLE events (
  id bigserial PRIMARY KEY,
  session_id bigint NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
  owner_kind text NOT NULL,
  owner_id text NOT NULL,
  event_key text NOT NULL,
  thread text NOT NULL,
  seq bigint NOT NULL,
  ts timestamptz,
  kind text NOT NULL,
  native_type text,
  role text,
  model text,
  text text,
  tool_name text,
  tool_call_id text,
  tool_input jsonb,
  tool_output jsonb,
  tool_is_error boolean,
  -- NULL = the event carries no usage.
  input_tokens bigint,
  output_tokens bigint,
  cache_read_tokens bigint,
  cache_write_tokens bigint,
  reasoning_tokens bigint,
  rev bigint,
  tombstone boolean NOT NULL DEFAULT false,
  -- Verbatim source record, capped by the client (256 KB) and checked by the server.
  raw text,
  raw_oversize jsonb,
  src jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  -- Stored so ranking reads it instead of re-parsing text; capped because a tsvector
  -- cannot exceed 1 MB and huge tool outputs add little to search.
  fts tsvector GENERATED ALWAYS AS (
    to_tsvector('english'::regconfig, left(coalesce(tool_name, '') || ' ' || coalesce(text, ''), 100000))
  ) STORED
);

CREATE UNIQUE INDEX events_owner_event_key ON events (owner_kind, owner_id, event_key);
-- One session's events in source order, keyset-paginated on (seq, thread, id).
CREATE INDEX events_session_order_idx ON events (session_id, seq, thread, id);
-- Full-text search skips removed events, so they stay out of the index too.
CREATE INDEX events_fts_idx ON events USING gin (fts) WHERE NOT tombstone;
