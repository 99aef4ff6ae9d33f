#!/usr/bin/env bash
# Scale-out throughput (docs/BENCHMARKS.md, "Scale-out"): the real binary (release,
# --features kafka) as 1 and then 2 `--role worker` processes in one consumer group on
# one topic, each consuming + parsing + detecting (signature inspector, scenarios) +
# storing into one PostgreSQL database. The topic is filled first (N combined lines keyed
# by client, every 500th an SQL injection), then the workers start; the rate is events
# stored per second from the first stored event to the last (polled in PostgreSQL).
# Peer in the same run: kcat (librdkafka's own consumer) reading the same topic to
# /dev/null, the ceiling of consumption alone.
#
#   bash scripts/bench-scale.sh [N] [PARTITIONS]
#
# PALISADE_BENCH_PROFILE=debug measures a debug build instead (quicker to build; the
# figures are then a debug build's, say so when quoting them).
# Needs PostgreSQL at PALISADE_BENCH_PG (default postgres://postgres@127.0.0.1:5432)
# and builds into CARGO_TARGET_DIR (default /root/.cache/palisade/target-scale-release).
set -euo pipefail
cd "$(dirname "$0")/.."

N=${1:-200000}
PARTS=${2:-4}
PG=${PALISADE_BENCH_PG:-postgres://postgres@127.0.0.1:5432}
PROFILE=${PALISADE_BENCH_PROFILE:-release}
if [ "$PROFILE" = release ]; then
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/root/.cache/palisade/target-scale-release}
  FLAG=--release
else
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/root/.cache/palisade/target-scale}
  FLAG=
  PROFILE=debug
fi
RUN=$(mktemp -d /tmp/palisade-bench-scale.XXXXXX)

if [ -z "${PALISADE_BIN:-}" ]; then
  cargo build -q $FLAG -p palisade --features kafka
  PALISADE_BIN=$CARGO_TARGET_DIR/$PROFILE/palisade
fi
cargo build -q $FLAG -p palisade-kafka --features client --example produce_lines
PRODUCE=$CARGO_TARGET_DIR/$PROFILE/examples/produce_lines

# shellcheck source=lib/kafka.sh
source scripts/lib/kafka.sh
ensure_kafka
BROKERS=$PALISADE_TEST_KAFKA
PEERS=/work/shared/peers/kafka.sh

python3 - "$N" >"$RUN/lines.txt" <<'PY'
import sys
n = int(sys.argv[1])
for i in range(n):
    ip = f"10.{i % 7}.{(i // 7) % 250}.{i % 250}"
    path = f"/page/{i}?q=x"
    if i % 500 == 499:
        ip = f"203.0.113.{i % 250}"
        path = f"/item?id={i}%27%20UNION%20SELECT%20username,password%20FROM%20users--"
    print(f'{ip} - - [06/Dec/2026:00:00:00 +0000] "GET {path} HTTP/1.1" 200 512 "-" "Mozilla/5.0 (bench)"')
PY

export PALISADE_JWT_KEY=bench-scale-jwt-key-0123456789abcdef0123 PALISADE_LOG=warn
export PALISADE_ADMIN_PASSWORD='Bench-Scale-Password-1'
unset PALISADE_DATABASE_URL PALISADE_CONFIG PALISADE_ROLE

echo "scale-out bench ($PROFILE build): $N lines, $PARTS partitions, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
for WORKERS in 1 2; do
  DB=scale_bench_w$WORKERS
  TOPIC=scale-bench-$WORKERS-$(date +%s)
  psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
  "$PRODUCE" "$BROKERS" "$TOPIC" "$PARTS" <"$RUN/lines.txt"
  if [ -x "$PEERS" ] && [ "$WORKERS" = 1 ]; then
    t0=$(date +%s.%N)
    got=$(timeout 120 "$PEERS" kcat -b "$BROKERS" -C -t "$TOPIC" -o beginning -e -q 2>/dev/null | wc -l || true)
    t1=$(date +%s.%N)
    python3 -c "print(f'peer kcat: consumed {$got} records in {$t1-$t0:.2f}s = {$got/($t1-$t0):.0f} records/s (consume only, to /dev/null)')"
  fi
  cat >"$RUN/w.toml" <<EOF
[[kafka]]
name = "bench"
brokers = "$BROKERS"
topics = ["$TOPIC"]
group = "$TOPIC"
format = "combined"
start = "earliest"
session_timeout = "6s"
EOF
  PIDS=()
  START=$(date +%s.%N)
  for w in $(seq 1 "$WORKERS"); do
    "$PALISADE_BIN" serve --role worker --listen "127.0.0.1:$((9290 + w))" --config "$RUN/w.toml" \
      --data-dir "$RUN/w$WORKERS-$w" --database-url "$PG/$DB" >"$RUN/w$WORKERS-$w.log" 2>&1 &
    PIDS+=($!)
  done
  FIRST=""
  LAST=0
  for _ in $(seq 1 6000); do
    C=$(psql "$PG/$DB" -tAc "SELECT count(*) FROM events" 2>/dev/null || echo 0)
    NOW=$(date +%s.%N)
    if [ "$C" -gt 0 ] && [ -z "$FIRST" ]; then FIRST=$NOW; FIRST_COUNT=$C; fi
    LAST=$C
    [ "$C" -ge "$N" ] && break
    sleep 0.2
  done
  END=$(date +%s.%N)
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  # After the workers drained (their stages finish the stored batches).
  THREATS=$(psql "$PG/$DB" -tAc "SELECT count(*) FROM threats" 2>/dev/null || echo 0)
  python3 -c "
first, end, start = $FIRST, $END, $START
print(f'palisade {$WORKERS} worker(s): {$LAST}/{$N} events stored, {$THREATS} threats after the drain; join+start {first-start:.2f}s, then {end-first:.2f}s = {($LAST-$FIRST_COUNT)/(end-first):.0f} events/s (consume+parse+detect+store, PostgreSQL)')"
  psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB" || true
done
rm -rf "$RUN"
