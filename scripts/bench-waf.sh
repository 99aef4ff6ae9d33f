#!/usr/bin/env bash
# Cost of inspection, side by side in one run: Palisade's protecting proxy (PL1),
# nginx + ModSecurity v3 + OWASP CRS 3.3.4 (PL1), and plain nginx, each measured with
# shared/peers/bench.sh (wrk on CPU 0, the fronts pinned to CPU 1). Server CPU per
# request is the figure to compare: it holds on a shared machine, req/s does not.
#
# Palisade forwards to the plain nginx front, so its row is reported twice: Palisade
# alone, and Palisade + the nginx behind it (the whole path, an extra hop that
# ModSecurity's row does not pay).
#
#   bash scripts/bench-waf.sh [--duration 20] [--connections 16] [--rate R]
#
# --crs-dir DIR also measures Palisade running the OWASP CRS rule files of DIR itself,
# with the peer's tuning (rule 900250, see tuned_crs_dir): CRS alone (`crs_mode =
# "replace"`, the same rules as the ModSecurity row) and built-in + CRS ("add").
set -euo pipefail
source "$(dirname "$0")/lib/waf-fronts.sh"
OUT="${OUT:-/tmp/palisade-bench}"
args=(--duration 20 --connections 16)
crs_dir=""
while [ $# -gt 0 ]; do
  case $1 in
    --duration|--connections|--rate) args+=("$1" "$2"); shift 2 ;;
    --crs-dir) crs_dir="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT"
[ -n "$crs_dir" ] && crs_dir=$(tuned_crs_dir "$crs_dir" "$OUT/crs-tuned")
build_release
cleanup() {
  stop_palisade palisade-bench
  stop_palisade palisade-crs-bench
  stop_palisade palisade-both-bench
  "$PEERS/modsecurity-crs.sh" stop --port 18281 >/dev/null 2>&1 || true
  "$PEERS/modsecurity-crs.sh" stop --port 18280 >/dev/null 2>&1 || true
}
trap cleanup EXIT
taskset -c 1 "$PEERS/modsecurity-crs.sh" start --plain --port 18280 >&2
taskset -c 1 "$PEERS/modsecurity-crs.sh" start --paranoia 1 --port 18281 --allow-accept-charset >&2
start_palisade palisade-bench 18290 18291 "http://127.0.0.1:18280" 1 1
if [ -n "$crs_dir" ]; then
  PALISADE_DETECTION_EXTRA="crs_dir = \"$crs_dir\"
crs_mode = \"replace\"" start_palisade palisade-crs-bench 18292 18293 "http://127.0.0.1:18280" 1 1
  PALISADE_DETECTION_EXTRA="crs_dir = \"$crs_dir\"
crs_mode = \"add\"" start_palisade palisade-both-bench 18294 18295 "http://127.0.0.1:18280" 1 1
fi
state="${PALISADE_PEERS_DIR:-/tmp/palisade-peers}"
plain_pid=$(cat "$state/plain-18280/nginx.pid")
modsec_pid=$(cat "$state/modsec-pl1-18281/nginx.pid")
pal_pid=$(palisade_pid palisade-bench)
results="$OUT/bench.jsonl"
: > "$results"
"$PEERS/bench.sh" --target 127.0.0.1:18280 --name nginx-plain --cpu 0 --server-pids "$plain_pid" --out "$results" "${args[@]}"
"$PEERS/bench.sh" --target 127.0.0.1:18281 --name modsec-crs-pl1 --cpu 0 --server-pids "$modsec_pid" --out "$results" "${args[@]}"
"$PEERS/bench.sh" --target 127.0.0.1:18290 --name palisade-proxy --cpu 0 --server-pids "$pal_pid" --out "$results" "${args[@]}"
"$PEERS/bench.sh" --target 127.0.0.1:18290 --name palisade-proxy+nginx --cpu 0 --server-pids "$pal_pid $plain_pid" --out "$results" "${args[@]}"
if [ -n "$crs_dir" ]; then
  crs_pid=$(palisade_pid palisade-crs-bench)
  "$PEERS/bench.sh" --target 127.0.0.1:18292 --name palisade-proxy-crs --cpu 0 --server-pids "$crs_pid" --out "$results" "${args[@]}"
  both_pid=$(palisade_pid palisade-both-bench)
  "$PEERS/bench.sh" --target 127.0.0.1:18294 --name palisade-proxy-both --cpu 0 --server-pids "$both_pid" --out "$results" "${args[@]}"
fi
echo "results: $results"
