#!/usr/bin/env bash
# Evaluates the flow model (issue 15) on the labelled captures of ../shared/data/pcaps:
# per capture and pooled leave-one-capture-out precision / recall / FPR (each capture
# judged by a model trained on all the others), the false positives on the benign
# captures, the committed default model on every capture (it trained on them: not
# held out), the online anomaly score, and the rule scenarios (network-*) on the same
# captures. Prints Markdown (docs/BENCHMARKS.md "Flow model (stop 23)" keeps a run).
#
# usage: scripts/eval-flow-model.sh [PCAP_DIR] [extra eval-flows flags…]
#   PALISADE_BIN=path   use this binary instead of building one
set -euo pipefail
cd "$(dirname "$0")/.."
PCAPS=${1:-../shared/data/pcaps}
shift || true
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
if [ -z "${PALISADE_BIN:-}" ]; then
  cargo build -q -p palisade
  PALISADE_BIN="$CARGO_TARGET_DIR/debug/palisade"
fi
"$PALISADE_BIN" eval-flows --labels crates/models/flow-labels.txt --data "$PCAPS" \
  --model crates/models/default/flow.pmodel "$@"
