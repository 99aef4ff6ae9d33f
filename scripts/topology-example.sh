#!/usr/bin/env bash
# A scale-out topology on this machine (docs/ARCHITECTURE.md, "Topology"):
#
#   Kafka broker (Tansu, scripts/lib/kafka.sh)      PostgreSQL database palisade_topology
#          │ topic web-logs, 4 partitions, key = client           ▲
#          ├──────────► worker 1 (--role worker, :9191) ──────────┤
#          └──────────► worker 2 (--role worker, :9192) ──────────┤
#                       api node (--role api, :8088) ─────────────┘ ◄── you (HTTP, WebSocket)
#
# It produces LINES access-log lines keyed by client (a few are SQL injections), waits
# until the API node counts them all, and prints what each node shows; the processes
# keep running until Enter (or run with --stop-after to stop at once).
#
#   bash scripts/topology-example.sh [LINES] [--stop-after]
#
# Needs: a PostgreSQL server (PALISADE_TOPOLOGY_PG, default
# postgres://postgres@127.0.0.1:5432), cmake and the libcurl headers for the Kafka
# build, curl and python3. The binary is built with --features kafka unless
# PALISADE_BIN points at one.
set -euo pipefail
cd "$(dirname "$0")/.."

LINES=${1:-20000}
STOP_AFTER=no
for a in "$@"; do [ "$a" = "--stop-after" ] && STOP_AFTER=yes; done
PG=${PALISADE_TOPOLOGY_PG:-postgres://postgres@127.0.0.1:5432}
DB=palisade_topology
API=127.0.0.1:8088
PASSWORD='Topology-Example-Password-1'
TOPIC=web-logs
RUN=$(mktemp -d /tmp/palisade-topology.XXXXXX)

say() { printf '\n== %s\n' "$*"; }

say "Build (palisade --features kafka, and the keyed producer)"
if [ -z "${PALISADE_BIN:-}" ]; then
  cargo build -q -p palisade --features kafka
  PALISADE_BIN=${CARGO_TARGET_DIR:-target}/debug/palisade
fi
cargo build -q -p palisade-kafka --features client --example produce_lines
PRODUCE=${CARGO_TARGET_DIR:-target}/debug/examples/produce_lines

say "Kafka broker"
# shellcheck source=lib/kafka.sh
source scripts/lib/kafka.sh
ensure_kafka
BROKERS=$PALISADE_TEST_KAFKA
echo "broker at $BROKERS"

say "PostgreSQL database $DB (re-created)"
psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
URL="$PG/$DB"

cat >"$RUN/palisade.toml" <<EOF
[[kafka]]
name = "$TOPIC"
brokers = "$BROKERS"
topics = ["$TOPIC"]
group = "palisade-topology"
format = "combined"
start = "earliest"
session_timeout = "6s"
EOF
export PALISADE_JWT_KEY=topology-example-jwt-key-0123456789abcdef
export PALISADE_SECRETS_KEY=$(python3 -c 'import os,base64;print(base64.b64encode(os.urandom(32)).decode())')
export PALISADE_ADMIN_PASSWORD=$PASSWORD PALISADE_LOG=${PALISADE_LOG:-warn}
unset PALISADE_DATABASE_URL PALISADE_CONFIG PALISADE_ROLE

PIDS=()
stop_all() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_all EXIT

node() { # role name listen
  "$PALISADE_BIN" serve --role "$1" --listen "$3" --config "$RUN/palisade.toml" \
    --data-dir "$RUN/$2" --database-url "$URL" >"$RUN/$2.log" 2>&1 &
  PIDS+=($!)
  echo "$2: --role $1 on $3 (pid $!, log $RUN/$2.log)"
}

say "Nodes"
node api api "$API"
node worker worker1 127.0.0.1:9191
node worker worker2 127.0.0.1:9192
for addr in "$API" 127.0.0.1:9191 127.0.0.1:9192; do
  for _ in $(seq 1 300); do curl -fs "http://$addr/livez" >/dev/null && break; sleep 0.2; done
done
TOKEN=""
for _ in $(seq 1 100); do
  TOKEN=$(curl -fs "http://$API/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"username\":\"admin\",\"password\":\"$PASSWORD\"}" |
    python3 -c 'import json,sys;print(json.load(sys.stdin)["access_token"])' 2>/dev/null) && break
  sleep 0.3
done
[ -n "$TOKEN" ] || { echo "cannot log in on the API node" >&2; exit 1; }

say "Produce $LINES lines keyed by client (every 500th an SQL injection)"
python3 - "$LINES" <<'PY' | "$PRODUCE" "$BROKERS" "$TOPIC" 4
import sys
n = int(sys.argv[1])
for i in range(n):
    ip = f"10.{i % 7}.{(i // 7) % 250}.{i % 250}"
    path = f"/page/{i}"
    if i % 500 == 499:
        ip = f"203.0.113.{i % 250}"
        path = f"/item?id={i}%27%20UNION%20SELECT%20username,password%20FROM%20users--"
    print(f'{ip} - - [06/Dec/2026:00:00:00 +0000] "GET {path} HTTP/1.1" 200 512 "-" "topology-example"')
PY

say "Waiting for the API node to count $LINES events (GET /api/v1/sources)"
count() {
  curl -fs "http://$API/api/v1/sources" -H "authorization: Bearer $TOKEN" |
    python3 -c "import json,sys;d=json.load(sys.stdin);print(next((s['stored']['events'] for s in d['items'] if s['name']=='$TOPIC' and s.get('stored')),0))"
}
START=$(date +%s.%N)
N=0
for _ in $(seq 1 600); do
  N=$(count || echo 0)
  [ "$N" -ge "$LINES" ] && break
  sleep 0.5
done
END=$(date +%s.%N)
echo "events stored for $TOPIC, as the API node counts them: $N of $LINES"
python3 -c "print(f'  ({($END-$START):.1f} s after the last line was produced)')"

say "What each node shows"
curl -fs "http://$API/api/v1/threats/stats" -H "authorization: Bearer $TOKEN" | head -c 400; echo
for w in 127.0.0.1:9191 127.0.0.1:9192; do
  echo "worker $w: kafka section of /api/v1/health/detailed"
  curl -fs "http://$w/api/v1/health/detailed" -H "authorization: Bearer $TOKEN" |
    python3 -c 'import json,sys;d=json.load(sys.stdin);[print("  ",k["source"],k["state"],"partitions",[p["partition"] for p in (k.get("detail") or {}).get("partitions",[])],"last commit",((k.get("detail") or {}).get("last_commit") or {}).get("at")) for k in d["kafka"]]'
  echo "worker $w: GET /api/v1/events -> $(curl -s -o /dev/null -w '%{http_code}' "http://$w/api/v1/events" -H "authorization: Bearer $TOKEN") (workers serve health and metrics only)"
done

if [ "$STOP_AFTER" = no ] && [ -t 0 ]; then
  say "Running: API http://$API (admin / $PASSWORD). Enter stops everything."
  read -r _
fi
[ "$N" -ge "$LINES" ]
