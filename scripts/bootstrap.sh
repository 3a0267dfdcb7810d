#!/usr/bin/env bash
# Creates (or reuses) the virtual environment at .venv and installs Depot with
# its dev extras. Re-installs only when pyproject.toml, setup.py or native/ change.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=$(cat pyproject.toml setup.py native/*.pyx native/*.h 2>/dev/null | sha256sum | cut -c1-16)
if [ "$(cat .venv/.depot-stamp 2>/dev/null)" != "$stamp" ]; then
  echo "setting up .venv (first run compiles the native engine; about a minute)"
  log=.venv/install.log
  if ! { .venv/bin/python -m pip install --upgrade pip && .venv/bin/python -m pip install -e '.[dev]'; } >"$log" 2>&1; then
    tail -40 "$log"; echo "install failed; full log in $log" >&2; exit 1
  fi
  echo "$stamp" > .venv/.depot-stamp
fi
