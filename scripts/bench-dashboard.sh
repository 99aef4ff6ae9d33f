#!/usr/bin/env bash
# Dashboard page load over a large store, in headless Chromium (chromedriver, W3C
# WebDriver from Python's standard library): log in, then with the browser cache emptied
# reload the overview and read the browser's performance API (DOMContentLoaded, the
# overview's own "drawn" mark, bytes), 3 runs per range.
#
# Two ways to fill the store:
#   ingest     (default) generates N combined log lines over the last ~15 hours
#              (tools/gen_access_log.py, ~20 requests/s) and imports them with
#              `palisade ingest` into SQLite: the real path, slow for millions.
#   generated  N events over the last 30 days (1% threats) written straight in SQL and
#              rolled up by crates/analytics/examples/analytics_bench.rs (as
#              scripts/bench-analytics.sh does), kept with PALISADE_BENCH_KEEP: 10M in
#              a few minutes. The store is deleted at the end (~2.5 GB at 10M).
# Usage: scripts/bench-dashboard.sh [N] [ingest|generated]   (default 1,000,000 ingest)
# Env: PALISADE_BENCH_KEEP_STORE=1 keeps the generated store, PALISADE_BENCH_REUSE=1
# serves the one a previous run kept, PALISADE_BENCH_PROFILE=release for a release build (default debug; measure with
# release), PALISADE_BENCH_RANGES (default "24h", generated: "24h 30d"). Needs chromium
# and chromium-driver, which scripts/test.sh installs.
set -euo pipefail
cd "$(dirname "$0")/.."
LINES="${1:-1000000}"
MODE="${2:-ingest}"
PROFILE="${PALISADE_BENCH_PROFILE:-debug}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/palisade/target}"
WORK="${PALISADE_BENCH_DIR:-/tmp/palisade-bench-dashboard}"
# PALISADE_BENCH_REUSE=1 (generated mode): serve the store a previous run generated.
REUSE="${PALISADE_BENCH_REUSE:-}"
[ -n "$REUSE" ] && [ "$MODE" = generated ] && [ -f "$WORK/data/palisade.db" ] || { REUSE=; rm -rf "$WORK/data"; }
mkdir -p "$WORK/data"
FLAGS=()
[ "$PROFILE" = release ] && FLAGS=(--release)
cargo build -q "${FLAGS[@]}" -p palisade
BIN="$CARGO_TARGET_DIR/$PROFILE/palisade"
export PALISADE_ADMIN_PASSWORD="bench-Admin-Password-42"

begin=$(date +%s)
if [ "$MODE" = generated ]; then
  RANGES="${PALISADE_BENCH_RANGES:-24h 30d}"
  [ -n "$REUSE" ] || cargo build -q "${FLAGS[@]}" -p palisade-analytics --example analytics_bench
  [ -n "${PALISADE_BENCH_KEEP_STORE:-}" ] || trap 'rm -rf "$WORK/data"' EXIT
  [ -n "$REUSE" ] || PALISADE_BENCH_KEEP=1 "$CARGO_TARGET_DIR/$PROFILE/examples/analytics_bench" sqlite "$LINES" "$WORK/data/palisade.db"
  echo "generated $LINES events in $(( $(date +%s) - begin )) s"
else
  RANGES="${PALISADE_BENCH_RANGES:-24h}"
  LOG="$WORK/access-$LINES.log"
  START=$(python3 -c 'import datetime as d; print((d.datetime.now(d.timezone.utc) - d.timedelta(hours=15)).strftime("%Y-%m-%dT%H:%M:%S"))')
  python3 tools/gen_access_log.py "$LOG" --lines "$LINES" --seed 7 --start "$START"
  "$BIN" ingest --quiet --format combined --data-dir "$WORK/data" "$LOG"
  echo "imported $LINES lines in $(( $(date +%s) - begin )) s"
fi

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" serve --data-dir "$WORK/data" --listen "127.0.0.1:$PORT" 2>"$WORK/server.log" &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; if [ "$MODE" = generated ] && [ -z "${PALISADE_BENCH_KEEP_STORE:-}" ]; then rm -rf "$WORK/data"; fi' EXIT
for _ in $(seq 1 200); do
  curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break
  sleep 0.1
done

python3 - "$PORT" "$PALISADE_ADMIN_PASSWORD" "$RANGES" <<'PY'
import json, os, signal, socket, subprocess, sys, time, urllib.request

port, password, ranges = sys.argv[1], sys.argv[2], sys.argv[3].split()
app = f"http://127.0.0.1:{port}"
s = socket.socket(); s.bind(("127.0.0.1", 0)); wd_port = s.getsockname()[1]; s.close()
driver = subprocess.Popen(["chromedriver", f"--port={wd_port}"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, start_new_session=True)
wd = f"http://127.0.0.1:{wd_port}"

def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(wd + path, data=data, method=method,
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.load(r)["value"]

try:
    for _ in range(100):
        try:
            call("GET", "/status"); break
        except OSError:
            time.sleep(0.1)
    sid = call("POST", "/session", {"capabilities": {"alwaysMatch": {"browserName": "chrome",
        "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": ["--headless=new",
        "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1366,768"]}}}})["sessionId"]
    S = f"/session/{sid}"

    def find(css, wait=120):
        end = time.time() + wait
        while time.time() < end:
            found = call("POST", S + "/elements", {"using": "css selector", "value": css})
            if found:
                return list(found[0].values())[0]
            time.sleep(0.1)
        raise SystemExit(f"no {css}")

    def script(src):
        return call("POST", S + "/execute/sync", {"script": src, "args": []})

    call("POST", S + "/url", {"url": app + "/"})
    call("POST", S + f"/element/{find('#username')}/value", {"text": "admin"})
    call("POST", S + f"/element/{find('#password')}/value", {"text": password})
    call("POST", S + f"/element/{find('#login-form button')}/click", {})
    find("[data-figure=events-total]")
    print("overview figures:", script("return [...document.querySelectorAll('#totals .tile')].map(t => t.innerText.replace('\\n', ': ')).join(', ');"))
    measure = """const m = performance.getEntriesByName('palisade:overview-rendered')[0];
        const nav = performance.getEntriesByType('navigation')[0];
        const ui = performance.getEntriesByType('resource').filter(r => new URL(r.name).pathname.startsWith('/ui/'));
        return {drawn_ms: m && Math.round(m.startTime), dom_content_loaded_ms: Math.round(nav.domContentLoadedEventEnd),
                bytes: nav.decodedBodySize + ui.reduce((s, r) => s + r.decodedBodySize, 0)};"""
    for rng in ranges:
        for run in range(1, 4):
            call("POST", S + "/goog/cdp/execute", {"cmd": "Network.clearBrowserCache", "params": {}})
            call("POST", S + f"/url", {"url": f"{app}/?run={run}{rng}#/overview?range={rng}"})
            find("[data-figure=events-total]")
            events = script("return document.querySelector('[data-figure=events-total]').innerText;")
            print(f"range {rng}, run {run}: events {events},", json.dumps(script(measure)))
    call("DELETE", S)
finally:
    os.killpg(driver.pid, signal.SIGTERM)
PY
