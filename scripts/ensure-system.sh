#!/usr/bin/env bash
# Installs the Debian packages and npm packages that building, testing and the demo need,
# only when something is missing. Safe to run again. Needs root for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

# command-or-file that proves the package is there -> Debian package name
declare -A NEED=(
  [/usr/include/pcap/pcap.h]=libpcap-dev
  [/usr/sbin/nginx]=nginx-light
  [/usr/bin/tcpdump]=tcpdump
  [/usr/bin/ip]=iproute2
  [/usr/sbin/tc]=iproute2
  [/usr/sbin/iptables]=iptables
  [/usr/sbin/nft]=nftables
  [/usr/bin/redis-server]=redis-server
  [/usr/bin/tmux]=tmux
  [/usr/bin/g++]=g++
  [/usr/bin/make]=make
  [/usr/bin/python3]=python3
  [/usr/sbin/ethtool]=ethtool
  [/usr/sbin/sysctl]=procps
  [/usr/bin/wrk]=wrk
  [/usr/bin/socat]=socat
  [/usr/sbin/mariadbd]=mariadb-server
  [/usr/bin/mariadb]=mariadb-client
  [/usr/bin/sysbench]=sysbench
  [/usr/lib/postgresql/15/bin/postgres]=postgresql-15
  [/usr/lib/postgresql/15/bin/pgbench]=postgresql-15
  [/usr/lib/postgresql/15/bin/psql]=postgresql-client-15
  # headless browser for the report.html check (test/unit/compare/report.test.ts)
  [/usr/bin/chromium]=chromium
)
missing=()
for f in "${!NEED[@]}"; do
  [ -e "$f" ] || missing+=("${NEED[$f]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "tcpcopy setup: missing Debian packages: ${missing[*]} (run as root, or: apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "tcpcopy setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends $(printf '%s\n' "${missing[@]}" | sort -u) >/dev/null
  # nginx/redis/mariadb/postgresql from Debian start system services; the lab runs its own instances.
  for svc in nginx redis-server mariadb postgresql; do
    if command -v systemctl >/dev/null 2>&1; then systemctl stop "$svc" >/dev/null 2>&1 || true; systemctl disable "$svc" >/dev/null 2>&1 || true; fi
  done
fi

# npm packages and the native addon (node-gyp runs as our own install script).
if [ ! -d node_modules/typescript ] || [ package.json -nt node_modules/.package-lock.json ] || [ ! -f build/Release/tcpcopy_native.node ]; then
  echo "tcpcopy setup: npm install" >&2
  npm install --no-audit --no-fund >&2
fi
