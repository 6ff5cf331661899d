#!/usr/bin/env bash
# Occupy the ports a developer's own Nacos commonly runs on, so that the test
# suite proves it never collides with one: tests pick free ports for their
# private Nacos servers and bind no fixed port.
#
#   scripts/nacos-busy.sh up     # a real Nacos on each port of NACOS_BUSY_PORTS
#   scripts/nacos-busy.sh down   # stop the ones `up` started, nothing else
#
# NACOS_BUSY_PORTS  HTTP ports (default "28848 28858"). A port already in use
#                   (someone's Nacos, or anything else) is left as it is: it is
#                   busy, which is the point.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOG_TAG=nacos-busy
# shellcheck source=nacos/common.sh
source "$SCRIPT_DIR/nacos/common.sh"

PORTS=${NACOS_BUSY_PORTS:-28848 28858}
STARTED=$CACHE_DIR/busy-started # the ports `up` started, for `down`

case ${1:-} in
up)
  mkdir -p "$CACHE_DIR"
  for p in $PORTS; do
    if port_busy "$p" || port_busy $((p + 1000)); then
      log "port $p already in use: left as it is"
      continue
    fi
    NACOS_PORT=$p "$SCRIPT_DIR/nacos-up.sh"
    echo "$p" >>"$STARTED"
  done
  ;;
down)
  [[ -f $STARTED ]] || exit 0
  status=0
  while read -r p; do
    NACOS_PORT=$p "$SCRIPT_DIR/nacos-down.sh" || status=1
  done < <(sort -u "$STARTED")
  rm -f "$STARTED"
  exit $status
  ;;
*)
  die "usage: $0 up|down"
  ;;
esac
