#!/usr/bin/env bash
# Create or refresh the Python venv that the Python end-to-end test
# (cmd/modelgate, TestPythonSDK*) drives modelgate from, with the pinned
# official OpenAI SDK of tests/python/requirements.txt.
#
#   scripts/python-env.sh        # prints the venv's python on stdout
#
# Environment (all optional):
#   PYTHON               interpreter to build the venv from (default python3, >= 3.10)
#   MODELGATE_PYENV_DIR  the venv (default <repo>/.cache/pyenv)
#
# Idempotent and fast when up to date: the venv is rebuilt from scratch only
# when the stamp file (a hash of requirements.txt and of this script's install
# recipe) does not match or the venv's python no longer runs. Needs python3
# with the venv module and pip's access to PyPI; nothing else.
# Progress goes to stderr; stdout is only the interpreter path.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
REQ=$ROOT/tests/python/requirements.txt
VENV=${MODELGATE_PYENV_DIR:-$ROOT/.cache/pyenv}
PYTHON=${PYTHON:-python3}
STAMP=$VENV/.modelgate-requirements.sha256
# Bump when the install recipe below changes, to force a rebuild.
RECIPE=1

log() { echo "python-env: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ -f $REQ ]] || die "missing $REQ"

sha256() {
  if command -v sha256sum >/dev/null; then
    sha256sum | cut -d' ' -f1
  elif command -v shasum >/dev/null; then
    shasum -a 256 | cut -d' ' -f1
  else
    "$PYTHON" -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())'
  fi
}

want=$({ echo "recipe $RECIPE"; cat "$REQ"; } | sha256)

up_to_date() {
  [[ -f $STAMP && $(cat "$STAMP") == "$want" ]] && "$VENV/bin/python" -c '' 2>/dev/null
}

if up_to_date; then
  echo "$VENV/bin/python"
  exit 0
fi

# Serialise concurrent runs (two test binaries, make and a test); the second
# one finds the venv ready once the first is done.
mkdir -p "$(dirname "$VENV")"
if command -v flock >/dev/null; then
  exec 9>"$VENV.lock"
  flock 9
  if up_to_date; then
    echo "$VENV/bin/python"
    exit 0
  fi
fi

command -v "$PYTHON" >/dev/null || die "$PYTHON not found (Python >= 3.10 with venv and pip needed)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
  die "$("$PYTHON" -V 2>&1) is too old: the pinned openai SDK needs Python >= 3.10"

start=$SECONDS
log "building $VENV from $REQ with $("$PYTHON" -V 2>&1)"
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV" || die "python -m venv failed (on Debian/Ubuntu: apt-get install python3-venv)"
# Binary wheels only: every pinned package has them, and no package's build
# code runs here. The stamp is written last, so a failed install is retried
# from scratch next time.
"$VENV/bin/python" -m pip install --disable-pip-version-check --no-input --quiet \
  --only-binary=:all: -r "$REQ" >&2 || die "pip install -r $REQ failed"
"$VENV/bin/python" -m pip check >&2 || die "pip check failed"
"$VENV/bin/python" -c 'import openai; print("python-env: openai", openai.__version__, "ready", file=__import__("sys").stderr)'
echo "$want" >"$STAMP"
log "done in $((SECONDS - start)) s"
echo "$VENV/bin/python"
