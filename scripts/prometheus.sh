#!/usr/bin/env bash
# Make sure Debian's prometheus package (prometheus and promtool) is installed,
# for the metrics tests (promtool check metrics on a live /metrics, and the
# dashboard's queries against a real Prometheus). Prints the directory that
# holds both binaries on stdout. Installs with apt-get when missing (needs
# root, as on CI and dev machines). The package's own service is not used:
# tests start a private Prometheus on loopback on a free port.
set -euo pipefail

log() { echo "prometheus: $*" >&2; }

if command -v promtool >/dev/null && command -v prometheus >/dev/null; then
  dirname "$(command -v promtool)"
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  log "promtool is missing and I am not root: install Debian's 'prometheus' package"
  exit 1
fi
log "installing Debian's prometheus package..."
export DEBIAN_FRONTEND=noninteractive
# Keep the packaged service from starting (policy-rc.d 101: no daemons started
# by package scripts); tests run their own Prometheus.
prc=/usr/sbin/policy-rc.d
made_prc=0
if [[ ! -e $prc ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$prc"
  chmod +x "$prc"
  made_prc=1
fi
trap '[[ $made_prc == 1 ]] && rm -f "$prc"' EXIT
apt-get -o DPkg::Lock::Timeout=600 update -qq >&2 || true
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends prometheus >&2
dirname "$(command -v promtool)"
