#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on loopback for the multi-worker test and print its URL.
# Installs Debian's postgresql package if it is missing. Usage: URL=$(bash .ci/postgres.sh)
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"  # runuser lives there; a minimal PATH (env -i, some CI images) lacks it
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >&2
fi
BIN=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
PORT=${AMC_PG_PORT:-54329}
if "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then  # a server from an earlier run holds the port: reuse it
  runuser -u postgres -- "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres amc_test >&2 2>/dev/null || true
  echo "postgresql://postgres@127.0.0.1:$PORT/amc_test"
  exit 0
fi
DIR=$(mktemp -d /tmp/amc-pg.XXXXXX)
chown postgres "$DIR"
runuser -u postgres -- "$BIN/initdb" -D "$DIR/data" -A trust -U postgres -E UTF8 --locale=C >&2
runuser -u postgres -- "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w \
  -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c max_connections=50" start >&2
runuser -u postgres -- "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres amc_test >&2
echo "postgresql://postgres@127.0.0.1:$PORT/amc_test"
