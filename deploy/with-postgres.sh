#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL server: a cluster initialised
# in a temporary directory, listening on loopback only, on a free port, with
# its socket in that directory; torn down afterwards whatever happens.
# The command sees DISCLOSURE_MX_TEST_POSTGRES=postgres://...
#   deploy/with-postgres.sh cargo test --test e2e_intake
set -euo pipefail

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
[ -x "$bin/initdb" ] || { echo "with-postgres: PostgreSQL is not installed (deploy/system-deps.sh test installs it)" >&2; exit 1; }

dir=$(mktemp -d /tmp/dmx-pg.XXXXXX)
chmod 755 "$dir"
run_pg() {
  # initdb and the server refuse to run as root.
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
cleanup() {
  run_pg "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
run_pg "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 \
  || { cat "$dir/initdb.log"; exit 1; }
run_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=300 -c fsync=on" start >/dev/null \
  || { cat "$dir/server.log"; exit 1; }
export DISCLOSURE_MX_TEST_POSTGRES="postgres://postgres@127.0.0.1:$port/postgres"
echo "with-postgres: PostgreSQL on 127.0.0.1:$port" >&2
"$@"
