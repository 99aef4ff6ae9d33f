#!/usr/bin/env bash
# Detection quality through real fronts, side by side in one run: CSIC 2010's test
# split replayed with shared/peers/replay.py through Palisade's protecting proxy and
# through nginx + ModSecurity v3 + OWASP CRS 3.3.4, each at paranoia 1 and 2. Both
# proxy to the same plain nginx upstream. Prints one table; the JSON summaries stay in
# $OUT (default /tmp/palisade-eval).
#
#   bash scripts/eval-waf.sh [--limit N] [--concurrency 16] [--encoding utf-8]
#
# With --crs-dir DIR, Palisade also runs with OWASP CRS rule files loaded as they are
# (`crs_dir`): CRS alone (`palisade-crs`, crs_mode = "replace") and built-in + CRS
# (`palisade-both`, crs_mode = "add"), beside the others in the same run. --corpus FILE
# (repeatable) replays those JSONL files instead of CSIC (e.g. the CRS regression corpus
# from scripts/crs-corpus.py).
set -euo pipefail
source "$(dirname "$0")/lib/waf-fronts.sh"
DATA="${PALISADE_DATA:-$ROOT/../shared/data}/csic2010"
OUT="${OUT:-/tmp/palisade-eval}"
extra=()
crs_dir=""
corpus=()
while [ $# -gt 0 ]; do
  case $1 in
    --limit) extra+=(--limit "$2"); shift 2 ;;
    --concurrency) extra+=(--concurrency "$2"); shift 2 ;;
    --crs-dir) crs_dir="$2"; shift 2 ;;
    --corpus) corpus+=("$2"); shift 2 ;;
    --encoding) extra+=(--encoding "$2"); shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT"
if [ -n "$crs_dir" ]; then
  # The ModSecurity peer runs with --allow-accept-charset (CSIC sends Accept-Charset,
  # which stock CRS 3.3.4 scores 5 by rule 920450): the same rule 900250 setting here,
  # ahead of the CRS files loaded as they are.
  crs_dir=$(tuned_crs_dir "$crs_dir" "$OUT/crs-tuned")
fi
build_release
cleanup() {
  for pl in 1 2; do stop_palisade "palisade-pl$pl"; "$PEERS/modsecurity-crs.sh" stop --port "1818$pl" >/dev/null 2>&1 || true; done
  for pl in 1 2; do stop_palisade "palisade-crs-pl$pl"; stop_palisade "palisade-both-pl$pl"; done
  "$PEERS/modsecurity-crs.sh" stop --port 18180 >/dev/null 2>&1 || true
}
trap cleanup EXIT
"$PEERS/modsecurity-crs.sh" start --plain --port 18180 >&2
for pl in 1 2; do
  start_palisade "palisade-pl$pl" "1819$pl" "1829$pl" "http://127.0.0.1:18180" "$pl"
  "$PEERS/modsecurity-crs.sh" start --paranoia "$pl" --port "1818$pl" --allow-accept-charset >&2
  if [ -n "$crs_dir" ]; then
    # Same tuning as the ModSecurity peer (--allow-accept-charset: rule 900250).
    PALISADE_DETECTION_EXTRA="crs_dir = \"$crs_dir\"
crs_mode = \"replace\"" start_palisade "palisade-crs-pl$pl" "1839$pl" "1849$pl" "http://127.0.0.1:18180" "$pl"
    PALISADE_DETECTION_EXTRA="crs_dir = \"$crs_dir\"
crs_mode = \"add\"" start_palisade "palisade-both-pl$pl" "1859$pl" "1869$pl" "http://127.0.0.1:18180" "$pl"
  fi
done
files=("$DATA/normalTrafficTest.jsonl.gz" "$DATA/anomalousTrafficTest.jsonl.gz")
[ ${#corpus[@]} -gt 0 ] && files=("${corpus[@]}")
fronts=(palisade modsec)
[ -n "$crs_dir" ] && fronts=(palisade palisade-crs palisade-both modsec)
for pl in 1 2; do
  for front in "${fronts[@]}"; do
    case $front in
      palisade) port="1819$pl" ;;
      palisade-crs) port="1839$pl" ;;
      palisade-both) port="1859$pl" ;;
      *) port="1818$pl" ;;
    esac
    echo "replaying through $front PL$pl (127.0.0.1:$port)" >&2
    python3 "$PEERS/replay.py" --target "127.0.0.1:$port" "${files[@]}" "${extra[@]}" \
      --name "$front-pl$pl" --summary "$OUT/$front-pl$pl.json" --csv "$OUT/$front-pl$pl.csv" >/dev/null
  done
done
python3 - "$OUT" "${#fronts[@]}" "${fronts[@]}" "${files[@]}" <<'PY'
import csv, gzip, json, sys, os
from collections import defaultdict
out, n = sys.argv[1], int(sys.argv[2])
fronts, files = sys.argv[3:3 + n], sys.argv[3 + n:]
print(f"{'front':<20}{'TPR':>8}{'FPR':>9}{'precision':>11}{'F1':>8}{'TP':>7}{'FP':>6}{'errors':>8}")
for pl in (1, 2):
    for front in fronts:
        s = json.load(open(os.path.join(out, f"{front}-pl{pl}.json")))
        # A rate is null when the corpus (or a --limit prefix of it) has no request of
        # that label: printed as "-".
        r = {k: ("-" if s.get(k) is None else f"{s[k]:.4f}") for k in ("tpr", "fpr", "precision", "f1")}
        print(f"{front+' PL'+str(pl):<20}{r['tpr']:>8}{r['fpr']:>9}{r['precision']:>11}{r['f1']:>8}{s['tp']:>7}{s['fp']:>6}{s['errors']:>8}")
# Per category and per part (corpus fields `category`/`part`), in replay.py's order.
labels = []
for path in files:
    with (gzip.open if path.endswith(".gz") else open)(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                labels.append((str(r.get("label") or ""), r.get("category") or "-", r.get("part") or "-"))
if any(c != "-" or p != "-" for _, c, p in labels):
    cols = [(front, pl) for pl in (1, 2) for front in fronts]
    for key, name in ((1, "category"), (2, "part")):
        rows = defaultdict(lambda: defaultdict(int))
        for front, pl in cols:
            with open(os.path.join(out, f"{front}-pl{pl}.csv")) as f:
                for row in csv.DictReader(f):
                    lab = labels[int(row["idx"])]
                    k = (lab[0], lab[key])
                    rows[k][(front, pl)] += row["blocked"] in ("1", "True", "true")
                    rows[k]["n"] = rows[k].get("n", 0) + (1 if (front, pl) == cols[0] else 0)
        print(f"\nblocked per {name} (attack: detection, normal: false positives)")
        print(f"{'label':<8}{name:<14}{'n':>5}" + "".join(f"{f'{f} PL{p}':>17}" for f, p in cols))
        for (lab, k), d in sorted(rows.items()):
            print(f"{lab:<8}{k:<14}{d['n']:>5}" + "".join(f"{d[c] / max(d['n'], 1):>17.3f}" for c in cols))
PY
