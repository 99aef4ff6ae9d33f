#!/usr/bin/env bash
# Ingest benchmark on a generated 1,000,000-line nginx combined log:
# GoAccess parsing the same file, then `palisade ingest` end to end into SQLite and into
# PostgreSQL, each with wall time, lines/s and peak RSS (/usr/bin/time -v), in one run.
# Usage: scripts/bench-ingest.sh [LINES]   (needs goaccess and /usr/bin/time; installs them)
set -euo pipefail
cd "$(dirname "$0")/.."
LINES="${1:-1000000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/palisade/target}"
WORK="${PALISADE_BENCH_DIR:-/tmp/palisade-bench}"
mkdir -p "$WORK"
LOG="$WORK/access-$LINES.log"

for tool in goaccess:goaccess /usr/bin/time:time; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${tool##*:}" >/dev/null
done
[ -s "$LOG" ] || python3 tools/gen_access_log.py "$LOG" --lines "$LINES" --seed 7
cargo build --release -q -p palisade
BIN="$CARGO_TARGET_DIR/release/palisade"

measure() { # name, command...
  local name=$1; shift
  local out="$WORK/$name.time"
  /usr/bin/time -v "$@" >"$WORK/$name.out" 2>"$out" || { cat "$out" "$WORK/$name.out"; return 1; }
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/{print $2}' "$out")
  rss=$(awk -F': ' '/Maximum resident set size/{print $2}' "$out")
  python3 - "$name" "$wall" "$rss" "$LINES" <<'PY'
import sys
name, wall, rss, lines = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
parts = [float(p) for p in wall.split(':')]
secs = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
print(f"{name:<22} {secs:8.2f} s {lines / secs:12,.0f} lines/s  peak RSS {rss / 1024:7.1f} MB")
PY
}

echo "file: $LOG ($(du -h "$LOG" | cut -f1), $LINES lines)"
measure goaccess goaccess "$LOG" --log-format=COMBINED -o "$WORK/goaccess.json" --no-progress
rm -rf "$WORK/sqlite"
measure palisade-sqlite "$BIN" ingest --quiet --format combined --data-dir "$WORK/sqlite" "$LOG"

source scripts/lib/postgres.sh
ensure_postgres
SCHEMA="bench_$$"
psql "$PALISADE_TEST_DATABASE_URL" -qc "CREATE SCHEMA $SCHEMA" >/dev/null
PGURL="$PALISADE_TEST_DATABASE_URL?options=-c%20search_path%3D$SCHEMA"
measure palisade-postgres "$BIN" ingest --quiet --format combined --data-dir "$WORK/pg" --database-url "$PGURL" "$LOG"
psql "$PALISADE_TEST_DATABASE_URL" -qc "DROP SCHEMA $SCHEMA CASCADE" >/dev/null
tail -n1 "$WORK/palisade-sqlite.out" "$WORK/palisade-postgres.out"
