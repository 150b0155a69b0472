#!/usr/bin/env bash
# Sign-in latency of the analyst interface: the release binary with the dev
# IdP on loopback, 200 sequential sign-ins (benches/signin.py).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
dir=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
DISCLOSURE_MX_SENDER_AUTH_ENABLED=false DISCLOSURE_MX_DATA_DIR="$dir/data" DISCLOSURE_MX_SMTP_LISTEN=127.0.0.1:0 DISCLOSURE_MX_WEB_LISTEN=127.0.0.1:0 \
  target/release/disclosure-mx serve --dev-idp 2>"$dir/log" &
pid=$!
for _ in $(seq 1 100); do [ -s "$dir/data/api-listening" ] && break; sleep 0.1; done
python3 benches/signin.py "http://$(head -n1 "$dir/data/api-listening")" "${SIGNINS:-200}"
