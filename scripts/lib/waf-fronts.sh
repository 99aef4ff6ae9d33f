# Helpers shared by eval-waf.sh and bench-waf.sh: start a Palisade protecting proxy in
# front of an upstream, with its own data directory and configuration, and stop it.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$ROOT/scripts/lib/proxy-config.sh"
PEERS="${PALISADE_PEERS:-$ROOT/../shared/peers}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/palisade/target}"
# PALISADE_BIN: run this binary instead (e.g. a debug build: verdicts are the same, only
# cost differs) and skip the release build.
BIN="${PALISADE_BIN:-$CARGO_TARGET_DIR/release/palisade}"
STATE="${PALISADE_FRONTS_DIR:-/tmp/palisade-fronts}"

build_release() {
  [ -n "${PALISADE_BIN:-}" ] && return 0
  (cd "$ROOT" && cargo build --release --locked -p palisade >&2)
}

# start_palisade NAME PROXY_PORT API_PORT UPSTREAM PARANOIA [CPU]
# (PALISADE_DETECTION_EXTRA: more lines for its [detection] section, e.g. crs_dir)
start_palisade() {
  local name=$1 proxy_port=$2 api_port=$3 upstream=$4 paranoia=$5 cpu=${6:-}
  local dir="$STATE/$name"
  # A port another run already holds would answer the readiness probe below while this
  # instance fails to bind and exits: the replay would then measure the other process.
  local port
  for port in "$proxy_port" "$api_port"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "palisade $name: port $port is already in use (another benchmark running?)" >&2
      return 1
    fi
  done
  rm -rf "$dir" && mkdir -p "$dir"
  write_proxy_config "$dir/palisade.toml" "$name" "$api_port" "$proxy_port" "$upstream" "$paranoia" "${PALISADE_DETECTION_EXTRA:-}"
  local pin=()
  [ -n "$cpu" ] && pin=(taskset -c "$cpu")
  PALISADE_ADMIN_PASSWORD="eval-Admin-Password-42" \
    "${pin[@]}" "$BIN" --config "$dir/palisade.toml" serve > "$dir/out.log" 2>&1 &
  echo $! > "$dir/pid"
  for _ in $(seq 1 100); do
    if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
      break
    fi
    if curl -fsS -o /dev/null "http://127.0.0.1:$proxy_port/" 2>/dev/null ||
       curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$proxy_port/" 2>/dev/null | grep -qE '^[1-5]'; then
      return 0
    fi
    sleep 0.1
  done
  echo "palisade $name did not start; its log:" >&2
  cat "$dir/out.log" >&2
  return 1
}

palisade_pid() { cat "$STATE/$1/pid"; }

# tuned_crs_dir CRS_DIR OUT_DIR: writes OUT_DIR/owasp-crs.load = the ModSecurity peer's
# --allow-accept-charset tuning (rule 900250: stock restricted headers minus
# Accept-Charset, which stock CRS 3.3.4 scores 5 on every request that sends one) ahead
# of CRS_DIR's files as they are, so Palisade runs exactly the peer's rules. Prints OUT_DIR.
tuned_crs_dir() {
  local crs_dir=$1 tuned=$2
  mkdir -p "$tuned"
  {
    echo "SecAction \"id:900250,phase:1,nolog,pass,t:none,setvar:'tx.restricted_headers=/content-encoding/ /proxy/ /lock-token/ /content-range/ /if/'\""
    if [ -f "$crs_dir/owasp-crs.load" ]; then
      echo "Include $crs_dir/owasp-crs.load"
    else
      for setup in crs-setup.conf crs-setup.conf.example; do
        [ -f "$crs_dir/$setup" ] && { echo "Include $crs_dir/$setup"; break; }
      done
      echo "Include $crs_dir/rules/*.conf"
    fi
  } > "$tuned/owasp-crs.load"
  echo "$tuned"
}

stop_palisade() {
  local pidfile="$STATE/$1/pid"
  [ -f "$pidfile" ] || return 0
  kill "$(cat "$pidfile")" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.1; done
  rm -f "$pidfile"
}
