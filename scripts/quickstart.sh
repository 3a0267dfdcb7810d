#!/usr/bin/env bash
# The quickstart: starts `depot server` on embedded defaults (a real PostgreSQL
# started from local binaries, blobs in a directory), runs examples/quickstart.py
# against it, stops the server and prints what happened.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export DEPOT_DATA_DIR=${DEPOT_DATA_DIR:-$PWD/.depot-quickstart}
port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export DEPOT_LISTEN=127.0.0.1:$port DEPOT_ADDRESS=127.0.0.1:$port
.venv/bin/depot server > "${DEPOT_DATA_DIR}.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
# Up once server.json names this server's pid (a file left by a killed
# server names another); a server already on this data dir makes ours exit.
up() { grep -qs "\"pid\": $server," "$DEPOT_DATA_DIR/server.json"; }
for _ in $(seq 1 120); do
  up && break
  kill -0 $server 2>/dev/null || { cat "${DEPOT_DATA_DIR}.log"; exit 1; }
  sleep 0.5
done
up || { echo "server did not start"; cat "${DEPOT_DATA_DIR}.log"; exit 1; }
echo "depot server is up on $DEPOT_ADDRESS (log: ${DEPOT_DATA_DIR}.log)"
DEPOT_API_KEY_FILE="$DEPOT_DATA_DIR/admin.key" .venv/bin/python examples/quickstart.py
kill $server; wait $server 2>/dev/null || true
trap - EXIT
echo "server stopped; data kept in $DEPOT_DATA_DIR"
