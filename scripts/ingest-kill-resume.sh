#!/usr/bin/env bash
# What a killed import's rerun gives again (stop 29): `palisade ingest` of LOG into the
# PostgreSQL database DB with detection on, SIGKILLed after SECONDS, then run again to
# its end; prints the events at the kill, the final events, and the threats by source and
# category (compare with an uninterrupted import into another database).
#
#   bash scripts/ingest-kill-resume.sh BIN DB SECONDS LOG
#
# DB is created (dropped first if it exists) on postgres://postgres@127.0.0.1:5432.
set -euo pipefail
BIN=${1:?binary} DB=${2:?database} SECONDS_BEFORE_KILL=${3:?seconds} LOG=${4:?log file}
PSQL=(psql -qtA -h 127.0.0.1 -U postgres)
"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
DATA=$(mktemp -d)
trap 'rm -rf "$DATA"' EXIT
URL="postgres://postgres@127.0.0.1:5432/$DB"
"$BIN" ingest --quiet --data-dir "$DATA" --database-url "$URL" "$LOG" >"$DATA/first.out" 2>&1 &
pid=$!
sleep "$SECONDS_BEFORE_KILL"
kill -9 "$pid" 2>/dev/null || echo "the import had already ended: use a smaller SECONDS"
wait "$pid" 2>/dev/null || true
echo "events at the kill: $("${PSQL[@]}" -d "$DB" -c 'SELECT count(*) FROM events')"
"$BIN" ingest --quiet --data-dir "$DATA" --database-url "$URL" "$LOG"
echo "events after the rerun: $("${PSQL[@]}" -d "$DB" -c 'SELECT count(*) FROM events')"
echo "threats by source and category:"
"${PSQL[@]}" -d "$DB" -c "SELECT source, category, count(*) FROM threats GROUP BY 1, 2 ORDER BY 1, 2"
