# Sourced by the ingest and query benchmarks: the generated combined log they all read,
# made once and shared between them (same lines, same seed, so runs compare).
#
#   bench_log LINES
#
# Sets WORK (PALISADE_BENCH_DIR, default /tmp/palisade-bench; created) and LOG
# ($WORK/access-LINES.log, written by tools/gen_access_log.py with seed 7 unless it is
# already there). Run from the repository's root.
bench_log() {
  WORK="${PALISADE_BENCH_DIR:-/tmp/palisade-bench}"
  mkdir -p "$WORK"
  LOG="$WORK/access-$1.log"
  [ -s "$LOG" ] || python3 tools/gen_access_log.py "$LOG" --lines "$1" --seed 7
}
