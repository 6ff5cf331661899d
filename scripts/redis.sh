#!/usr/bin/env bash
# Make sure Debian's redis-server is installed, for the shared-store tests
# (degrade/redisstore starts a private one per test on a free loopback port).
# Prints its path on stdout. Installs with apt-get when missing (needs root,
# as on CI and dev machines).
set -euo pipefail

log() { echo "redis: $*" >&2; }

if command -v redis-server >/dev/null; then
  command -v redis-server
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  log "redis-server is missing and I am not root: install Debian's 'redis-server' package"
  exit 1
fi
log "installing Debian's redis-server package..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends redis-server >&2
# The package starts a system-wide server on 6379; the tests run their own.
if command -v systemctl >/dev/null && systemctl is-active --quiet redis-server 2>/dev/null; then
  systemctl stop redis-server >&2 || true
fi
command -v redis-server
