#!/usr/bin/env bash
# What a killed import's rerun gives again (stop 29, resume2): `palisade ingest` of LOG
# with detection on, SIGKILLed after SECONDS (0: not killed, the uninterrupted reference),
# then run again to its end; prints the events at the kill, the final events, and the
# threats by source and category. With KEYS, writes every threat's key (source, category,
# rule ids, time, client address, URI), sorted, one a line, to compare two runs with
# `diff` (event ids are not compared: they skip after a killed COPY).
#
#   bash scripts/ingest-kill-resume.sh BIN DB SECONDS LOG [KEYS]
#
# DB: a PostgreSQL database name, created (dropped first if it exists) on
# postgres://postgres@127.0.0.1:5432; or sqlite:DIR, a data directory (emptied first)
# holding the SQLite database.
set -euo pipefail
BIN=${1:?binary} DB=${2:?database} SECONDS_BEFORE_KILL=${3:?seconds} LOG=${4:?log file}
KEYS=${5:-}
PSQL=(psql -qtA -h 127.0.0.1 -U postgres)
DATA=$(mktemp -d)
trap 'rm -rf "$DATA"' EXIT
key_sql() {
    echo "SELECT source || '|' || category || '|' || rule_ids || '|' || ts || '|' || coalesce($1, '-') || '|' || coalesce(uri, '-') FROM threats"
}
if [[ $DB == sqlite:* ]]; then
    DIR=${DB#sqlite:}
    rm -rf "$DIR" && mkdir -p "$DIR"
    TARGET=(--data-dir "$DIR")
    query() { sqlite3 "$DIR/palisade.db" "$1"; }
    KEY_SQL=$(key_sql "lower(hex(client_ip))")
else
    "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
    TARGET=(--data-dir "$DATA" --database-url "postgres://postgres@127.0.0.1:5432/$DB")
    query() { "${PSQL[@]}" -d "$DB" -c "$1"; }
    KEY_SQL=$(key_sql "encode(client_ip, 'hex')")
fi
if [[ $SECONDS_BEFORE_KILL != 0 ]]; then
    "$BIN" ingest --quiet "${TARGET[@]}" "$LOG" >"$DATA/first.out" 2>&1 &
    pid=$!
    sleep "$SECONDS_BEFORE_KILL"
    kill -9 "$pid" 2>/dev/null || echo "the import had already ended: use a smaller SECONDS"
    wait "$pid" 2>/dev/null || true
    echo "events at the kill: $(query 'SELECT count(*) FROM events'), inspection mark $(query 'SELECT coalesce(max(event_id), 0) FROM inspection_marks'), highest event id $(query 'SELECT coalesce(max(id), 0) FROM events')"
fi
"$BIN" ingest --quiet "${TARGET[@]}" "$LOG"
echo "events after the run: $(query 'SELECT count(*) FROM events')"
echo "threats by source and category:"
query "SELECT source, category, count(*) FROM threats GROUP BY 1, 2 ORDER BY 1, 2"
if [[ -n $KEYS ]]; then
    query "$KEY_SQL" | LC_ALL=C sort >"$KEYS"
fi
