#!/usr/bin/env bash
# Events listing latency (`GET /api/v1/events` = Store::query_events) on a store of
# EVENTS generated events, without and then with the free-text index ([search]
# text_index), SQLite then PostgreSQL; plus what the index costs `palisade ingest` of a
# 1,000,000-line log (lines/s and peak RSS, index off and on, both backends).
# The events are generated in SQL from 50,000 requests sampled from the log
# (crates/store/examples/events_query_bench.rs says how, and which queries make the
# mix); the example checks that every query returns the same events with the index.
# Usage: scripts/bench-events-query.sh [EVENTS] [sqlite|postgres|both|ingest|all] [QUERIES_PER_SHAPE]
#   PostgreSQL: PALISADE_BENCH_DATABASE_URL (default: PALISADE_TEST_DATABASE_URL, else
#   postgres://postgres@127.0.0.1:5432/test), schema bench_events (dropped afterwards).
#   Files: $PALISADE_BENCH_DIR (default /tmp/palisade-bench), deleted afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS="${1:-10000000}"
WHICH="${2:-all}"
PER_SHAPE="${3:-30}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/palisade/target}"
export PALISADE_BENCH_DIR="${PALISADE_BENCH_DIR:-/tmp/palisade-bench}"
export PALISADE_BENCH_DATABASE_URL="${PALISADE_BENCH_DATABASE_URL:-${PALISADE_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}}"
source scripts/lib/bench-log.sh
bench_log 1000000

if [ "$WHICH" != ingest ]; then
  cargo build --release -q -p palisade-store --example events_query_bench
  BENCH="$CARGO_TARGET_DIR/release/examples/events_query_bench"
  for backend in sqlite postgres; do
    case "$WHICH" in "$backend"|both|all) "$BENCH" "$backend" "$EVENTS" "$LOG" "$PER_SHAPE" ;; esac
  done
fi

if [ "$WHICH" = ingest ] || [ "$WHICH" = all ]; then
  command -v /usr/bin/time >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
  cargo build --release -q -p palisade
  BIN="$CARGO_TARGET_DIR/release/palisade"
  printf '[search]\ntext_index = true\n' >"$WORK/text-index.toml"
  printf '# defaults\n' >"$WORK/no-text-index.toml"
  PGBASE="$PALISADE_BENCH_DATABASE_URL"
  measure() { # name, command...
    local name=$1; shift
    /usr/bin/time -v "$@" >"$WORK/$name.out" 2>"$WORK/$name.time" || { cat "$WORK/$name.time" "$WORK/$name.out"; return 1; }
    python3 - "$name" "$WORK/$name.time" "$WORK/$name.out" <<'PY'
import re, sys
name, t, out = sys.argv[1], open(sys.argv[2]).read(), open(sys.argv[3]).read()
wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", t).group(1)
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1))
secs = sum(float(p) * 60 ** i for i, p in enumerate(reversed(wall.split(":"))))
events = int(re.search(r"(\d+) events", out).group(1)) if re.search(r"(\d+) events", out) else 0
print(f"| {name} | {secs:.1f} s | {1000000 / secs:,.0f} lines/s | {rss / 1024:.0f} MB |")
PY
  }
  echo "| ingest of $LOG | wall | lines/s | peak RSS |"
  echo "| --- | ---: | ---: | ---: |"
  for round in 1 2; do
    for mode in no-text-index text-index; do
      rm -rf "$WORK/ingest-sqlite"
      measure "sqlite, $mode, round $round" "$BIN" --config "$WORK/$mode.toml" ingest --quiet --format combined --data-dir "$WORK/ingest-sqlite" "$LOG"
      psql "$PGBASE" -qc "DROP SCHEMA IF EXISTS bench_ingest_text CASCADE; CREATE SCHEMA bench_ingest_text" >/dev/null
      sep='?'; case "$PGBASE" in *\?*) sep='&' ;; esac
      measure "postgres, $mode, round $round" "$BIN" --config "$WORK/$mode.toml" ingest --quiet --format combined --data-dir "$WORK/ingest-pg" \
        --database-url "$PGBASE${sep}options=-c%20search_path%3Dbench_ingest_text" "$LOG"
    done
  done
  psql "$PGBASE" -qc "DROP SCHEMA IF EXISTS bench_ingest_text CASCADE" >/dev/null
  rm -rf "$WORK/ingest-sqlite" "$WORK/ingest-pg"
fi
