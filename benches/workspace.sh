#!/usr/bin/env bash
# The analyst's workspace at scale: CASES (100,000 by default) realistic
# cases seeded straight into a fresh store through its write path and the
# search index (benches/workspace.rs), then the release binary serving
# them, timed through the API and the web pages (benches/workspace.py):
# list pages, deep pages, searches, and a case with a 200-message
# conversation; beside the same reads as bare SQL on the same file.
set -euo pipefail
cd "$(dirname "$0")/.."
cases=${CASES:-100000}
cargo build --release -q
dir=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
export DISCLOSURE_MX_DATA_DIR="$dir/data"
# No DNS look-ups off this machine, and none beside the figures measured.
export DISCLOSURE_MX_SENDER_AUTH_ENABLED=false
seeded=$(cargo bench -q --bench workspace -- "$cases")
echo "$seeded" | head -n1
conversation=$(echo "$seeded" | sed -n 's/^conversation-case //p')
token=$(target/release/disclosure-mx tokens create bench --org netcompany --org magenta 2>/dev/null)
DISCLOSURE_MX_SMTP_LISTEN=127.0.0.1:0 DISCLOSURE_MX_WEB_LISTEN=127.0.0.1:0 \
  target/release/disclosure-mx serve --dev-idp 2>"$dir/log" &
pid=$!
for _ in $(seq 1 1200); do [ -s "$dir/data/api-listening" ] && break; sleep 0.1; done
python3 benches/workspace.py "http://$(head -n1 "$dir/data/api-listening")" "$token" \
  "$conversation" "$dir/data/disclosure-mx.db" "$cases"
