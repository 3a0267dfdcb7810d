#!/usr/bin/env bash
# Sets up .venv and runs the whole test suite. The tests start what they need
# themselves (PostgreSQL from local binaries, moto's S3 server on loopback)
# unless DEPOT_TEST_DATABASE_URL / DEPOT_TEST_S3_ENDPOINT point elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python -m pytest "$@"
