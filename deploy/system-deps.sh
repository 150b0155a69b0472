#!/usr/bin/env bash
# Installs the Debian packages a target needs, only when missing.
#   deploy/system-deps.sh run|test|bench|fixtures
set -euo pipefail

# samael's xmlsec signatures build against these (bindgen needs libclang).
saml=(pkg-config libssl-dev libxml2-dev libxmlsec1-dev libclang-dev)

case "${1:-}" in
  run)   pkgs=(ca-certificates gcc "${saml[@]}") ;;
  test)  pkgs=(ca-certificates gcc openssl swaks libnet-ssleay-perl python3 sqlite3 postgresql postgresql-client curl procps p7zip-full
               "${saml[@]}" chromium chromium-driver fonts-dejavu-core
               simplesamlphp php-cli php-xml php-mbstring python3-venv gnupg haproxy
               systemd-container dpkg-dev adduser) ;;
  fixtures) pkgs=(p7zip-full zip python3) ;;
  bench) pkgs=(ca-certificates gcc openssl postfix p7zip-full procps python3 python3-venv sqlite3 strace postgresql postgresql-client "${saml[@]}") ;;
  *) echo "usage: $0 run|test|bench|fixtures" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  # The Debian package would start a cluster of its own; the tests start a
  # throwaway one instead, so the service is not needed.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
  fi
  # Postfix asks debconf questions; answer them for a local-only install.
  echo "postfix postfix/main_mailer_type select Local only" | $SUDO debconf-set-selections
  echo "postfix postfix/mailname string localhost" | $SUDO debconf-set-selections
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
command -v cargo >/dev/null || { echo "cargo not found: install Rust 1.95 (rustup) first" >&2; exit 1; }

# Python helpers of the tests, in a virtual environment of their own
# beside the build: `sectxt`, an independent RFC 9116 parser for the
# security.txt test, `dnslib`, for the DNS server the sender
# authentication tests start on loopback, and `dkimpy`, which verifies the
# DKIM signatures on our receipts.
if { [ "$1" = test ] || [ "$1" = bench ]; } && ! target/test-venv/bin/python -c 'import sectxt, dnslib, dkim' 2>/dev/null; then
  python3 -m venv target/test-venv
  target/test-venv/bin/pip install -q sectxt==0.9.8 dnslib==0.9.25 dkimpy==1.1.8
fi
