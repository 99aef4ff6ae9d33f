#!/usr/bin/env bash
# The protecting proxy's cost per request beside its peers, all in one run (stop 23):
# plain nginx, nginx + ModSecurity v3 + OWASP CRS 3.3.4 PL1, and Palisade's proxy
# (PL1, block mode, default settings: events stored, baselines on), optionally a
# second Palisade binary (BIN_BEFORE, e.g. the start commit's) in the same run.
# Each front is pinned to CPU 1 and measured with shared/peers/bench.sh (wrk on CPU 0,
# 16 keep-alive connections): server CPU ms per request from /proc (the figure that
# holds on a shared machine), req/s at saturation, then latency at a paced rate.
#
#   BIN=.../release/palisade [BIN_BEFORE=/tmp/palisade-before] \
#     bash scripts/bench-proxy-cost.sh [--duration 15] [--rate 5000] [--cases get,post]
#       [--port-base 19480]
#
# Ports: --port-base P: plain nginx on P, ModSecurity on P+1, Palisade's proxy and API
# on P+10 and P+11 (the BIN_BEFORE one on P+12 and P+13).
# Palisade forwards to the plain nginx front; its rows count Palisade's own CPU only.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "$ROOT/scripts/lib/proxy-config.sh"
PEERS="${PALISADE_PEERS:-$ROOT/../shared/peers}"
BIN="${BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/palisade/target}/release/palisade}"
BIN_BEFORE="${BIN_BEFORE:-}"
OUT="${OUT:-/tmp/palisade-bench-proxy-cost}"
export PALISADE_PEERS_DIR="${PALISADE_PEERS_DIR:-$OUT/peers}"
duration=15 rate=5000 cases=get,post port_base=19480
while [ $# -gt 0 ]; do
  case $1 in
    --duration) duration=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --cases) cases=$2; shift 2 ;;
    --port-base) port_base=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT"
PLAIN=$port_base MODSEC=$((port_base + 1))
P_AFTER=$((port_base + 10)) P_BEFORE=$((port_base + 12))
pids=()
start_palisade() { # NAME BIN PROXY_PORT API_PORT
  local dir="$OUT/$1"
  rm -rf "$dir" && mkdir -p "$dir"
  write_proxy_config "$dir/palisade.toml" "$1" "$4" "$3" "http://127.0.0.1:$PLAIN"
  PALISADE_ADMIN_PASSWORD="bench-Admin-Password-42" taskset -c 1 "$2" --config "$dir/palisade.toml" serve > "$dir/out.log" 2>&1 &
  echo $! > "$dir/pid"
  pids+=("$!")
  for _ in $(seq 1 600); do
    curl -s -o /dev/null "http://127.0.0.1:$3/" 2>/dev/null && return 0
    sleep 0.2
  done
  cat "$dir/out.log" >&2
  return 1
}
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  "$PEERS/modsecurity-crs.sh" stop --port "$MODSEC" >/dev/null 2>&1 || true
  "$PEERS/modsecurity-crs.sh" stop --port "$PLAIN" >/dev/null 2>&1 || true
}
trap cleanup EXIT
taskset -c 1 "$PEERS/modsecurity-crs.sh" start --plain --port "$PLAIN" >&2
taskset -c 1 "$PEERS/modsecurity-crs.sh" start --paranoia 1 --port "$MODSEC" --allow-accept-charset >&2
start_palisade palisade-after "$BIN" "$P_AFTER" $((P_AFTER + 1))
[ -n "$BIN_BEFORE" ] && start_palisade palisade-before "$BIN_BEFORE" "$P_BEFORE" $((P_BEFORE + 1))
plain_pid=$(cat "$PALISADE_PEERS_DIR/plain-$PLAIN/nginx.pid")
modsec_pid=$(cat "$PALISADE_PEERS_DIR/modsec-pl1-$MODSEC/nginx.pid")
results="$OUT/bench.jsonl"
: > "$results"
uptime
b() { "$PEERS/bench.sh" --cpu 0 --duration "$duration" --cases "$cases" --out "$results" "$@"; }
b --target 127.0.0.1:$PLAIN --name nginx-plain --server-pids "$plain_pid"
b --target 127.0.0.1:$MODSEC --name modsec-crs-pl1 --server-pids "$modsec_pid"
b --target 127.0.0.1:$P_AFTER --name palisade --server-pids "$(cat "$OUT/palisade-after/pid")"
[ -n "$BIN_BEFORE" ] && b --target 127.0.0.1:$P_BEFORE --name palisade-before --server-pids "$(cat "$OUT/palisade-before/pid")"
# Latency at a paced rate (closed loop, exponential think times; see bench.sh).
b --target 127.0.0.1:$PLAIN --name nginx-plain-paced --server-pids "$plain_pid" --rate "$rate" --cases get
b --target 127.0.0.1:$P_AFTER --name palisade-paced --server-pids "$(cat "$OUT/palisade-after/pid")" --rate "$rate" --cases get
[ -n "$BIN_BEFORE" ] && b --target 127.0.0.1:$P_BEFORE --name palisade-before-paced --server-pids "$(cat "$OUT/palisade-before/pid")" --rate "$rate" --cases get
uptime
# Peak resident memory of each Palisade instance over the whole run.
for n in palisade-after palisade-before; do
  [ -f "$OUT/$n/pid" ] || continue
  echo "$n peak RSS: $(awk '/^VmHWM/ {print $2, $3}' "/proc/$(cat "$OUT/$n/pid")/status" 2>/dev/null)"
done
echo "results: $results"
