# Palisade instances under callgrind in front of one plain nginx upstream: what
# scripts/bench-ml-cost-ir.sh and scripts/bench-proxy-ir.sh share (sourced, not run).
#
# The caller sets BIN, OUT, STATE and UP (the upstream's port) and defines
# `bin_of NAME` (the binary of an instance); it may define `instance_extra NAME` (TOML
# added to that instance's configuration). `running` holds the pid to stop on exit.

# The periodic work (analytics roll-ups and samples, posture checks, the job queue's
# poll) at its longest interval in every instance: it runs by the clock, not per
# request, and a request under callgrind takes milliseconds, so at the default
# intervals it would add a varying share to each request's count.
QUIET=$'[analytics]\nsample_every = "60s"\nrollup_every = "1h"\nposture_every = 0\n[jobs]\npoll = "60s"'
source "$(dirname "${BASH_SOURCE[0]}")/proxy-config.sh"

# check_callgrind_tools BEFORE: the binaries and tools the run needs, or exit.
check_callgrind_tools() {
  local before=$1 tool
  [ -x "$BIN" ] || { echo "no release binary at $BIN (cargo build --release -p palisade)" >&2; exit 1; }
  [ -z "$before" ] || [ -x "$before" ] || { echo "no binary at $before (--before)" >&2; exit 1; }
  for tool in valgrind callgrind_control callgrind_annotate curl python3; do
    command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }
  done
}

running=""
stop_instances_and_upstream() {
  if [ -n "$running" ] && kill -0 "$running" 2>/dev/null; then
    kill "$running" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$running" 2>/dev/null || break; sleep 0.1; done
  fi
  "$PEERS/modsecurity-crs.sh" stop --port "$UP" >/dev/null 2>&1 || true
}

# start_upstream: the plain nginx every instance forwards to, stopped on exit.
start_upstream() {
  trap stop_instances_and_upstream EXIT
  "$PEERS/modsecurity-crs.sh" start --plain --port "$UP" >&2
}

# start_under_callgrind NAME PROXY_PORT API_PORT: prints the pid once the proxy answers.
# Block mode at PL1 with the shipped defaults otherwise, instrumentation off until the
# caller turns it on (start-up runs uninstrumented).
start_under_callgrind() {
  local name=$1 proxy_port=$2 api_port=$3 dir="$STATE/$1" port extra=""
  for port in "$proxy_port" "$api_port"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "port $port is already in use (another benchmark running?)" >&2
      return 1
    fi
  done
  declare -F instance_extra >/dev/null && extra=$(instance_extra "$name")
  rm -rf "$dir" "${OUT:?}/$name" && mkdir -p "$dir" "$OUT/$name"
  write_proxy_config "$dir/palisade.toml" "$name" "$api_port" "$proxy_port" "http://127.0.0.1:$UP" 1 "$extra" "$QUIET"
  PALISADE_ADMIN_PASSWORD="eval-Admin-Password-42" \
    valgrind --tool=callgrind --instr-atstart=no \
    --callgrind-out-file="$OUT/$name/callgrind.out" \
    "$(bin_of "$name")" --config "$dir/palisade.toml" serve > "$dir/out.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 1200); do
    kill -0 "$pid" 2>/dev/null || break
    if curl -s -o /dev/null -m 5 "http://127.0.0.1:$proxy_port/" 2>/dev/null; then
      echo "$pid"
      return 0
    fi
    sleep 0.5
  done
  echo "palisade $name did not start under valgrind; its log:" >&2
  cat "$dir/out.log" >&2
  return 1
}

# dump NAME PID LABEL: dumps the counts since the last zero as callgrind.out.LABEL.
dump() {
  local name=$1 pid=$2 label=$3 newest
  callgrind_control --dump="$label" "$pid" >/dev/null
  newest=$(ls -t "$OUT/$name"/callgrind.out.* | head -1)
  mv "$newest" "$OUT/$name/callgrind.out.$label"
}
