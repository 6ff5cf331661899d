#!/usr/bin/env bash
# Create or reuse the venv with LiteLLM's proxy, a uvicorn-based
# OpenAI-compatible server that modelgate's integration tests run as a real
# third-party upstream (internal/enginetest starts it with mock_response models).
#
#   scripts/litellm-env.sh       # prints the venv's litellm command on stdout
#
# The packages are pinned, transitive ones included, in
# scripts/litellm/requirements.txt (the newest litellm's [proxy] extra pins a
# litellm-proxy-extras version the package index lacks, so an older litellm
# whose extra resolves is pinned). Binary wheels only.
#
# Environment (all optional):
#   PYTHON                 interpreter to build the venv from (default python3, >= 3.10)
#   MODELGATE_LITELLM_DIR  where venvs live (default ~/.cache/modelgate/litellm: shared
#                          by clones on one machine)
#
# The venv's name carries a hash of the requirements and of this recipe, so a
# change builds a new one; a stamp written last marks it complete.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REQ=$SCRIPT_DIR/litellm/requirements.txt
DIR=${MODELGATE_LITELLM_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/modelgate/litellm}
PYTHON=${PYTHON:-python3}
# Bump when the install recipe below changes.
RECIPE=1

log() { echo "litellm-env: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ -f $REQ ]] || die "missing $REQ"
key=$({ echo "recipe $RECIPE"; cat "$REQ"; } | sha256sum | cut -c1-12)
VENV=$DIR/venv-$key
STAMP=$VENV/.complete

ready() { [[ -f $STAMP ]] && "$VENV/bin/python" -c '' 2>/dev/null; }

if ready; then
  echo "$VENV/bin/litellm"
  exit 0
fi

mkdir -p "$DIR"
exec 9>"$DIR/.lock"
flock 9
if ready; then
  echo "$VENV/bin/litellm"
  exit 0
fi

command -v "$PYTHON" >/dev/null || die "$PYTHON not found (Python >= 3.10 with venv and pip needed)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || die "$("$PYTHON" -V 2>&1) is too old"

start=$SECONDS
log "building $VENV from $REQ (a few minutes, once per machine)"
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV" || die "python -m venv failed (on Debian/Ubuntu: apt-get install python3-venv)"
"$VENV/bin/python" -m pip install --disable-pip-version-check --no-input --quiet \
  --only-binary=:all: --no-deps -r "$REQ" >&2 || { rm -rf "$VENV"; die "pip install -r $REQ failed"; }
"$VENV/bin/python" -m pip check >&2 || { rm -rf "$VENV"; die "pip check failed"; }
# Import what the proxy imports at start, so a broken venv fails here.
LITELLM_LOCAL_MODEL_COST_MAP=True "$VENV/bin/python" -c 'import litellm.proxy.proxy_server' >&2 ||
  { rm -rf "$VENV"; die "litellm's proxy does not import"; }
touch "$STAMP"
log "done in $((SECONDS - start)) s"
echo "$VENV/bin/litellm"
