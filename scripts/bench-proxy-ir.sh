#!/usr/bin/env bash
# Instructions per request of the protecting proxy (issue 16, the proxy row), counted by
# callgrind: a figure that does not move with the machine's load, unlike CPU time under
# wrk (scripts/bench-proxy-cost.sh), and one that says where the instructions go.
#
# One release binary (and, with --before BIN, a second one, one after the other) runs as
# Palisade with its shipped defaults (PL1, block mode, events stored, baselines on) in
# front of one plain nginx upstream (shared/peers/modsecurity-crs.sh --plain), under
#   valgrind --tool=callgrind --instr-atstart=no
# so start-up runs uninstrumented. Per instance: a warm-up (--warmup requests of each
# benign case, 20 attacks, uninstrumented: the baselines pass their warm-up and the
# engine's memo holds the parts), instrumentation on, 5 requests of each case, then for
# each case `callgrind_control --zero`, --requests requests over one keep-alive
# connection (scripts/lib/send-requests.py: the get, post and attack shapes of
# shared/peers/bench.sh), a pause of --settle seconds (the events of those requests are
# stored by the proxy's flusher within 1 s; the pause lets that land in this case's
# count), `callgrind_control --dump`. Reported per request:
#   process      every instruction of the process over the case, storage of the
#                requests' events and threats included (the figure the aim is judged
#                on; it also holds the clock-driven background work, reported on its
#                own as `idle`, per second, so it can be told apart).
#   connections  inclusive instructions of hyper's `Dispatcher::poll_catch`: the client
#                connection and the upstream connection tasks (comparable with
#                scripts/bench-ml-cost-ir.sh).
#   judge        inclusive instructions of `Guard::judge` (the decision).
#   request path process - judge - idle share: what the proxy itself costs.
#
#   bash scripts/bench-proxy-ir.sh [--requests 200] [--warmup 450] [--before BIN]
#        [--cases get,post,attack] [--settle 3] [--port-base 18900] [--out DIR]
#
# Ports: --port-base P uses P for the upstream and P+2.. for the instances (two each).
# Results: DIR/ir.jsonl, DIR/summary.txt, and DIR/NAME/callgrind.out.* (open with
# callgrind_annotate --inclusive=yes). Needs a release build (PALISADE_BIN), valgrind,
# nginx (through shared/peers/modsecurity-crs.sh), curl, python3.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
source "$HERE/lib/waf-fronts.sh"
BIN="${PALISADE_BIN:-$BIN}"
OUT="${OUT:-/tmp/palisade-bench-proxy-ir}"
requests=200 warmup=450 before="" cases="get,post,attack" settle=3
port_base="${PALISADE_BENCH_PORT_BASE:-18900}"
while [ $# -gt 0 ]; do
  case $1 in
    --requests) requests=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --before) before=$2; shift 2 ;;
    --cases) cases=$2; shift 2 ;;
    --settle) settle=$2; shift 2 ;;
    --port-base) port_base=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
source "$HERE/lib/callgrind-instances.sh"
check_callgrind_tools "$before"
STATE="${PALISADE_FRONTS_DIR:-/tmp/palisade-fronts-proxy-ir}"
export PALISADE_PEERS_DIR="${PALISADE_PEERS_DIR:-$OUT/peers}"
SEND="$HERE/lib/send-requests.py"
mkdir -p "$OUT"
UP=$port_base
INSTANCES=(after)
[ -n "$before" ] && INSTANCES=(before after)
IFS=, read -r -a CASES <<<"$cases"
bin_of() { case $1 in before) echo "$before" ;; *) echo "$BIN" ;; esac; }
expect_of() { case $1 in attack) echo 403 ;; *) echo 200 ;; esac; }

start_upstream

