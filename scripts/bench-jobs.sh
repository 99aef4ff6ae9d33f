#!/usr/bin/env bash
# Job queue benchmark: jobs/s through the queue and enqueue-to-start latency, on SQLite
# and on PostgreSQL (a schema of its own, dropped afterwards), with a no-op job kind.
# Usage: scripts/bench-jobs.sh [JOBS] [WORKERS]
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS="${1:-2000}"
WORKERS="${2:-8}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/palisade/target}"
cargo build --release -q -p palisade-jobs --example queue_bench
BIN="$CARGO_TARGET_DIR/release/examples/queue_bench"

"$BIN" sqlite "$JOBS" "$WORKERS"

source scripts/lib/postgres.sh
ensure_postgres
SCHEMA="bench_jobs_$$"
psql "$PALISADE_TEST_DATABASE_URL" -qc "CREATE SCHEMA $SCHEMA" >/dev/null
trap 'psql "$PALISADE_TEST_DATABASE_URL" -qc "DROP SCHEMA $SCHEMA CASCADE" >/dev/null' EXIT
"$BIN" "$PALISADE_TEST_DATABASE_URL?options=-c%20search_path%3D$SCHEMA" "$JOBS" "$WORKERS"
