#!/usr/bin/env bash
# Sets up .venv and runs the whole test suite. The tests start what they need
# themselves (PostgreSQL from local binaries, moto's S3 server on loopback)
# unless DEPOT_TEST_DATABASE_URL / DEPOT_TEST_S3_ENDPOINT point elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
# Worker processes (pytest-xdist), one per core, each with its own PostgreSQL
# cluster and moto server. More workers than cores finished no sooner and pushed
# the fault tests' bounded waits past their limits. DEPOT_TEST_WORKERS=0 runs the
# tests in this one process (what a debugger wants).
workers=${DEPOT_TEST_WORKERS:-$(nproc)}
exec .venv/bin/python -m pytest -n "$workers" "$@"
