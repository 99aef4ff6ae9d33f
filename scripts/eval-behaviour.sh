#!/usr/bin/env bash
# Behaviour detection side by side with CrowdSec 1.4.6 (shared/peers/crowdsec.sh, replay
# mode), over the same inputs in one run: the loghub OpenSSH and Linux samples, and a
# generated nginx log with known attacks (tools/gen_behaviour_log.py, ground truth
# alongside). Palisade runs `palisade ingest` (parse → store → signature inspector +
# scenarios) into a fresh SQLite database per input; its threats are read back from it.
#
#   bash scripts/eval-behaviour.sh [--lines 20000] [--seed 7]
# CrowdSec replays nginx at ~150 lines/s here, so the generated log is kept small.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PEERS="${PALISADE_PEERS:-$ROOT/../shared/peers}"
DATA="${PALISADE_DATA:-$ROOT/../shared/data}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/palisade/target}"
BIN="$CARGO_TARGET_DIR/release/palisade"
OUT="${OUT:-/tmp/palisade-behaviour}"
lines=20000 seed=7
while [ $# -gt 0 ]; do
  case $1 in
    --lines) lines=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
rm -rf "$OUT" && mkdir -p "$OUT"
(cd "$ROOT" && cargo build --release --locked -p palisade >&2)
"$PEERS/crowdsec.sh" install >&2
python3 "$ROOT/tools/gen_behaviour_log.py" "$OUT/generated.log" --lines "$lines" --seed "$seed" --truth "$OUT/generated.truth.json" >&2

# name | file | palisade format | crowdsec type
inputs=(
  "openssh|$DATA/loghub/OpenSSH/OpenSSH_2k.log|syslog:2015|syslog"
  "linux|$DATA/loghub/Linux/Linux_2k.log|syslog:2005|syslog"
  "generated-nginx|$OUT/generated.log|combined|nginx"
)
for spec in "${inputs[@]}"; do
  IFS='|' read -r name file format type <<< "$spec"
  echo "== $name: Palisade" >&2
  /usr/bin/time -f '%e %U %S %M' -o "$OUT/$name.palisade.time" \
    "$BIN" --data-dir "$OUT/$name.data" --config /dev/null --log-level warn \
    ingest --quiet --format "$format" --source "$name" "$file" > "$OUT/$name.palisade.txt"
  echo "== $name: CrowdSec" >&2
  "$PEERS/crowdsec.sh" replay --type "$type" "$file" --out "$OUT/$name.crowdsec.jsonl" > /dev/null
done
python3 "$ROOT/tools/behaviour_report.py" "$OUT"
