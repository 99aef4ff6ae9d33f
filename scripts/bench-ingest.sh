#!/usr/bin/env bash
# Ingest benchmark on a generated 1,000,000-line nginx combined log, all in one run:
# GoAccess parsing the same file, then `palisade ingest` end to end (default settings:
# detection on: a bulk load) into SQLite, the same with --keep-indexes (indexes kept up
# to date row by row) and with --no-detect, and into PostgreSQL; each with
# wall time, lines/s, the ratio to GoAccess and peak RSS (/usr/bin/time -v). After the
# SQLite run it checks that the threats stored equal the threats the run reported.
#
# Usage: scripts/bench-ingest.sh [LINES]
#   PALISADE_BIN=path          use this binary instead of building one (release)
#   PALISADE_BIN_BEFORE=path   also measure this (older) binary, same file, same run
#   PALISADE_BENCH_DATABASE_URL=postgres://...  PostgreSQL to use (default: a fresh
#                              schema in the test database of scripts/lib/postgres.sh)
#   PALISADE_BENCH_SKIP_PG=1   SQLite and GoAccess only
# Needs goaccess, /usr/bin/time and python3 (installs the first two on Debian).
set -euo pipefail
cd "$(dirname "$0")/.."
LINES="${1:-1000000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/palisade/target}"
source scripts/lib/bench-log.sh

for tool in goaccess:goaccess /usr/bin/time:time; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${tool##*:}" >/dev/null
done
bench_log "$LINES"
if [ -z "${PALISADE_BIN:-}" ]; then
  cargo build --release -q -p palisade
  PALISADE_BIN="$CARGO_TARGET_DIR/release/palisade"
fi

GOACCESS_SECS=""
measure() { # name, command...
  local name=$1; shift
  local out="$WORK/$name.time"
  /usr/bin/time -v "$@" >"$WORK/$name.out" 2>"$out" || { cat "$out" "$WORK/$name.out"; return 1; }
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/{print $2}' "$out")
  rss=$(awk -F': ' '/Maximum resident set size/{print $2}' "$out")
  python3 - "$name" "$wall" "$rss" "$LINES" "${GOACCESS_SECS:-0}" <<'PY'
import sys
name, wall, rss, lines, peer = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
parts = [float(p) for p in wall.split(':')]
secs = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
ratio = f"  {peer / secs:5.2f}x GoAccess" if peer > 0 and name != "goaccess" else ""
print(f"{name:<26} {secs:8.2f} s {lines / secs:12,.0f} lines/s  peak RSS {rss / 1024:7.1f} MB{ratio}")
PY
  if [ "$name" = goaccess ]; then
    GOACCESS_SECS=$(python3 -c "import sys; p=[float(x) for x in sys.argv[1].split(':')]; print(sum(v*60**i for i,v in enumerate(reversed(p))))" "$wall")
  fi
}

# The threats the run reported ("N signature threats, M scenario alerts") against the
# rows the store holds: they must be equal (every threat found is stored).
check_threats() { # name, sqlite file
  python3 - "$WORK/$1.out" "$2" <<'PY'
import re, sqlite3, sys
text = open(sys.argv[1]).read()
m = re.search(r"total: .*?(\d+) signature threats, (\d+) scenario alerts", text)
if not m:
    sys.exit(f"no threat totals in {sys.argv[1]}")
sig, scen = int(m.group(1)), int(m.group(2))
db = sqlite3.connect(sys.argv[2])
stored = db.execute("SELECT count(*) FROM threats").fetchone()[0]
print(f"  threats reported: {sig} signature + {scen} scenario = {sig + scen}; stored: {stored} "
      f"({'equal' if stored == sig + scen else 'DIFFERENT'})")
PY
}

echo "file: $LOG ($(du -h "$LOG" | cut -f1), $LINES lines); $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
measure goaccess goaccess "$LOG" --log-format=COMBINED -o "$WORK/goaccess.json" --no-progress
if [ -n "${PALISADE_BIN_BEFORE:-}" ]; then
  rm -rf "$WORK/sqlite-before"
  measure palisade-sqlite-before "$PALISADE_BIN_BEFORE" ingest --quiet --format combined --data-dir "$WORK/sqlite-before" "$LOG"
fi
rm -rf "$WORK/sqlite"
measure palisade-sqlite "$PALISADE_BIN" ingest --quiet --format combined --data-dir "$WORK/sqlite" "$LOG"
check_threats palisade-sqlite "$WORK/sqlite/palisade.db"
rm -rf "$WORK/sqlite-keep"
measure palisade-sqlite-keep-indexes "$PALISADE_BIN" ingest --quiet --keep-indexes --format combined --data-dir "$WORK/sqlite-keep" "$LOG"
check_threats palisade-sqlite-keep-indexes "$WORK/sqlite-keep/palisade.db"
rm -rf "$WORK/sqlite-keep"
rm -rf "$WORK/sqlite-nodetect"
measure palisade-sqlite-no-detect "$PALISADE_BIN" ingest --quiet --no-detect --format combined --data-dir "$WORK/sqlite-nodetect" "$LOG"
tail -qn1 "$WORK/palisade-sqlite.out"

if [ -z "${PALISADE_BENCH_SKIP_PG:-}" ]; then
  if [ -n "${PALISADE_BENCH_DATABASE_URL:-}" ]; then
    PGURL="$PALISADE_BENCH_DATABASE_URL"
    psql "$PGURL" -qc "DROP SCHEMA public CASCADE; CREATE SCHEMA public" >/dev/null
    DROP=""
  else
    source scripts/lib/postgres.sh
    ensure_postgres
    SCHEMA="bench_$$"
    psql "$PALISADE_TEST_DATABASE_URL" -qc "CREATE SCHEMA $SCHEMA" >/dev/null
    PGURL="$PALISADE_TEST_DATABASE_URL?options=-c%20search_path%3D$SCHEMA"
    DROP="DROP SCHEMA $SCHEMA CASCADE"
  fi
  if [ -n "${PALISADE_BIN_BEFORE:-}" ]; then
    measure palisade-postgres-before "$PALISADE_BIN_BEFORE" ingest --quiet --format combined --data-dir "$WORK/pg-before" --database-url "$PGURL" "$LOG"
    psql "$PGURL" -qc "DROP TABLE IF EXISTS schema_migrations CASCADE" >/dev/null
    psql "$PGURL" -Atc "SELECT 'DROP TABLE IF EXISTS ' || string_agg(quote_ident(tablename), ', ') || ' CASCADE' FROM pg_tables WHERE schemaname = current_schema()" | psql "$PGURL" -q >/dev/null
  fi
  measure palisade-postgres "$PALISADE_BIN" ingest --quiet --format combined --data-dir "$WORK/pg" --database-url "$PGURL" "$LOG"
  tail -qn1 "$WORK/palisade-postgres.out"
  if [ -n "$DROP" ]; then psql "$PALISADE_TEST_DATABASE_URL" -qc "$DROP" >/dev/null; fi
fi
