#!/usr/bin/env bash
# CSIC 2010 protocol (b) with the request model retrained on the training side, for
# several seeds (issue 15). Per seed:
#   1. split anomalousTrafficTest so that no payload value is on both sides
#      (`palisade eval --protocol b --write-train-side`; normalTrafficTraining is the
#      reference that tells payloads from filler, see commands/eval_split.rs);
#   2. train a model on normalTrafficTraining + the training-side attacks (+ the
#      generated attacks and ordinary requests `palisade train` adds by default), with
#      `--calibrate`: the operating point is chosen on a validation part of that
#      training data (20%, attacks grouped by payload value) at a validation FPR of at
#      most TARGET_FPR (default 0.0025), and stored in the model file;
#   3. evaluate rules, model, baselines (learnt on normalTrafficTraining) and fused on
#      the test side (the other attacks + normalTrafficTest): "fused" at the old fixed
#      point (model_weight 3 at p >= 0.9) and "fused, calibrated" at the stored point.
# Nothing is tuned on the test side: the calibrated point comes from the training side.
#
#   bash scripts/eval-ml-protocol-b.sh [SEED...]     (default: 1 2 3)
#
# PALISADE_BIN (default: the release binary), OUT (default /tmp/palisade-ml-b).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DATA="${CSIC:-$ROOT/../shared/data/csic2010}"
BIN="${PALISADE_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/palisade/target}/release/palisade}"
OUT="${OUT:-/tmp/palisade-ml-b}"
WEIGHT="${MODEL_WEIGHT:-3}"
TARGET_FPR="${TARGET_FPR:-0.0025}"
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(1 2 3)
mkdir -p "$OUT"
train="$DATA/normalTrafficTraining.jsonl.gz"
test_files=("$DATA/anomalousTrafficTest.jsonl.gz" "$DATA/normalTrafficTest.jsonl.gz")
for seed in "${seeds[@]}"; do
  side="$OUT/train-side-$seed.jsonl"
  model="$OUT/model-$seed.pmodel"
  echo "== seed $seed: split" >&2
  # The same reference as step 3 (--baselines-train), so the split is the same.
  "$BIN" eval "${test_files[@]}" --paranoia 1 --protocol b --seed "$seed" \
    --baselines-train "$train" --write-train-side "$side" | tee "$OUT/split-$seed.txt"
  echo "== seed $seed: train" >&2
  "$BIN" train --data "$train" "$side" --out "$model" --seed "$seed" --buckets-log2 16 \
    --calibrate --target-fpr "$TARGET_FPR" 2>&1 | tail -n 12 | tee "$OUT/train-$seed.txt"
  echo "== seed $seed: evaluate" >&2
  "$BIN" eval "${test_files[@]}" --paranoia 1 --protocol b --seed "$seed" \
    --baselines-train "$train" --model "$model" --model-weight "$WEIGHT" \
    --json "$OUT/eval-$seed.json" | tee "$OUT/eval-$seed.txt"
done
