#!/usr/bin/env bash
# End-to-end cost of the learnt parts (issue 15): the same release binary, in the same
# run, as three Palisade instances in front of one plain nginx upstream:
#
#   rules      [models] enabled = false, [baselines] enabled = false  (rules alone)
#   default    the shipped defaults: the request model advisory (consulted only when the
#              rules found something), per-endpoint baselines on (judge + learn)
#   ml         model_weight = 3 (every request reaches the model) + baselines
#
# Each is measured through its protecting proxy with shared/peers/bench.sh (wrk pinned
# to CPU 0, cases get/post/attack) and through /api/v1/check with wrk (the same benign
# GET and SQLi as X-Original-URI, an API key of scope check). The figure compared is
# the Palisade process's CPU per request (utime+stime from /proc over the run), which
# holds on a shared machine where req/s does not. The fronts run on CPU 1.
#
#   bash scripts/bench-ml-cost.sh [--duration 15] [--connections 16] [--before BIN] [--no-full] [--sampled]
#        [--port-base P]
#
# --port-base P (env PALISADE_BENCH_PORT_BASE, default 18380): the upstream listens on P
# and the instances on P+10 .. P+21 (two ports each), so that runs beside other
# benchmarks can keep to their own range.
# --before BIN: also runs `rules` and `default` from another build (e.g. the commit
# before a change), as before-rules and before-default, in the same run; --no-full skips
# the `ml` instance; --sampled adds `sampled`, the defaults with `[baselines] learn_every = 8`.
#
# Needs: a release build (PALISADE_BIN, default $CARGO_TARGET_DIR/release/palisade),
# wrk, curl, and shared/peers/modsecurity-crs.sh (plain nginx upstream).
set -euo pipefail
source "$(dirname "$0")/lib/waf-fronts.sh"
BIN="${PALISADE_BIN:-$BIN}"
OUT="${OUT:-/tmp/palisade-bench-ml}"
duration=15 conns=16 before="" full=1 sampled=0 port_base="${PALISADE_BENCH_PORT_BASE:-18380}"
while [ $# -gt 0 ]; do
  case $1 in
    --duration) duration=$2; shift 2 ;;
    --connections) conns=$2; shift 2 ;;
    --before) before=$2; shift 2 ;;
    --no-full) full=0; shift ;;
    --sampled) sampled=1; shift ;;
    --port-base) port_base=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ -x "$BIN" ] || { echo "no release binary at $BIN (cargo build --release -p palisade)" >&2; exit 1; }
[ -z "$before" ] || [ -x "$before" ] || { echo "no binary at $before (--before)" >&2; exit 1; }
mkdir -p "$OUT"
UP=$port_base
INSTANCES=(ml-rules ml-default)
[ "$sampled" = 1 ] && INSTANCES+=(ml-sampled)
[ -n "$before" ] && INSTANCES+=(ml-before-default ml-before-rules)
[ "$full" = 1 ] && INSTANCES+=(ml-full)
cleanup() {
  for n in ml-rules ml-default ml-full ml-sampled ml-before-rules ml-before-default; do stop_palisade "$n"; done
  "$PEERS/modsecurity-crs.sh" stop --port $UP >/dev/null 2>&1 || true
}
trap cleanup EXIT
taskset -c 1 "$PEERS/modsecurity-crs.sh" start --plain --port $UP >&2

declare -A EXTRA=(
  [ml-rules]=$'\n[models]\nenabled = false\n[baselines]\nenabled = false\n'
  [ml-default]=$'\n'
  [ml-full]=$'\n[models]\nmodel_weight = 3\n'
)
EXTRA[ml-sampled]=$'\n[baselines]\nlearn_every = 8\n'
EXTRA[ml-before-rules]=${EXTRA[ml-rules]}
EXTRA[ml-before-default]=${EXTRA[ml-default]}
p=$port_base
declare -A PORTS=([ml-rules]="$((p + 10)) $((p + 11))" [ml-default]="$((p + 12)) $((p + 13))"
  [ml-full]="$((p + 14)) $((p + 15))" [ml-before-rules]="$((p + 16)) $((p + 17))"
  [ml-before-default]="$((p + 18)) $((p + 19))" [ml-sampled]="$((p + 20)) $((p + 21))")
AFTER_BIN=$BIN
bin_of() { case $1 in ml-before-*) echo "$before" ;; *) echo "$AFTER_BIN" ;; esac; }
for n in "${INSTANCES[@]}"; do
  read -r proxy api <<<"${PORTS[$n]}"
  BIN=$(bin_of "$n") PALISADE_DETECTION_EXTRA="${EXTRA[$n]}" start_palisade "$n" "$proxy" "$api" "http://127.0.0.1:$UP" 1 1
done

GET_PATH='/tienda1/publico/anadir.jsp?id=3&nombre=Vino+Rioja&precio=100&cantidad=55&B1=A%F1adir+al+carrito'
ATTACK_PATH="/tienda1/publico/anadir.jsp?id=3&nombre=Vino+Rioja&precio=100&cantidad=1%27%20OR%20%271%27%3D%271&B1=A%F1adir+al+carrito"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# check_case NAME CASE URI API_PORT KEY PID: wrk on /api/v1/check, CPU per request.
check_case() {
  local name=$1 case=$2 uri=$3 port=$4 key=$5 pid=$6 before after out reqs
  curl -s -o /dev/null -w "  $name check/$case: HTTP %{http_code}\n" \
    -H "X-Api-Key: $key" -H "X-Original-URI: $uri" -H "X-Real-IP: 198.51.100.1" \
    "http://127.0.0.1:$port/api/v1/check" >&2
  before=$(cpu_ticks "$pid")
  out=$(taskset -c 0 wrk -t1 -c"$conns" -d"${duration}s" \
    -H "X-Api-Key: $key" -H "X-Original-URI: $uri" -H "X-Real-IP: 198.51.100.1" \
    "http://127.0.0.1:$port/api/v1/check")
  after=$(cpu_ticks "$pid")
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  python3 - "$name" "$case" "$reqs" "$((after - before))" "$(getconf CLK_TCK)" "$duration" <<'PY' | tee -a "$OUT/bench.jsonl"
import json, sys
name, case, reqs, ticks, hz, dur = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
print(json.dumps({"name": name + "-check", "case": case, "requests": reqs, "rps": round(reqs / dur, 1),
                  "server_cpu_ms_per_req": round(ticks * 1000 / hz / max(reqs, 1), 4)}))
PY
}

: > "$OUT/bench.jsonl"
uptime | tee "$OUT/uptime-start.txt"
for n in "${INSTANCES[@]}"; do
  read -r proxy api <<<"${PORTS[$n]}"
  pid=$(palisade_pid "$n")
  "$PEERS/bench.sh" --target "127.0.0.1:$proxy" --name "$n-proxy" --cpu 0 --server-pids "$pid" \
    --out "$OUT/bench.jsonl" --duration "$duration" --connections "$conns"
  key=$("$(bin_of "$n")" --config "$STATE/$n/palisade.toml" apikey create --name "bench-$n" --scope check --quiet)
  check_case "$n" get "$GET_PATH" "$api" "$key" "$pid"
  check_case "$n" attack "$ATTACK_PATH" "$api" "$key" "$pid"
done
uptime | tee "$OUT/uptime-end.txt"
echo "results: $OUT/bench.jsonl" >&2
