#!/usr/bin/env bash
# Vulnerability engine benchmark: import of the whole recorded NVD data set (145
# records, 3 API 2.0 pages) and matching 1,000 assets x 50 packages, on SQLite and on
# PostgreSQL; then the scan of the sample SBOMs and package lists (what a comparison
# with another scanner would run on).
# Usage: scripts/bench-vuln.sh [ASSETS] [PACKAGES]
#   PALISADE_TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test) for PostgreSQL;
#   PALISADE_SKIP_POSTGRES=1 to measure SQLite only.
set -euo pipefail
cd "$(dirname "$0")/.."
ASSETS="${1:-1000}"
PACKAGES="${2:-50}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/palisade/target}"
PG="${PALISADE_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
cargo build --release -q -p palisade-vuln --example vuln_bench --example scan
ARGS=(--assets "$ASSETS" --packages "$PACKAGES")
[ "${PALISADE_SKIP_POSTGRES:-0}" = 1 ] || ARGS+=(--pg "$PG")
"$CARGO_TARGET_DIR/release/examples/vuln_bench" "${ARGS[@]}"
echo "scan of the sample inventories (findings per file):"
/usr/bin/time -f "scan: %e s wall, %M KB peak RSS" \
  "$CARGO_TARGET_DIR/release/examples/scan" crates/vuln/tests/data/nvd crates/vuln/tests/data/sbom/* \
  | grep '^#'