# measure NAME PID CASE PORT: zero, send, settle, dump; appends one JSON line.
measure() {
  local name=$1 pid=$2 case=$3 port=$4
  callgrind_control --zero "$pid" >/dev/null
  local t0 t1
  t0=$(date +%s.%N)
  python3 "$SEND" --port "$port" --case "$case" --count "$requests" --expect "$(expect_of "$case")" >/dev/null
  sleep "$settle"
  t1=$(date +%s.%N)
  dump "$name" "$pid" "$case"
  python3 "$HERE/lib/callgrind-figures.py" "$OUT/$name/callgrind.out.$case" "$requests" \
    name="$name" case="$case" seconds="$(python3 -c "print(round($t1 - $t0, 2))")" | tee -a "$OUT/ir.jsonl"
}

: > "$OUT/ir.jsonl"
uptime | tee "$OUT/uptime-start.txt"
i=0
for n in "${INSTANCES[@]}"; do
  proxy=$((port_base + 2 + 2 * i)) api=$((port_base + 3 + 2 * i))
  i=$((i + 1))
  echo "== $n ($(bin_of "$n")) proxy :$proxy api :$api" >&2
  pid=$(start_under_callgrind "$n" "$proxy" "$api")
  running=$pid
  for c in "${CASES[@]}"; do
    count=$warmup
    [ "$c" = attack ] && count=20
    python3 "$SEND" --port "$proxy" --case "$c" --count "$count" --expect "$(expect_of "$c")" >/dev/null
  done
  callgrind_control --instr=on "$pid" >/dev/null
  for c in "${CASES[@]}"; do
    python3 "$SEND" --port "$proxy" --case "$c" --count 5 >/dev/null
  done
  sleep "$settle"
  callgrind_control --zero "$pid" >/dev/null
  sleep 2
  dump "$n" "$pid" idle
  awk -v n="$n" '/^(totals|summary):/ {t=$2} END {printf "{\"name\": \"%s\", \"case\": \"idle\", \"ir_per_s\": %d}\n", n, t/2}' \
    "$OUT/$n/callgrind.out.idle" | tee -a "$OUT/ir.jsonl"
  for c in "${CASES[@]}"; do
    measure "$n" "$pid" "$c" "$proxy"
  done
  kill "$pid"
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  running=""
done
uptime | tee "$OUT/uptime-end.txt"

python3 - "$OUT/ir.jsonl" <<'PY' | tee "$OUT/summary.txt"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
idle = {r["name"]: r["ir_per_s"] for r in rows if r["case"] == "idle"}
fmt = lambda x: "-" if x is None else format(round(x), ",")
print(f'{"instance":<8} {"case":<7} {"process":>10} {"connections":>12} {"judge":>9} {"request path":>13}   (Ir per request)')
by = {}
for r in rows:
    if r["case"] == "idle":
        print(f'{r["name"]:<8} idle    (background {r["ir_per_s"]:,} Ir/s)')
        continue
    bg = idle.get(r["name"], 0) * r["seconds"] / r["requests"]
    path = r["ir_per_req"] - (r["judge_ir_per_req"] or 0) - bg
    by[(r["name"], r["case"])] = (r, path)
    print(f'{r["name"]:<8} {r["case"]:<7} {fmt(r["ir_per_req"]):>10} {fmt(r["conn_ir_per_req"]):>12} {fmt(r["judge_ir_per_req"]):>9} {fmt(path):>13}')
print()
for (name, case), (r, path) in by.items():
    if name != "after" or ("before", case) not in by:
        continue
    b, bpath = by[("before", case)]
    ch = lambda x, y: "-" if not (x and y) else f"{(x - y) / y:+.1%}"
    print(f'after vs before, {case:<7} process {ch(r["ir_per_req"], b["ir_per_req"]):>7}  connections {ch(r["conn_ir_per_req"], b["conn_ir_per_req"]):>7}  request path {ch(path, bpath):>7}')
PY
echo "results: $OUT/ir.jsonl, $OUT/summary.txt" >&2
