# shellcheck shell=bash disable=SC2034  # variables are used by the sourcing scripts
# Shared by scripts/nacos-up.sh and scripts/nacos-down.sh (sourced, not run).
# Expects SCRIPT_DIR to be set to the scripts/ folder.

SRC_DIR=$SCRIPT_DIR/nacos
CACHE_DIR=${NACOS_CACHE_DIR:-$(cd "$SCRIPT_DIR/.." && pwd)/.cache/nacos}
# One run dir per HTTP port, so a test may run a private server beside the shared one.
RUN_DIR=$CACHE_DIR/run-${NACOS_PORT:-8848}
PID_FILE=$RUN_DIR/nacos.pid
PORT_FILE=$RUN_DIR/nacos.port
HOME_FILE=$RUN_DIR/nacos.home
OUT_LOG=$RUN_DIR/nacos.out

HOST=127.0.0.1
MAIN_CLASS=modelgate.nacostest.NacosTestServer
# Per-run homes are made by mktemp with this name prefix; only such dirs are deleted.
HOME_PREFIX=modelgate-nacos.

log() { echo "${LOG_TAG:-nacos}: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Serialise nacos-up/nacos-down calls on one cache dir (fd 9 stays open until exit).
take_lock() {
  mkdir -p "$RUN_DIR"
  if command -v flock >/dev/null; then
    exec 9>"$CACHE_DIR/.lock"
    flock 9
  fi
}

# True if something accepts TCP connections on HOST:$1.
# shellcheck disable=SC2016  # $0/$1 expand in the inner bash
port_busy() { timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$HOST" "$1" 2>/dev/null; }

# True if $1 is a live process started by nacos-up.sh (guards against pid reuse).
is_our_server() {
  [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null &&
    tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q "$MAIN_CLASS"
}

# Stop the server recorded in the pid file (TERM, then KILL after
# NACOS_STOP_TIMEOUT seconds) and remove the pid file and the per-run home.
stop_server() {
  local pid="" grace=${NACOS_STOP_TIMEOUT:-10} waited=0 home port
  [[ -f $PID_FILE ]] && pid=$(cat "$PID_FILE")
  if is_our_server "$pid"; then
    log "stopping Nacos (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && ((waited < grace * 10)); do
      sleep 0.1
      waited=$((waited + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "still alive after ${grace} s: sending KILL"
      kill -KILL "$pid" 2>/dev/null || true
      while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
    # Wait briefly for the listening ports to be released (normally immediate).
    port=$(cat "$PORT_FILE" 2>/dev/null || true)
    if [[ $port =~ ^[0-9]+$ ]]; then
      for _ in $(seq 1 50); do
        port_busy "$port" || port_busy $((port + 1000)) || break
        sleep 0.1
      done
    fi
    log "stopped after $((waited / 10)) s"
  fi
  home=$(cat "$HOME_FILE" 2>/dev/null || true)
  if [[ -n $home && $(basename "$home") == "$HOME_PREFIX"* && -d $home ]]; then
    rm -rf "$home"
  fi
  rm -f "$PID_FILE" "$PORT_FILE" "$HOME_FILE"
}
