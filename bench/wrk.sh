#!/usr/bin/env bash
# Install wrk (the load generator of `make bench`) from Debian's packages when
# it is missing. Prints the path of wrk.
set -euo pipefail
if ! command -v wrk >/dev/null; then
  SUDO=()
  [[ $(id -u) == 0 ]] || SUDO=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  if ! "${SUDO[@]}" apt-get install -y -q wrk >/dev/null 2>&1; then
    "${SUDO[@]}" apt-get update -q >/dev/null
    "${SUDO[@]}" apt-get install -y -q wrk >/dev/null
  fi
fi
command -v wrk
