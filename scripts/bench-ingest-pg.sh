#!/usr/bin/env bash
# `palisade ingest` of the generated 1M-line combined log into PostgreSQL, with the
# CPU split between Palisade and its database backends (issue 16, `pg-ingest`): for
# each binary and mode, a fresh schema, then wall time, lines/s, Palisade's CPU and
# peak RSS (/usr/bin/time -v), the CPU of every backend connected to the database
# (sampled from /proc every 0.3 s: approximate, a short-lived parallel worker can be
# missed; "server": every process of the server that exited meanwhile, parallel
# workers included, when the server runs on this machine), and the bulk load's
# index-build time.
#
# Usage: scripts/bench-ingest-pg.sh DATABASE_URL BIN [BIN...]
#   DATABASE_URL  postgres://user@host:port/db of a database of its own (the server on
#                 this machine: the backends' CPU is read from /proc); schemas pgb_*
#                 are made and dropped in it
#   BIN           palisade binaries, measured in the order given, each --no-detect
#                 then with detection (pass the before binary first and last to
#                 alternate)
#   PALISADE_BENCH_LINES=N  lines (default 1000000); PALISADE_BENCH_DIR (default
#                 /tmp/palisade-bench); PALISADE_BENCH_MODES (default "--no-detect detect":
#                 the modes run per binary, in that order; "detect" alone to alternate
#                 binaries with detection on only)
set -euo pipefail
cd "$(dirname "$0")/.."
URL=$1
shift
LINES="${PALISADE_BENCH_LINES:-1000000}"
source scripts/lib/bench-log.sh
bench_log "$LINES"
DB="${URL##*/}"
DB="${DB%%\?*}"

# Last CPU ticks seen per backend pid of $DB, summed when $1.stop appears.
monitor() {
  declare -A last
  while [ ! -e "$1.stop" ]; do
    for pid in $(psql "$URL" -Atc "SELECT pid FROM pg_stat_activity WHERE datname = '$DB' AND pid <> pg_backend_pid()" 2>/dev/null); do
      t=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null) && [ -n "$t" ] && last[$pid]=$t
    done
    sleep 0.3
  done
  local s=0
  for p in "${!last[@]}"; do s=$((s + last[$p])); done
  echo "$s" >"$1"
}

# The server's CPU for its exited processes (every backend and parallel worker of the
# run, and anything else the server did meanwhile), in ticks: the postmaster's
# cutime + cstime, the postmaster being the checkpointer's parent. 0 when unreadable.
server_ticks() {
  local ckpt pm
  ckpt=$(psql "$URL" -Atc "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'" 2>/dev/null) || true
  pm=$(awk '/^PPid:/ {print $2}' "/proc/$ckpt/status" 2>/dev/null) || true
  awk '{print $16 + $17}' "/proc/$pm/stat" 2>/dev/null || echo 0
}

echo "file: $LOG ($LINES lines); $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
n=0
for bin in "$@"; do
  for mode in ${PALISADE_BENCH_MODES:---no-detect detect}; do
    n=$((n + 1))
    schema="pgb_${$}_$n"
    psql "$URL" -qc "CREATE SCHEMA $schema" >/dev/null
    out="$WORK/pg-$n"
    rm -f "$out.mon" "$out.mon.stop"
    monitor "$out.mon" &
    load=$(cut -d' ' -f1 /proc/loadavg)
    args=()
    [ "$mode" = detect ] || args=(--no-detect)
    before=$(server_ticks)
    /usr/bin/time -v "$bin" ingest --format combined "${args[@]}" --data-dir "$WORK/pg-data-$n" \
      --database-url "$URL?options=-c%20search_path%3D$schema" "$LOG" >"$out.out" 2>"$out.err" || true
    touch "$out.mon.stop"
    wait
    sleep 0.5
    echo $(($(server_ticks) - before)) >"$out.server"
    psql "$URL" -qc "SET client_min_messages = warning; DROP SCHEMA $schema CASCADE" >/dev/null
    rm -rf "$WORK/pg-data-$n"
    python3 - "$bin" "$mode" "$out" "$LINES" "$load" <<'PY'
import re, sys
bin_, mode, out, lines, load = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
err = open(out + ".err").read()
def field(name):
    m = re.search(re.escape(name) + r": (.*)", err)
    return m.group(1).strip() if m else "0"
wall = sum(float(p) * 60 ** i for i, p in enumerate(reversed(field("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":"))))
cpu = float(field("User time (seconds)")) + float(field("System time (seconds)"))
rss = int(field("Maximum resident set size (kbytes)")) / 1024
pg = int(open(out + ".mon").read().strip() or 0) / 100
server = int(open(out + ".server").read().strip() or 0) / 100
built = re.search(r"events indexes built in ([0-9.]+)s", err)
total = re.search(r"^total: .*$", open(out + ".out").read(), re.M)
print(f"{bin_.split('/')[-1]:<28} {mode:<11} {wall:7.2f} s {lines / wall:9,.0f} lines/s  "
      f"palisade CPU {cpu:6.2f} s  backends CPU {pg:6.2f} s (server {server:6.2f} s)  peak RSS {rss:6.1f} MB  "
      f"index build {built.group(1) + ' s' if built else '-'}  load {load}")
if total:
    print("  " + total.group(0))
else:
    print("  FAILED: " + err[-500:])
PY
  done
done
