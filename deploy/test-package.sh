#!/usr/bin/env bash
# The Debian package, installed for real and run by a real systemd:
#   1. builds the .deb (deploy/package.sh) from the release binary;
#   2. rates the packaged unit: systemd-analyze security --offline=true
#      must say 2.0 or better;
#   3. installs it with dpkg -i on this machine and checks the system user,
#      the directories and their modes, the man page and completions;
#   4. boots systemd as PID 1 in a throwaway container (systemd-nspawn over
#      this machine's /usr, a tmpfs root, loopback only) with the
#      installed /etc/disclosure-mx and /var/lib/disclosure-mx, starts the
#      installed unit unchanged (Type=notify, the whole sandbox, port 25 by
#      ambient capability), sends a report over STARTTLS with swaks, waits
#      until a parse worker has filed it as a case, checks the sandbox on
#      the live process, kills it with SIGKILL and sees systemd restart it;
#   5. purges the package and what it made.
# It refuses to run where disclosure-mx is installed for real.
set -euo pipefail
cd "$(dirname "$0")/.."

if dpkg-query -W -f='${Status}' disclosure-mx 2>/dev/null | grep -q "install ok installed" \
  && [ ! -e /var/lib/disclosure-mx/.package-test ]; then
  echo "test-package: disclosure-mx is installed on this machine; not touching it" >&2
  exit 1
fi
if [ -e /var/lib/disclosure-mx ] && [ ! -e /var/lib/disclosure-mx/.package-test ]; then
  echo "test-package: /var/lib/disclosure-mx exists (cases?); not touching it" >&2
  exit 1
fi

work=$(mktemp -d /tmp/dmx-package.XXXXXX)
cleanup() {
  dpkg --purge disclosure-mx >/dev/null 2>&1 || true
  if [ -e /var/lib/disclosure-mx/.package-test ]; then rm -rf /var/lib/disclosure-mx; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "test-package: $*" >&2; exit 1; }

# 1. The package.
bash deploy/package.sh --quiet >"$work/package.log" 2>&1 || { cat "$work/package.log"; fail "cargo deb failed"; }
deb=$(ls -t target/debian/disclosure-mx_*.deb | head -n1)
echo "test-package: built $deb"

