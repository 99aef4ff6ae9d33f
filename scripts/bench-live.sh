#!/usr/bin/env bash
# Live feed fan-out: bench-live.sh [CLIENTS] [BURST] [debug|release]
# Starts Palisade (SQLite, block mode, room for the clients), connects CLIENTS WebSocket
# clients to /api/v1/ws subscribed to `threats` plus one that never reads, sends BURST
# blocked /api/v1/check requests at once and prints delivery latency (request sent →
# each client has the threat), misses, the stalled client's fate and server RSS
# (crates/palisade/examples/ws_fanout.rs), first with one frame per message, then with
# batched frames. Figures go in docs/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
clients=${1:-1000} burst=${2:-50} profile=${3:-release}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/palisade/target}"
flag=(); [ "$profile" = release ] && flag=(--release)
cargo build "${flag[@]}" --locked -p palisade --bin palisade --example ws_fanout >&2
bin="$CARGO_TARGET_DIR/$profile/palisade"
dir=$(mktemp -d); port=$((20000 + RANDOM % 20000))
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
cat > "$dir/palisade.toml" <<TOML
listen = "127.0.0.1:$port"
data_dir = "$dir/data"
[log]
level = "warn"
[http]
max_connections = $((clients + 512))
[rate_limit]
read_per_second = 100000
write_per_second = 100000
ingest_per_second = 100000
TOML
PALISADE_ADMIN_PASSWORD="bench-Admin-Password-42" "$bin" --config "$dir/palisade.toml" serve > "$dir/out.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null && break; sleep 0.2; done
ulimit -n 65536 2>/dev/null || true
# The same server, twice: one frame per message (as before batching), then batched
# frames (&batch=true, what the dashboard uses).
for batch in false true; do
  "$CARGO_TARGET_DIR/$profile/examples/ws_fanout" --url "http://127.0.0.1:$port" --user admin \
    --password "bench-Admin-Password-42" --clients "$clients" --burst "$burst" --pid "$pid" \
    --batch "$batch"
  echo
done
