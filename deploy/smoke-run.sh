#!/usr/bin/env bash
# Proves `make run`: on a fresh data directory it builds, comes up on its
# embedded defaults (SQLite, generated dev certificate and key), takes a
# report over STARTTLS from swaks, files it as a case that `cases show`
# prints with its fields and deadlines, and drains on SIGTERM.
# Only the data directory and port are redirected, so a developer's own
# `make run` on 127.0.0.1:2525 is not disturbed.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
pid=""
cleanup() {
  [ -n "$pid" ] && kill -TERM -- "-$pid" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
export DISCLOSURE_MX_DATA_DIR="$dir/data"
export DISCLOSURE_MX_SMTP_LISTEN=127.0.0.1:0
export DISCLOSURE_MX_WEB_LISTEN=127.0.0.1:0
export DISCLOSURE_MX_METRICS_LISTEN=127.0.0.1:0
# Sender authentication stays on, asking a loopback port where no DNS
# server listens: every look-up is a temperror, none leaves the machine.
export DISCLOSURE_MX_SENDER_AUTH_NAMESERVERS=127.0.0.1:9
# The release build first, outside the wait: on a fresh clone it takes
# longer than any start-up should, and `make run` then starts at once.
bash deploy/system-deps.sh run >/dev/null
cargo build --release --quiet
setsid make run >"$dir/log" 2>&1 &
pid=$!
for _ in $(seq 1 240); do
  [ -s "$dir/data/listening" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$dir/log"; echo "smoke: make run exited early" >&2; exit 1; }
  sleep 0.5
done
[ -s "$dir/data/listening" ] || { tail -20 "$dir/log"; echo "smoke: built, but not listening after 2 min" >&2; exit 1; }
addr=$(head -n1 "$dir/data/listening")
[ "$(stat -c %a "$dir/data/tls/dev-key.pem")" = 600 ] || { echo "smoke: dev key is not 0600" >&2; exit 1; }
out=$(swaks --server "$addr" --tls --ehlo smoke.example --from reporter@example.org \
  --to security@netcompany.example --data fixtures/report.eml --timeout 20 2>&1) || { echo "$out"; exit 1; }
grep -q "<~  250 2.0.0 Stored safely as" <<<"$out" || { echo "$out"; echo "smoke: no 250" >&2; exit 1; }
# Intake files it as a case with its fields and deadlines.
ref=""
for _ in $(seq 1 100); do
  ref=$(target/release/disclosure-mx cases list --json | grep -o '"reference": "NC-[0-9-]*"' | head -n1 | cut -d'"' -f4) || true
  [ -n "$ref" ] && break
  sleep 0.2
done
[ -n "$ref" ] || { target/release/disclosure-mx messages list; echo "smoke: no case filed" >&2; exit 1; }
show=$(target/release/disclosure-mx cases show "$ref")
for want in "acknowledge by:" "feedback by:" "description:" "steps / attack chain:" "TLSv1.3"; do
  grep -q "$want" <<<"$show" || { echo "$show"; echo "smoke: cases show lacks $want" >&2; exit 1; }
done
# A newcomer signs in through the dev IdP and sees the case.
web=$(head -n1 "$dir/data/api-listening")
python3 - "$web" "$ref" <<'PY' || { echo "smoke: dev sign-in failed" >&2; exit 1; }
import html, re, sys, urllib.parse, urllib.request, http.cookiejar
base, ref = "http://" + sys.argv[1], sys.argv[2]
web = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
idp = web.open(base + "/cases").read().decode()
assert "DEVELOPMENT IDENTITY PROVIDER ACTIVE" in idp, idp
request = html.unescape(re.search(r'name="SAMLRequest" value="([^"]*)"', idp).group(1))
signed = web.open(base + "/dev-idp/sso", urllib.parse.urlencode(
    {"SAMLRequest": request, "user": "analyst@netcompany"}).encode()).read().decode()
response = html.unescape(re.search(r'name="SAMLResponse" value="([^"]*)"', signed).group(1))
cases = web.open(base + "/saml/acs", urllib.parse.urlencode({"SAMLResponse": response}).encode()).read().decode()
assert "Signed in as <strong>analyst@netcompany</strong>" in cases and ref in cases, cases
PY
kill -TERM -- "-$pid"
for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
if kill -0 "$pid" 2>/dev/null; then echo "smoke: did not stop on SIGTERM" >&2; exit 1; fi
pid=""
grep -q "stopped" "$dir/log" || { tail -20 "$dir/log"; echo "smoke: no clean stop" >&2; exit 1; }
echo "smoke: make run came up on the defaults, stored a report over STARTTLS, filed it as $ref, signed an analyst in through the dev IdP to see it, stopped cleanly"
