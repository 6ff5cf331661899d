#!/usr/bin/env bash
# Start a real Nacos 3 server (standalone, loopback only, auth off, no console) for
# modelgate's integration tests, and wait until it is ready.
#
#   scripts/nacos-up.sh                      # HTTP 127.0.0.1:8848, SDK gRPC 9848
#   NACOS_PORT=18848 scripts/nacos-up.sh     # HTTP 18848, SDK gRPC 19848
#   scripts/nacos-down.sh                    # stop it
#
# Environment (all optional):
#   NACOS_PORT           HTTP port (default 8848). Nacos also binds PORT+1000 (SDK
#                        gRPC), PORT+1001 (cluster gRPC) and PORT-1000 (Raft). All
#                        on 127.0.0.1 except Raft, whose bind address JRaft does
#                        not let us set (it listens on all interfaces).
#   NACOS_START_TIMEOUT  seconds to wait for readiness (default 180)
#   NACOS_CACHE_DIR      cache dir (default <repo>/.cache/nacos)
#   NACOS_M2_REPO        Maven local repository (default: Maven's own, ~/.m2)
#   NACOS_JAVA_OPTS      extra JVM options
#   NACOS_TLS_CA         CA file (PEM) of a server started with TLS options in
#                        NACOS_JAVA_OPTS: readiness is then polled over https
#
# The server jars come from Maven (scripts/nacos/pom.xml). The resolved classpath
# and the compiled launcher are cached, so later runs do not call Maven at all.
# Idempotent: if a server started by this script is already up, it returns at once.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOG_TAG=nacos-up
# shellcheck source=nacos/common.sh
source "$SCRIPT_DIR/nacos/common.sh"

PORT=${NACOS_PORT:-8848}
TIMEOUT=${NACOS_START_TIMEOUT:-180}
READY_PATH=/nacos/v3/admin/core/state/readiness
JAVA=${JAVA_HOME:+$JAVA_HOME/bin/}java

if ! [[ $PORT =~ ^[0-9]+$ ]] || ((PORT <= 1000 || PORT >= 64535)); then
  die "bad NACOS_PORT: $PORT"
fi
command -v "$JAVA" >/dev/null || die "java not found (JDK 17+ needed)"

take_lock

# HTTP status of GET http://HOST:PORT$1 ("000" or empty when nothing answers).
http_status() {
  if [[ -n ${NACOS_TLS_CA:-} ]]; then
    curl -s -o /dev/null -m 3 -w '%{http_code}' --cacert "$NACOS_TLS_CA" "https://$HOST:$PORT$1" || true
  elif command -v curl >/dev/null; then
    curl -s -o /dev/null -m 3 -w '%{http_code}' "http://$HOST:$PORT$1" || true
  else
    # shellcheck disable=SC2016  # $0..$2 expand in the inner bash
    timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1" || exit 0
      printf "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" "$2" "$0" >&3
      head -n1 <&3 | cut -d" " -f2' "$HOST" "$PORT" "$1" 2>/dev/null || true
  fi
}

# Print the end of the logs, for diagnosing a failed start.
show_logs() {
  log "---- last lines of $OUT_LOG ----"
  tail -n 60 "$OUT_LOG" >&2 2>/dev/null || true
  if [[ -f $RUN_DIR/logs/nacos.log ]]; then
    log "---- last lines of $RUN_DIR/logs/nacos.log ----"
    tail -n 20 "$RUN_DIR/logs/nacos.log" >&2 || true
  fi
}

# Poll readiness until ready (return 0), the process dies (stop, return 1) or
# the deadline passes (stop the server, exit 1).
wait_ready() {
  local pid=$1 start=$SECONDS next_report=$((SECONDS + 5)) code
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      show_logs
      stop_server
      return 1
    fi
    code=$(http_status "$READY_PATH")
    # Ready once the readiness check answers 200 and the SDK gRPC port accepts.
    if [[ $code == 200 ]] && port_busy $((PORT + 1000)); then
      log "Nacos ready on http://$HOST:$PORT/nacos (gRPC $HOST:$((PORT + 1000))), pid $pid, after $((SECONDS - start)) s"
      return 0
    fi
    if ((SECONDS - start >= TIMEOUT)); then
      show_logs
      stop_server
      die "Nacos not ready after ${TIMEOUT} s (last readiness status: ${code:-none})"
    fi
    if ((SECONDS >= next_report)); then
      log "waiting for readiness... $((SECONDS - start)) s"
      next_report=$((SECONDS + 5))
    fi
    sleep 1
  done
}

# --- already running? ----------------------------------------------------------

if [[ -f $PID_FILE ]]; then
  old_pid=$(cat "$PID_FILE")
  if is_our_server "$old_pid"; then
    old_port=$(cat "$PORT_FILE" 2>/dev/null || echo "?")
    [[ $old_port == "$PORT" ]] ||
      die "a Nacos from nacos-up is already running on port $old_port (pid $old_pid); run scripts/nacos-down.sh first"
    log "Nacos already running (pid $old_pid)"
    wait_ready "$old_pid" || die "Nacos (pid $old_pid) exited during start-up"
    exit 0
  fi
  log "cleaning up after a previous run (pid $old_pid is gone)"
  stop_server
fi

# --- build: resolve the server classpath and compile the launcher (cached) -------

CP_FILE=$CACHE_DIR/classpath.txt
CLASSES=$CACHE_DIR/classes
hash_of() { sha256sum "$1" | cut -d' ' -f1; }

