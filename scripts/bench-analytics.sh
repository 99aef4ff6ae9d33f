#!/usr/bin/env bash
# Analytics latency on a store with 10M events, SQLite then PostgreSQL: generates the
# data in SQL (timed), rolls it up (timed), times every analytics query 30 times
# (p50/p99), checks the 30-day total against count(*), measures ingest with and without
# the roll-up beside it, then deletes everything it generated (the disk is limited).
# Usage: scripts/bench-analytics.sh [EVENTS] [sqlite|postgres|both]
#   PostgreSQL: PALISADE_TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test),
#   schema bench_analytics. SQLite file: $PALISADE_BENCH_DIR/analytics.db (/tmp/palisade-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS="${1:-10000000}"
WHICH="${2:-both}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/palisade/target}"
WORK="${PALISADE_BENCH_DIR:-/tmp/palisade-bench}"
mkdir -p "$WORK"
cargo build --release -q -p palisade-analytics --example analytics_bench
BIN="$CARGO_TARGET_DIR/release/examples/analytics_bench"
trap 'rm -f "$WORK"/analytics.db "$WORK"/analytics.db-wal "$WORK"/analytics.db-shm' EXIT
if [ "$WHICH" = sqlite ] || [ "$WHICH" = both ]; then
  "$BIN" sqlite "$EVENTS" "$WORK/analytics.db"
fi
if [ "$WHICH" = postgres ] || [ "$WHICH" = both ]; then
  "$BIN" postgres "$EVENTS"
fi
