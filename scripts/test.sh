#!/usr/bin/env bash
# Sets up .venv and runs the whole test suite. The tests start what they need
# themselves (PostgreSQL from local binaries, moto's S3 server, fake-gcs-server
# and Azurite on loopback)
# unless DEPOT_TEST_DATABASE_URL / DEPOT_TEST_S3_ENDPOINT point elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
# Azurite (Azure Storage's emulator) for the Azure reference tests, into the
# repo's .cache: the tests start it themselves. Installed once; later runs skip npm.
if ! [ -x .cache/azurite/node_modules/.bin/azurite-blob ]; then
  echo "installing Azurite into .cache/azurite (npm; once)"
  npm install --prefix .cache/azurite --no-audit --no-fund --silent azurite@3
fi
# Worker processes (pytest-xdist), one per core, each with its own PostgreSQL
# cluster and moto server. More workers than cores finished no sooner and pushed
# the fault tests' bounded waits past their limits. DEPOT_TEST_WORKERS=0 runs the
# tests in this one process (what a debugger wants).
workers=${DEPOT_TEST_WORKERS:-$(nproc)}
exec .venv/bin/python -m pytest -n "$workers" "$@"
