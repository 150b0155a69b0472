#!/usr/bin/env bash
# Retention and erasure at scale: CASES (10,000 by default) realistic cases
# seeded into a fresh store (benches/workspace.rs); half of them closed 800
# days ago (past the seeds' 730 days), by SQL on the store. Then, timed:
# `retention run` erases the personal data of that half, and `reporters
# erase` finds the seeded sender's address in the other half through the
# blind index and erases it there. Each erasure rewrites the case's sealed
# fields and texts, re-indexes what remains, and writes its timeline and
# audit entries in one transaction. No peer does this; the figures are
# absolute, on a shared 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
cases=${CASES:-10000}
cargo build --release -q
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export DISCLOSURE_MX_DATA_DIR="$dir/data"
# No DNS look-ups off this machine, and none beside the figures measured.
export DISCLOSURE_MX_SENDER_AUTH_ENABLED=false
seeded=$(cargo bench -q --bench workspace -- "$cases")
echo "$seeded" | head -n1
db="$dir/data/disclosure-mx.db"
old=$(( $(date +%s) - 800 * 86400 ))
sqlite3 "$db" "UPDATE cases SET state = 'closed', close_reason = 'informative' WHERE id % 2 = 0;
  INSERT INTO case_events (case_id, at, kind, actor, detail)
    SELECT id, $old, 'transition', 'bench', 'closed' FROM cases WHERE id % 2 = 0;"
timed() {
  local what=$1; shift
  local s e n
  s=$(date +%s.%N)
  n=$("$@" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
  e=$(date +%s.%N)
  python3 -c "s,e,n=$s,$e,$n; print(f'$what: {n} cases in {e-s:.1f} s, {n/(e-s):.0f} cases/s')"
}
timed "retention run (closed 800 days ago)" target/release/disclosure-mx retention run --json
timed "reporters erase (one sender, every other case)" \
  target/release/disclosure-mx reporters erase r@researcher.example --json
left=$(sqlite3 "$db" "SELECT COUNT(*) FROM cases WHERE erased_at IS NULL")
echo "cases not erased: $left"