# 2. The unit's score, as packaged.
dpkg-deb -x "$deb" "$work/tree"
unit="$work/tree/lib/systemd/system/disclosure-mx.service"
[ -f "$unit" ] || fail "the package has no unit"
score=$(systemd-analyze security --offline=true "$unit" 2>&1 | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p')
[ -n "$score" ] || fail "no score from systemd-analyze"
awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' || fail "exposure $score is above 2.0"
echo "test-package: systemd-analyze security: $score"

# 3. Installed.
dpkg -i "$deb" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -i failed"; }
touch /var/lib/disclosure-mx/.package-test
user=$(getent passwd disclosure-mx) || fail "no disclosure-mx user"
uid=$(cut -d: -f3 <<<"$user")
[ "$uid" -lt 1000 ] || fail "disclosure-mx is not a system user (uid $uid)"
[ "$(cut -d: -f7 <<<"$user")" = /usr/sbin/nologin ] || fail "the user has a login shell"
check_mode() { # path mode owner:group
  local got
  got=$(stat -c '%a %U:%G' "$1")
  [ "$got" = "$2 $3" ] || fail "$1 is $got, expected $2 $3"
}
check_mode /var/lib/disclosure-mx 700 disclosure-mx:disclosure-mx
check_mode /etc/disclosure-mx 750 root:disclosure-mx
check_mode /etc/disclosure-mx/policies 750 root:disclosure-mx
check_mode /etc/disclosure-mx/disclosure-mx.toml 640 root:disclosure-mx
check_mode /usr/bin/disclosure-mx 755 root:root
[ -f /usr/share/man/man1/disclosure-mx.1.gz ] || fail "no man page"
zcat /usr/share/man/man1/disclosure-mx.1.gz | grep -q '^\.TH disclosure-mx 1' || fail "the man page is not roff"
grep -q disclosure-mx /usr/share/bash-completion/completions/disclosure-mx || fail "no bash completion"
[ -f /usr/share/zsh/vendor-completions/_disclosure-mx ] || fail "no zsh completion"
[ -f /usr/share/fish/vendor_completions.d/disclosure-mx.fish ] || fail "no fish completion"
[ -f /usr/share/doc/disclosure-mx/examples/policies/netcompany.toml ] || fail "no example policies"
echo "test-package: installed: user $uid, directories and modes as expected"

# The operator's two steps: a policy and the name.
install -o root -g disclosure-mx -m 0640 /usr/share/doc/disclosure-mx/examples/policies/netcompany.toml /etc/disclosure-mx/policies/
sed -i 's/^hostname = "localhost"/hostname = "mx.package.test"/' /etc/disclosure-mx/disclosure-mx.toml

# 4. Under systemd. The check runs inside the container once the service
# is active (a Type=notify start completes at READY=1) and writes what it
# saw to $work/out. The container has only loopback, so the wait for a
# configured network link is masked; resolv.conf is the host's (sender
# authentication reads it; no query can leave).
mkdir -p "$work/out" "$work/units"
cp fixtures/report.eml "$work/out/report.eml"
cat >"$work/units/package-check.service" <<'UNIT'
[Unit]
Description=disclosure-mx package check
Wants=disclosure-mx.service
SuccessAction=poweroff-force
FailureAction=poweroff-force
[Service]
Type=oneshot
StandardOutput=append:/check/log
StandardError=append:/check/log
ExecStart=/bin/bash /check/check.sh
UNIT
cat >"$work/out/check.sh" <<'CHECK'
set -euo pipefail
as_service() { setpriv --reuid=disclosure-mx --regid=disclosure-mx --init-groups -- "$@"; }
cli() { as_service /usr/bin/disclosure-mx --config /etc/disclosure-mx/disclosure-mx.toml "$@"; }
trap 'journalctl -u disclosure-mx --no-pager -n 40 >/check/journal 2>&1' EXIT
# Not ordered after the service: a start that never completes must show up
# here as a state, not as a check that never runs.
for _ in $(seq 1 150); do
  state=$(systemctl show -P ActiveState disclosure-mx)
  [ "$state" = active ] || [ "$state" = failed ] && break
  sleep 0.2
done
echo "state: $(systemctl show -P ActiveState disclosure-mx) $(systemctl show -P SubState disclosure-mx)"
pid=$(systemctl show -P MainPID disclosure-mx)
grep -E '^(Uid|NoNewPrivs|Seccomp|CapEff|CapAmb):' "/proc/$pid/status" | tr -s '\t ' ' '
swaks --server 127.0.0.1:25 --tls --ehlo reporter.example --from reporter@example.org \
  --to security@netcompany.example --data /check/report.eml --timeout 30 >/check/swaks.log 2>&1
grep -q "<~  250 2.0.0 Stored safely as" /check/swaks.log && echo "smtp: stored"
for _ in $(seq 1 100); do
  cli cases list --json >/check/cases.json 2>/check/cli.log || true
  grep -q '"reference": "NC-' /check/cases.json && break
  sleep 0.2
done
grep -q '"reference": "NC-' /check/cases.json && echo "intake: filed"
workers=$(pgrep -c -P "$pid" || true)
echo "workers: $workers"
kill -KILL "$pid"
for _ in $(seq 1 100); do
  new=$(systemctl show -P MainPID disclosure-mx)
  [ "$new" != 0 ] && [ "$new" != "$pid" ] && [ "$(systemctl show -P ActiveState disclosure-mx)" = active ] && break
  sleep 0.2
done
echo "restarts: $(systemctl show -P NRestarts disclosure-mx) $(systemctl show -P ActiveState disclosure-mx)"
CHECK
timeout 300 systemd-nspawn -D / --volatile=yes --register=no --keep-unit --private-network --console=pipe \
  --bind-ro=/etc/passwd --bind-ro=/etc/group --bind-ro=/etc/disclosure-mx \
  --bind=/var/lib/disclosure-mx --bind="$work/out":/check --bind-ro=/etc/resolv.conf \
  --bind-ro=/dev/null:/etc/systemd/system/systemd-networkd-wait-online.service \
  --bind-ro="$work/units/package-check.service":/etc/systemd/system/package-check.service \
  --boot systemd.unit=package-check.service systemd.firstboot=off >"$work/boot.log" 2>&1 \
  || { tail -40 "$work/boot.log"; cat "$work/out/log" 2>/dev/null; fail "the container failed"; }
log="$work/out/log"
[ -f "$log" ] || { tail -40 "$work/boot.log"; fail "the check did not run"; }
cat "$log"
expect() {
  grep -qE "$1" "$log" && return
  cat "$work/out/journal" "$work/out/swaks.log" 2>/dev/null || true
  fail "expected: $1"
}
expect "^state: active running$"
expect "^Uid: $uid $uid $uid $uid$"
expect "^NoNewPrivs: 1$"
expect "^Seccomp: 2$"
# CAP_NET_BIND_SERVICE (bit 10) and nothing else.
expect "^CapEff: 0000000000000400$"
expect "^smtp: stored$"
expect "^intake: filed$"
expect "^workers: [1-9]"
expect "^restarts: 1 active$"
# The database and key were made by the service, for the service alone.
check_mode /var/lib/disclosure-mx/master.key 600 disclosure-mx:disclosure-mx
check_mode /var/lib/disclosure-mx/disclosure-mx.db 600 disclosure-mx:disclosure-mx
echo "test-package: under systemd: ready, sandboxed, received and filed a report, restarted after SIGKILL"

# 5. Purged (the trap also runs on failure).
dpkg --purge disclosure-mx >/dev/null 2>&1 || fail "dpkg --purge failed"
[ ! -e /etc/disclosure-mx ] || fail "purge left /etc/disclosure-mx"
echo "test-package: ok"
