#!/usr/bin/env bash
# User and system CPU per request of the protecting proxy under wrk, for several
# binaries in turn, ROUNDS times (before, after, before, after, …): a same-run,
# alternating comparison whose user-space part resolves changes of ~5% on a loaded
# machine where scripts/bench-proxy-cost.sh's single figure moves ±10% between runs.
# Each binary serves in front of one plain nginx (shared/peers/modsecurity-crs.sh
# --plain) with the shipped defaults (PL1, block mode, events stored, baselines on),
# pinned to CPU 1, wrk (1 thread, 16 keep-alive connections, the benign GET of
# shared/peers/bench.sh) on CPU 0: 3 s of warm-up, then the process's utime and stime
# from /proc over an 8 s run, divided by the requests wrk completed.
#
#   ROUNDS=3 bash scripts/bench-proxy-cpu-split.sh [--port-base 18810] BIN...
#
# Ports: P (proxy), P+1 (API), P+2 (the nginx upstream). Needs wrk, taskset, curl, nginx.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
source "$HERE/lib/proxy-config.sh"
PEERS="${PALISADE_PEERS:-$HERE/../../shared/peers}"
port_base=18810
if [ "${1:-}" = --port-base ]; then port_base=$2; shift 2; fi
[ $# -gt 0 ] || { echo "usage: $0 [--port-base P] BIN..." >&2; exit 2; }
WORK="${OUT:-/tmp/palisade-bench-proxy-cpu-split}"
mkdir -p "$WORK"
export PALISADE_PEERS_DIR="$WORK/peers"
UP=$((port_base + 2))
running=""
cleanup() {
  [ -n "$running" ] && kill "$running" 2>/dev/null || true
  "$PEERS/modsecurity-crs.sh" stop --port "$UP" >/dev/null 2>&1 || true
}
trap cleanup EXIT
"$PEERS/modsecurity-crs.sh" start --plain --port "$UP" >&2
write_proxy_config "$WORK/palisade.toml" split "$((port_base + 1))" "$port_base" "http://127.0.0.1:$UP"
GET="http://127.0.0.1:$port_base/tienda1/publico/anadir.jsp?id=3&nombre=Vino+Rioja&precio=100&cantidad=55&B1=A%F1adir+al+carrito"
HZ=$(getconf CLK_TCK)
for round in $(seq 1 "${ROUNDS:-2}"); do
  for bin in "$@"; do
    rm -rf "$WORK/data"
    PALISADE_ADMIN_PASSWORD="eval-Admin-Password-42" taskset -c 1 "$bin" --config "$WORK/palisade.toml" serve > "$WORK/out.log" 2>&1 &
    running=$!
    for _ in $(seq 1 120); do curl -s -o /dev/null "http://127.0.0.1:$port_base/" && break; sleep 0.5; done
    taskset -c 0 wrk -t1 -c16 -d3s "$GET" > /dev/null
    read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$running/stat")
    n=$(taskset -c 0 wrk -t1 -c16 -d8s "$GET" | awk '/requests in/{print $1}')
    read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$running/stat")
    python3 -c "n=$n; u=($u1-$u0)*1000/$HZ; s=($s1-$s0)*1000/$HZ; print(f'round $round $bin: requests {n} user ms/req {u/n:.4f} sys ms/req {s/n:.4f} total {(u+s)/n:.4f} load1 $(cut -d' ' -f1 /proc/loadavg)')"
    kill "$running"
    for _ in $(seq 1 100); do kill -0 "$running" 2>/dev/null || break; sleep 0.1; done
    running=""
  done
done
