#!/usr/bin/env bash
# Builds (or reuses) the Python environment of `npm run test:interop`: .venv-interop/ at the repository
# root (git-ignored), with exactly interop/requirements.txt.
#
#   bash interop/venv.sh            # prints the interpreter's path on its last line
#
# Reuse: the venv is kept when its stamp (sha256 of requirements.txt + the python3 version) matches and
# every pinned package imports; otherwise it is rebuilt from scratch. Sources, in this order:
#   1. the machine's wheel folders ($CLLAMA_WHEELS, colon-separated, else /opt/wheels, /opt/pypi/files,
#      /opt/pypi-more/files), with --no-index, when they hold every pinned package;
#   2. the package index (pip's defaults, + PyTorch's CPU index named in requirements.txt).
# A package missing from both is a failure (exit 1), never a skipped test.
# Environment: CLLAMA_INTEROP_VENV (where; default <repo>/.venv-interop), PYTHON (default python3).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REQ="$ROOT/interop/requirements.txt"
VENV="${CLLAMA_INTEROP_VENV:-$ROOT/.venv-interop}"
PY="${PYTHON:-python3}"
say() { echo "interop/venv.sh: $*" >&2; }

command -v "$PY" >/dev/null 2>&1 || { say "no $PY on PATH; install Python 3.10+ (with venv) or set PYTHON"; exit 1; }
want="$(sha256sum "$REQ" | cut -d' ' -f1) $("$PY" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
check='import torch, transformers, peft, accelerate, safetensors, tokenizers, sentencepiece, numpy'
if [ -f "$VENV/.cllama-stamp" ] && [ "$(cat "$VENV/.cllama-stamp")" = "$want" ] && "$VENV/bin/python" -c "$check" 2>/dev/null; then
  say "reusing $VENV"
  echo "$VENV/bin/python"
  exit 0
fi

say "building $VENV from $REQ"
rm -rf "$VENV"
"$PY" -m venv "$VENV" || { say "'$PY -m venv' failed; install the venv module (Debian: python3-venv)"; exit 1; }
PIP=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-cache-dir)
IFS=: read -r -a folders <<<"${CLLAMA_WHEELS:-/opt/wheels:/opt/pypi/files:/opt/pypi-more/files}"
links=()
for d in "${folders[@]}"; do [ -d "$d" ] && links+=(--find-links "$d"); done
t0=$(date +%s)
if [ ${#links[@]} -gt 0 ] && "${PIP[@]}" --no-index "${links[@]}" -r "$REQ" 2>"$VENV/.pip-local.log"; then
  say "installed from the local wheel folders in $(($(date +%s) - t0)) s"
else
  [ ${#links[@]} -gt 0 ] && say "the local wheel folders do not hold every pinned package ($(tail -n 1 "$VENV/.pip-local.log")); trying the package index"
  "${PIP[@]}" "${links[@]}" -r "$REQ" || { say "pip could not install $REQ (no network, or a pinned version is gone); see above"; exit 1; }
  say "installed from the package index in $(($(date +%s) - t0)) s"
fi
# what was asked is what is there: every pinned name at its pinned version
"$VENV/bin/python" - "$REQ" <<'PY'
import sys
from importlib.metadata import version, PackageNotFoundError
bad = []
for line in open(sys.argv[1], encoding="utf-8"):
    line = line.split("#")[0].strip()
    if not line or line.startswith("-"):
        continue
    name, pinned = line.split("==")
    try:
        got = version(name)
    except PackageNotFoundError:
        got = None
    if got is None or got.split("+")[0] != pinned:
        bad.append(f"{name} {got} (pinned {pinned})")
if bad:
    sys.exit("interop/venv.sh: installed versions differ from requirements.txt: " + ", ".join(bad))
PY
"$VENV/bin/python" -c "$check"
echo "$want" >"$VENV/.cllama-stamp"
echo "$VENV/bin/python"
