#!/usr/bin/env bash
# Creates (once) and reuses the Python virtualenv used by modelpilot's tests and benchmarks,
# then prints `export` lines for the calling shell:
#
#     eval "$(hack/pyenv.sh)"
#
# The venv lives outside the repository, keyed by the hash of hack/requirements.txt, so a
# changed requirements file gets a fresh venv and an unchanged one costs nothing.
# Progress goes to stderr; stdout carries only the export lines.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
requirements="$here/requirements.txt"
cache="${MODELPILOT_CACHE:-$HOME/.cache/modelpilot}"
python="${PYTHON:-}"
if [[ -z "$python" ]]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then python="$candidate"; break; fi
  done
fi
[[ -n "$python" ]] || { echo "pyenv.sh: no python3 found (set PYTHON=...)" >&2; exit 1; }

hash="$(sha256sum "$requirements" | cut -c1-12)"
venv="$cache/venv-$hash"
stamp="$venv/.modelpilot-installed"

if [[ ! -f "$stamp" ]]; then
  echo "pyenv.sh: creating $venv (one-time, a few minutes)" >&2
  mkdir -p "$cache"
  rm -rf "$venv"
  "$python" -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
  "$venv/bin/python" -m pip install --quiet -r "$requirements" >&2
  touch "$stamp"
  echo "pyenv.sh: venv ready" >&2
fi

capi="$("$venv/bin/python" -c 'import os, onnxruntime; print(os.path.join(os.path.dirname(onnxruntime.__file__), "capi"))')"
dylib="$(ls "$capi"/libonnxruntime.so* 2>/dev/null | sort | tail -n1 || true)"
[[ -n "$dylib" ]] || { echo "pyenv.sh: no libonnxruntime.so* under $capi" >&2; exit 1; }

printf 'export PATH=%q:"$PATH"\n' "$venv/bin"
printf 'export ORT_DYLIB_PATH=%q\n' "$dylib"
printf 'export MODELPILOT_PYTHON=%q\n' "$venv/bin/python"
