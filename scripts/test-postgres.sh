#!/usr/bin/env bash
# Starts a throw-away PostgreSQL server on 127.0.0.1 for the tests and prints its SQLAlchemy URL.
# Installs Debian's postgresql package when no server binaries are present. Usage:
#   export CURATE_TEST_PG_URL=$(bash scripts/test-postgres.sh)      # stop: bash scripts/test-postgres.sh stop
set -euo pipefail
PORT=${CURATE_TEST_PG_PORT:-54329}
DIR=${CURATE_TEST_PG_DIR:-/tmp/curate-test-pg}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bin" ]; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; } >&2
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ "${1:-}" = stop ]; then
  as_pg "$bin/pg_ctl" -D "$DIR/data" -m immediate stop >&2 || true
  exit 0
fi
if ! as_pg "$bin/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
  rm -rf "$DIR" && mkdir -p "$DIR"
  [ "$(id -u)" = 0 ] && chown postgres "$DIR"
  as_pg "$bin/initdb" -D "$DIR/data" -U curate --auth=trust >/dev/null
  as_pg "$bin/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w \
    -o "-h 127.0.0.1 -p $PORT -k $DIR -c fsync=on -c max_connections=100" start >&2
fi
echo "postgresql+psycopg://curate@127.0.0.1:$PORT/postgres"
