#!/usr/bin/env bash
# Stop the Nacos server started by scripts/nacos-up.sh: TERM, then KILL after
# NACOS_STOP_TIMEOUT seconds (default 10). Removes the pid file and the throwaway
# nacos.home. Exits 0 when nothing is running. Logs stay in .cache/nacos/run/.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOG_TAG=nacos-down
# shellcheck source=nacos/common.sh
source "$SCRIPT_DIR/nacos/common.sh"

take_lock
if [[ ! -f $PID_FILE ]]; then
  log "no Nacos running (no pid file)"
fi
stop_server
