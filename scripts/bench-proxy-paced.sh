#!/usr/bin/env bash
# The protecting proxy's latency at a paced rate, several Palisade instances (binaries
# or configurations) alternated in one run, so that before and after see the same load
# (proxy5). Every front is pinned to CPU 1 in front of one plain nginx (also CPU 1, as in
# bench-proxy-cost.sh); wrk is on CPU 0 (shared/peers/bench.sh, GET, 16 connections).
#
#   [ROUNDS=2] [DUR=10] [RATE=5000] [OUT=/tmp/palisade-bench-proxy-paced] [PORT_BASE=21300] \
#   [THREADS=1] [SCHED=1] [CONNS=16] bash scripts/bench-proxy-paced.sh LABEL=BIN[@PROXY_TOML] ...
#
# LABEL `nginx` (no binary) measures the plain nginx alone, the machine's floor.
# @PROXY_TOML: a file whose TOML goes after the proxy's keys (e.g. `store_events = false`).
# THREADS=1: CPU ticks per thread of each instance over the run ($OUT/threads.LABEL.ROUND).
# CONNS: wrk's connections (default 16), sharing the paced rate: fewer connections means
#   fewer requests arriving together (stop 32's check of the paced tail).
# SCHED=1: `perf sched record` of CPUs 0-1 for 4 s in the first round ($OUT/sched.LABEL.data;
#   read with `perf sched timehist -i FILE -p PID`).
# Ports: nginx on PORT_BASE, instance i's proxy and API on PORT_BASE+10+2i and +11+2i.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "$ROOT/scripts/lib/proxy-config.sh"
PEERS="${PALISADE_PEERS:-$ROOT/../shared/peers}"
OUT="${OUT:-/tmp/palisade-bench-proxy-paced}" DUR="${DUR:-10}"
export PALISADE_PEERS_DIR="$OUT/peers"
PLAIN="${PORT_BASE:-21300}"
mkdir -p "$OUT"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  "$PEERS/modsecurity-crs.sh" stop --port "$PLAIN" >/dev/null 2>&1 || true
}
trap cleanup EXIT
taskset -c 1 "$PEERS/modsecurity-crs.sh" start --plain --port "$PLAIN" >&2
names=() ports=() i=0
for spec in "$@"; do
  name=${spec%%=*} rest=${spec#*=}
  if [ "$name" = nginx ]; then
    mkdir -p "$OUT/nginx" && cp "$PALISADE_PEERS_DIR/plain-$PLAIN/nginx.pid" "$OUT/nginx/pid"
    names+=(nginx) ports+=("$PLAIN")
    continue
  fi
  bin=${rest%%@*} extra=""
  [[ $rest == *@* ]] && extra=$(cat "${rest#*@}")
  port=$((PLAIN + 10 + 2 * i)) dir="$OUT/$name"
  rm -rf "$dir" && mkdir -p "$dir"
  write_proxy_config "$dir/palisade.toml" "$name" $((port + 1)) "$port" "http://127.0.0.1:$PLAIN" 1 "" "$extra"
  PALISADE_ADMIN_PASSWORD="bench-Admin-Password-42" taskset -c 1 "$bin" --config "$dir/palisade.toml" serve >"$dir/out.log" 2>&1 &
  echo $! >"$dir/pid"
  pids+=("$!")
  up=0
  for _ in $(seq 1 600); do
    curl -s -o /dev/null "http://127.0.0.1:$port/" && { up=1; break; }
    sleep 0.2
  done
  [ "$up" = 1 ] || { cat "$dir/out.log" >&2; exit 1; }
  names+=("$name") ports+=("$port") i=$((i + 1))
done
# Per-thread CPU ticks (user + system) from 1 s into the run to 2 s before its end.
snap() { for t in /proc/"$1"/task/*; do echo "${t##*/} $(awk '{print $14 + $15}' "$t/stat" 2>/dev/null)"; done | sort; }
watch_threads() { # LABEL PID ROUND
  sleep 1; snap "$2" >"$OUT/t0"; sleep $((DUR - 3)); snap "$2" >"$OUT/t1"
  join "$OUT/t0" "$OUT/t1" | awk '$3 > $2 {print $1, $3 - $2}' | sort -k2 -nr >"$OUT/threads.$1.$3"
}
results="$OUT/bench.jsonl"
: >"$results"
for r in $(seq 1 "${ROUNDS:-2}"); do
  for k in "${!names[@]}"; do
    n=${names[$k]} pid=$(cat "$OUT/${names[$k]}/pid") hooks=()
    if [ "${THREADS:-}" = 1 ] && [ "$n" != nginx ]; then watch_threads "$n" "$pid" "$r" & hooks+=($!); fi
    if [ "${SCHED:-}" = 1 ] && [ "$r" = 1 ]; then
      (sleep 2; perf sched record -o "$OUT/sched.$n.data" -C 0,1 -- sleep 4 >/dev/null 2>&1) & hooks+=($!)
    fi
    "$PEERS/bench.sh" --cpu 0 --duration "$DUR" --cases get --out "$results" --target "127.0.0.1:${ports[$k]}" \
      --name "$n-r$r" --server-pids "$pid" --rate "${RATE:-5000}" --connections "${CONNS:-16}"
    for h in "${hooks[@]}"; do wait "$h" || true; done
  done
done
echo "results: $results"
