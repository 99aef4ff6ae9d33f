#!/usr/bin/env bash
# What the bulk load of `palisade ingest` saves at the SQL level, with the sqlite3 shell
# only (no Palisade build needed): the generated combined log's rows go into the events
# table in group commits of 25,000 rows (the writer's) with the writer's pragmas, once
# with the six events indexes kept up to date row by row and once with the indexes
# built after the rows (what `Store::end_bulk_load` does: temp_store=FILE, threads=2, a
# small cache). Prints wall and CPU seconds (the shell's .timer, summed) of each phase.
#
# Usage: scripts/bench-ingest-sql.sh [LINES]   (needs sqlite3, awk, python3)
set -euo pipefail
cd "$(dirname "$0")/.."
LINES="${1:-1000000}"
source scripts/lib/bench-log.sh
bench_log "$LINES"
ROWS="$WORK/rows-$LINES.tsv"
# ip, method, path, query, protocol, status, referer, user agent (tabs made spaces).
awk 'BEGIN{OFS="\t"} { split($0, q, "\""); split(q[2], r, " "); split(r[2], pq, "?");
  ref=q[4]; ua=q[6]; gsub(/\t/," ",ref); gsub(/\t/," ",ua);
  print NR, $1, r[1], pq[1], pq[2], r[3], $9, ref, ua }' "$LOG" > "$ROWS"
IDX="CREATE INDEX events_ts ON events (ts); CREATE INDEX events_client_ip ON events (client_ip, ts);
CREATE INDEX events_status ON events (status, ts); CREATE INDEX events_method ON events (method, ts);
CREATE INDEX events_host ON events (host, ts); CREATE INDEX events_path ON events (path, ts);"

run() { # kept|bulk
  local db="$WORK/sql-$1.db"
  rm -f "$db" "$db-wal" "$db-shm"
  {
    echo "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-65536; PRAGMA wal_autocheckpoint=16384;"
    echo "CREATE TABLE staging (n INTEGER PRIMARY KEY, ip TEXT, method TEXT, path TEXT, query TEXT, protocol TEXT, status INTEGER, referer TEXT, ua TEXT);"
    echo ".mode tabs"
    echo ".import $ROWS staging"
    echo "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL, received_at INTEGER NOT NULL, kind TEXT NOT NULL, source TEXT NOT NULL, client_ip BLOB, host TEXT, method TEXT, path TEXT, query TEXT, protocol TEXT, status INTEGER, bytes INTEGER, referer TEXT, user_agent TEXT, user_name TEXT, duration_us INTEGER, message TEXT, extra TEXT);"
    [ "$1" = kept ] && echo "$IDX"
    echo ".timer on"
    echo "SELECT 'phase rows';"
    for ((s = 1; s <= LINES; s += 25000)); do
      echo "BEGIN IMMEDIATE; INSERT INTO events (ts, received_at, kind, source, client_ip, method, path, query, protocol, status, referer, user_agent) SELECT 1709251200000000 + n * 1000, 0, 'http', 'import:$LOG', CAST(substr(ip || '                ', 1, 16) AS BLOB), method, path, nullif(query, ''), protocol, status, referer, ua FROM staging WHERE n BETWEEN $s AND $((s + 24999)); COMMIT;"
    done
    if [ "$1" = bulk ]; then
      echo "SELECT 'phase indexes'; PRAGMA temp_store=FILE; PRAGMA threads=2; PRAGMA cache_size=-8192;"
      echo "$IDX"
    fi
    echo "SELECT 'phase end';"
  } | sqlite3 "$db" 2>/dev/null | python3 -c '
import re, sys
phase, sums = None, {}
for line in sys.stdin:
    line = line.strip()
    if line.startswith("phase "):
        phase = line[6:]
        continue
    m = re.match(r"Run Time: real ([\d.]+) user ([\d.]+) sys ([\d.]+)", line)
    if m and phase and phase != "end":
        r, u, s = map(float, m.groups())
        a = sums.setdefault(phase, [0.0, 0.0])
        a[0] += r; a[1] += u + s
for k, (r, c) in sums.items():
    print(f"  {sys.argv[1]:<5} {k:<8} wall {r:7.1f} s  cpu {c:6.2f} s")
print(f"  {sys.argv[1]:<5} total    wall {sum(v[0] for v in sums.values()):7.1f} s  cpu {sum(v[1] for v in sums.values()):6.2f} s")
' "$1"
  echo "  $1: $(sqlite3 "$db" "SELECT count(*) FROM events") rows, $(sqlite3 "$db" "SELECT count(*) FROM sqlite_master WHERE type='index' AND tbl_name='events'") indexes"
  rm -f "$db" "$db-wal" "$db-shm"
}
echo "$LINES lines; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
run kept
run bulk
rm -f "$ROWS"
