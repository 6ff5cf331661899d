#!/usr/bin/env bash
# Make sure Debian's headless Chromium is installed, for the status page's
# browser test (router/status_browser_test.go). Prints its path on stdout.
# Installs with apt-get when missing (needs root, as on CI and dev machines).
set -euo pipefail

log() { echo "chromium: $*" >&2; }

for c in chromium chromium-browser; do
  if command -v "$c" >/dev/null; then
    command -v "$c"
    exit 0
  fi
done
if [[ $(id -u) -ne 0 ]]; then
  log "Chromium is missing and I am not root: install Debian's 'chromium' package"
  exit 1
fi
log "installing Debian's chromium package..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends chromium >&2
command -v chromium
