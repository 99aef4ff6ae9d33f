#!/usr/bin/env bash
# Instructions the signature engine executes per stored log line (callgrind: the same
# count on a loaded or a quiet machine, so before/after pairs need no quiet machine).
# Counts one pass of `crates/detect/examples/engine_lines.rs` over the lines, after a
# warm-up pass that fills the per-thread memo as a long ingest does.
#
# Usage: scripts/callgrind-engine.sh [LOG] [benign|all] [EXAMPLE_BINARY]
#   LOG             combined-format access log (default: the shared Elastic sample)
#   EXAMPLE_BINARY  a built engine_lines (default: build it, release profile)
# Prints: lines, instructions counted, instructions per line.
set -euo pipefail
cd "$(dirname "$0")/.."
LOG="${1:-../shared/data/access-logs/elastic_apache_logs.log}"
MODE="${2:-benign}"
BIN="${3:-}"
if [ -z "$BIN" ]; then
  cargo build --release -q -p palisade-detect --example engine_lines
  BIN="${CARGO_TARGET_DIR:-target}/release/examples/engine_lines"
fi
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.out" \
  --toggle-collect='*measured_pass*' "$BIN" "$LOG" "$MODE" >"$OUT/stdout" 2>"$OUT/stderr" \
  || { cat "$OUT/stderr"; exit 1; }
lines=$(awk '/^lines /{print $2}' "$OUT/stdout")
ir=$(awk -F'[ :]+' '/^summary:/{print $2}' "$OUT/cg.out")
python3 -c "import sys; l, i = int(sys.argv[1]), int(sys.argv[2]); print(f'lines {l}  instructions {i:,}  per line {i / l:,.0f}')" "$lines" "$ir"
