#!/usr/bin/env bash
# Property-based API testing: schemathesis (PyPI) generates requests from the OpenAPI
# document and runs them, as an admin, against a fresh `palisade serve`. Fails on any
# 5xx. Usage: scripts/schemathesis.sh [MAX_EXAMPLES]   (default 50 per operation)
set -euo pipefail
cd "$(dirname "$0")/.."
MAX="${1:-50}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/palisade/target}"
VENV="${PALISADE_ST_VENV:-$HOME/.cache/palisade/schemathesis-venv}"
if [ ! -x "$VENV/bin/schemathesis" ]; then
  echo "creating a Python venv with schemathesis in $VENV (from PyPI)"
  python3 -m venv "$VENV" && "$VENV/bin/pip" install -q schemathesis
fi
# The debug binary: the test suite builds it anyway, so CI compiles nothing extra.
echo "building the binary in $CARGO_TARGET_DIR (debug, shared with the tests)"
cargo build -q --locked -p palisade
WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PASSWORD="schemathesis-Admin-$RANDOM$RANDOM"
cat > "$WORK/palisade.toml" <<TOML
[rate_limit]
login_per_minute = 100000
ingest_per_second = 100000
read_per_second = 100000
write_per_second = 100000
TOML
PALISADE_ADMIN_PASSWORD="$PASSWORD" PALISADE_LOG=warn "$CARGO_TARGET_DIR/debug/palisade" serve \
  --config "$WORK/palisade.toml" --data-dir "$WORK/data" --listen "127.0.0.1:$PORT" 2>"$WORK/server.log" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
TOKEN=""
for _ in $(seq 1 50); do
  TOKEN=$(curl -s "http://127.0.0.1:$PORT/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"username\":\"admin\",\"password\":\"$PASSWORD\"}" | python3 -c 'import sys,json; print(json.load(sys.stdin).get("access_token",""))' 2>/dev/null || true)
  [ -n "$TOKEN" ] && break; sleep 0.2
done
[ -n "$TOKEN" ] || { echo "could not log in"; cat "$WORK/server.log"; exit 1; }
# The admin must not log itself out or change its own password mid-run.
cd "$WORK"   # schemathesis keeps a cache in the working directory
"$VENV/bin/schemathesis" run "http://127.0.0.1:$PORT/api/v1/openapi.json" \
  --header "Authorization: Bearer $TOKEN" \
  --checks not_a_server_error \
  --exclude-path /api/v1/auth/logout --exclude-path /api/v1/auth/password \
  --max-examples "$MAX" --no-color