# The classpath is current if it was resolved from this pom.xml and all its jars
# are still in the Maven repository.
classpath_is_current() {
  [[ -f $CP_FILE && $(cat "$CP_FILE.stamp" 2>/dev/null) == "$(hash_of "$SRC_DIR/pom.xml")" ]] || return 1
  local jar
  while IFS= read -r jar; do [[ -f $jar ]] || return 1; done < <(tr ':' '\n' <"$CP_FILE")
}

if ! classpath_is_current; then
  command -v mvn >/dev/null || die "mvn not found (Maven is needed on the first run)"
  log "resolving the Nacos server jars with Maven (first run only)..."
  build_start=$SECONDS
  rm -rf "$CACHE_DIR/build" "$CLASSES"
  mkdir -p "$CACHE_DIR/build"
  cp "$SRC_DIR/pom.xml" "$CACHE_DIR/build/pom.xml"
  mvn_args=(-B -f "$CACHE_DIR/build/pom.xml" dependency:build-classpath
    "-Dmdep.outputFile=$CP_FILE.tmp")
  [[ -n ${NACOS_M2_REPO:-} ]] && mvn_args+=("-Dmaven.repo.local=$NACOS_M2_REPO")
  if ! mvn "${mvn_args[@]}" >"$CACHE_DIR/build/mvn.log" 2>&1; then
    grep -E '^\[ERROR\]' "$CACHE_DIR/build/mvn.log" | head -n 20 >&2 || true
    die "Maven could not resolve the Nacos server (full log: $CACHE_DIR/build/mvn.log)"
  fi
  mv "$CP_FILE.tmp" "$CP_FILE"
  hash_of "$SRC_DIR/pom.xml" >"$CP_FILE.stamp"
  log "Maven done in $((SECONDS - build_start)) s"
fi

# Recompile the launcher when its source changed (or the classpath was rebuilt).
if [[ ! -f $CLASSES/${MAIN_CLASS//.//}.class ||
  $(cat "$CLASSES/.stamp" 2>/dev/null) != "$(hash_of "$SRC_DIR/NacosTestServer.java")" ]]; then
  log "compiling the launcher..."
  rm -rf "$CLASSES"
  mkdir -p "$CLASSES"
  "${JAVA%java}javac" -nowarn -encoding UTF-8 -cp "$(cat "$CP_FILE")" -d "$CLASSES" \
    "$SRC_DIR/NacosTestServer.java"
  hash_of "$SRC_DIR/NacosTestServer.java" >"$CLASSES/.stamp"
fi
# Nacos reads application.properties from the classpath; always take the current one.
cp "$SRC_DIR/application.properties" "$CLASSES/application.properties"

# --- start ---------------------------------------------------------------------

for p in "$PORT" $((PORT + 1000)) $((PORT + 1001)) $((PORT - 1000)); do
  if port_busy "$p"; then
    die "port $p is already in use (Nacos on $PORT needs $PORT, $((PORT + 1000)), $((PORT + 1001)), $((PORT - 1000)))"
  fi
done

# start_server launches one Nacos in a fresh home and sets pid.
start_server() {
  # Fresh throwaway nacos.home per run: Derby and Raft data never carry over.
  NACOS_HOME=$(mktemp -d "${TMPDIR:-/tmp}/${HOME_PREFIX}XXXXXX")
  mkdir -p "$NACOS_HOME/tmp"
  echo "$NACOS_HOME" >"$HOME_FILE"
  echo "$PORT" >"$PORT_FILE"
  rm -rf "$RUN_DIR/logs"
  mkdir -p "$RUN_DIR/logs"

  java_args=(
    -Xms256m -Xmx512m
    # Faster start-up for a short-lived test server: C1 JIT only, serial GC
    # (readiness in ~9 s instead of ~13 s on 2 cores).
    -XX:TieredStopAtLevel=1 -XX:+UseSerialGC
    "-Dnacos.home=$NACOS_HOME"
    "-Dnacos.logs.path=$RUN_DIR/logs"   # Nacos' own logs (default: ~/nacos/logs)
    "-Djava.io.tmpdir=$NACOS_HOME/tmp"  # RocksDB unpacks a native library here
    "-Dderby.stream.error.file=$RUN_DIR/derby.log" # default: derby.log in the cwd
    "-Dnacos.server.main.port=$PORT"
    "-Dnacos.server.ip=$HOST"
    "-Dnacos.remote.grpc.listen.ip=$HOST"
    "-Dserver.address=$HOST"
  )
  # shellcheck disable=SC2206 # word splitting of the user's extra options is wanted
  java_args+=(${NACOS_JAVA_OPTS:-} -cp "$CLASSES:$(cat "$CP_FILE")" "$MAIN_CLASS")

  log "starting Nacos on $HOST:$PORT (home $NACOS_HOME, output $OUT_LOG)"
  # setsid: own session, so signals aimed at the caller's process group (Ctrl-C in a
  # make or test run) do not reach the server; nacos-down.sh stops it by pid.
  launcher=()
  command -v setsid >/dev/null && launcher=(setsid)
  # 9>&-: the server must not inherit (and so keep holding) the lock.
  # Run from the per-run home so no stray file lands in the caller's directory.
  cd "$NACOS_HOME"
  "${launcher[@]}" "$JAVA" "${java_args[@]}" >"$OUT_LOG" 2>&1 </dev/null 9>&- &
  pid=$!
  echo "$pid" >"$PID_FILE"
}

# On a loaded machine Nacos's embedded Derby can miss its login timeout
# ("XBDA0: Login timeout exceeded") and the server exits during start-up; a
# fresh start then works.
for attempt in 1 2 3; do
  start_server
  wait_ready "$pid" && exit 0
  ((attempt < 3)) || die "Nacos exited during start-up, 3 times (logs above)"
  log "Nacos (pid $pid) exited during start-up (attempt $attempt of 3); starting it again"
done
