#!/usr/bin/env bash
# Runs a command with a throw-away PostgreSQL and Redis on loopback, exporting
# HIVEMIND_TEST_DATABASE_URL and HIVEMIND_TEST_REDIS_URL for the tests.
# No systemd needed: PostgreSQL runs from a temp dir (as the postgres user when we
# are root), Redis with --daemonize yes. Under CI=true a missing service is fatal;
# locally the tests that need it skip.
set -uo pipefail

work=$(mktemp -d "${TMPDIR:-/tmp}/hivemind-services.XXXXXX")
chmod 755 "$work"
pids=()
cleanup() {
  if [ -n "${PGDATA_DIR:-}" ] && [ -d "$PGDATA_DIR" ]; then
    as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -m immediate stop >/dev/null 2>&1 || true
  fi
  if [ -n "${REDIS_PORT:-}" ]; then
    redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

fail_or_warn() {
  if [ "${CI:-}" = "true" ]; then
    echo "with-services: $1 (required under CI=true)" >&2
    exit 1
  fi
  echo "with-services: $1; tests that need it will skip" >&2
}

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

as_pg() {
  if [ "$(id -u)" = "0" ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# --- PostgreSQL -------------------------------------------------------------
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -n "${HIVEMIND_TEST_DATABASE_URL:-}" ]; then
  echo "with-services: using existing HIVEMIND_TEST_DATABASE_URL" >&2
elif [ -n "$PG_BIN" ] && [ -x "$PG_BIN/initdb" ]; then
  PGDATA_DIR="$work/pg"
  mkdir -p "$PGDATA_DIR"
  [ "$(id -u)" = "0" ] && chown postgres:postgres "$PGDATA_DIR"
  PG_PORT=$(free_port)
  if as_pg "$PG_BIN/initdb" -D "$PGDATA_DIR" -U postgres --auth=trust -E UTF8 --no-sync >"$work/initdb.log" 2>&1 &&
    as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -l "$PGDATA_DIR/server.log" -w -t 60 \
      -o "-k $PGDATA_DIR -h 127.0.0.1 -p $PG_PORT -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
      start >/dev/null 2>&1; then
    export HIVEMIND_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
    echo "with-services: PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT" >&2
  else
    cat "$work/initdb.log" "$PGDATA_DIR/server.log" 2>/dev/null | tail -20 >&2
    unset PGDATA_DIR
    fail_or_warn "PostgreSQL failed to start"
  fi
else
  fail_or_warn "PostgreSQL is not installed (apt-get install postgresql)"
fi

# --- Redis ------------------------------------------------------------------
if [ -n "${HIVEMIND_TEST_REDIS_URL:-}" ]; then
  echo "with-services: using existing HIVEMIND_TEST_REDIS_URL" >&2
elif command -v redis-server >/dev/null 2>&1; then
  REDIS_PORT=$(free_port)
  if redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes --save '' --appendonly no \
    --dir "$work" --pidfile "$work/redis.pid" --logfile "$work/redis.log" >/dev/null 2>&1; then
    for _ in $(seq 1 50); do
      redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
      sleep 0.1
    done
    if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
      export HIVEMIND_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
      echo "with-services: Redis $(redis-server --version | awk '{print $3}' | sed 's/v=//') on 127.0.0.1:$REDIS_PORT" >&2
    else
      unset REDIS_PORT
      fail_or_warn "Redis did not answer"
    fi
  else
    unset REDIS_PORT
    fail_or_warn "Redis failed to start"
  fi
else
  fail_or_warn "Redis is not installed (apt-get install redis-server)"
fi

"$@"
status=$?
exit $status
