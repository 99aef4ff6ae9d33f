#!/usr/bin/env bash
# What storing every proxied request as an event costs the protecting proxy: the same
# binary with [[proxy]] store_events = true and false, alternately, in front of a plain
# nginx, loaded by wrk from random client addresses (X-Forwarded-For from a trusted
# front, so no behaviour scenario bans the load generator). Prints req/s, latency
# percentiles and the server's CPU per request (from /proc, the figure that holds on a
# shared machine).
#
#   BIN=~/.cache/palisade/target/release/palisade bash scripts/bench-proxy-events.sh [runs] [seconds]
set -euo pipefail
BIN="${BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/palisade/target}/release/palisade}"
RUNS="${1:-2}"
SECS="${2:-10}"
DIR="$(mktemp -d /tmp/palisade-bench-events.XXXXXX)"
user=""; [ "$(id -u)" = 0 ] && user="user root;"
cat > "$DIR/nginx.conf" <<CONF
$user
daemon off;
master_process off;
worker_processes 1;
pid $DIR/nginx.pid;
error_log $DIR/error.log warn;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path $DIR/b; proxy_temp_path $DIR/p;
  fastcgi_temp_path $DIR/f; uwsgi_temp_path $DIR/u; scgi_temp_path $DIR/s;
  server { listen 127.0.0.1:18480; location / { return 200 "ok\n"; } } }
CONF
cat > "$DIR/xff.lua" <<'LUA'
math.randomseed(os.time())
request = function()
  local ip = string.format("198.%d.%d.%d", math.random(18, 19), math.random(0, 255), math.random(1, 254))
  return wrk.format("GET", "/products?page=2", {["X-Forwarded-For"] = ip})
end
LUA
nginx -p "$DIR" -c "$DIR/nginx.conf" & NGINX=$!
cleanup() { kill "$NGINX" 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT
run() {
  local store=$1 n=$2
  rm -rf "$DIR/data"
  cat > "$DIR/p.toml" <<TOML
listen = "127.0.0.1:18482"
data_dir = "$DIR/data"
[log]
level = "warn"
[[proxy]]
name = "bench"
listen = "127.0.0.1:18481"
upstream = "http://127.0.0.1:18480"
trusted_proxies = ["127.0.0.1"]
store_events = $store
TOML
  PALISADE_ADMIN_PASSWORD=bench-Admin-Password-42 "$BIN" --config "$DIR/p.toml" serve > "$DIR/out.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do curl -fsS -o /dev/null http://127.0.0.1:18482/readyz 2>/dev/null && break; sleep 0.1; done
  local before; before=$(awk '{print $14+$15}' "/proc/$pid/stat")
  wrk -t2 -c16 -d"${SECS}s" --latency -s "$DIR/xff.lua" http://127.0.0.1:18481/ > "$DIR/wrk.txt"
  sleep 2 # the events written after the load count too
  local after; after=$(awk '{print $14+$15}' "/proc/$pid/stat")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  local reqs; reqs=$(awk '/requests in/ {print $1}' "$DIR/wrk.txt")
  local hz; hz=$(getconf CLK_TCK)
  printf 'store_events=%-5s run %s: %s req/s, p50 %s, p99 %s, non-2xx %s, server CPU %.3f ms/request\n' \
    "$store" "$n" "$(awk '/Requests\/sec/ {print $2}' "$DIR/wrk.txt")" \
    "$(awk '$1=="50%" {print $2}' "$DIR/wrk.txt")" "$(awk '$1=="99%" {print $2}' "$DIR/wrk.txt")" \
    "$(awk '/Non-2xx/ {print $5}' "$DIR/wrk.txt" | grep . || echo 0)" \
    "$(echo "($after - $before) * 1000 / $hz / $reqs" | bc -l)"
}
for n in $(seq "$RUNS"); do run true "$n"; run false "$n"; done
