#!/usr/bin/env bash
# Detection quality through real fronts, side by side in one run: CSIC 2010's test
# split replayed with shared/peers/replay.py through Palisade's protecting proxy and
# through nginx + ModSecurity v3 + OWASP CRS 3.3.4, each at paranoia 1 and 2. Both
# proxy to the same plain nginx upstream. Prints one table; the JSON summaries stay in
# $OUT (default /tmp/palisade-eval).
#
#   bash scripts/eval-waf.sh [--limit N] [--concurrency 16]
set -euo pipefail
source "$(dirname "$0")/lib/waf-fronts.sh"
DATA="${PALISADE_DATA:-$ROOT/../shared/data}/csic2010"
OUT="${OUT:-/tmp/palisade-eval}"
extra=()
while [ $# -gt 0 ]; do
  case $1 in
    --limit) extra+=(--limit "$2"); shift 2 ;;
    --concurrency) extra+=(--concurrency "$2"); shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT"
build_release
cleanup() {
  for pl in 1 2; do stop_palisade "palisade-pl$pl"; "$PEERS/modsecurity-crs.sh" stop --port "1818$pl" >/dev/null 2>&1 || true; done
  "$PEERS/modsecurity-crs.sh" stop --port 18180 >/dev/null 2>&1 || true
}
trap cleanup EXIT
"$PEERS/modsecurity-crs.sh" start --plain --port 18180 >&2
for pl in 1 2; do
  start_palisade "palisade-pl$pl" "1819$pl" "1829$pl" "http://127.0.0.1:18180" "$pl"
  "$PEERS/modsecurity-crs.sh" start --paranoia "$pl" --port "1818$pl" --allow-accept-charset >&2
done
files=("$DATA/normalTrafficTest.jsonl.gz" "$DATA/anomalousTrafficTest.jsonl.gz")
for pl in 1 2; do
  for front in palisade modsec; do
    port=$([ "$front" = palisade ] && echo "1819$pl" || echo "1818$pl")
    echo "replaying through $front PL$pl (127.0.0.1:$port)" >&2
    python3 "$PEERS/replay.py" --target "127.0.0.1:$port" "${files[@]}" "${extra[@]}" \
      --name "$front-pl$pl" --summary "$OUT/$front-pl$pl.json" >/dev/null
  done
done
python3 - "$OUT" <<'PY'
import json, sys, os
out = sys.argv[1]
print(f"{'front':<16}{'TPR':>8}{'FPR':>9}{'precision':>11}{'F1':>8}{'TP':>7}{'FP':>6}{'errors':>8}")
for pl in (1, 2):
    for front in ("palisade", "modsec"):
        s = json.load(open(os.path.join(out, f"{front}-pl{pl}.json")))
        print(f"{front+' PL'+str(pl):<16}{s['tpr']:>8.4f}{s['fpr']:>9.4f}{s['precision']:>11.4f}{s['f1']:>8.4f}{s['tp']:>7}{s['fp']:>6}{s['errors']:>8}")
PY
