#!/usr/bin/env bash
# The README's screenshot of the dashboard overview, with real data: imports two real
# access logs of ../shared/data (elastic_apache_logs.log, May 2015, and
# hackers-access.log, October 2015) with `palisade ingest` into a fresh SQLite store,
# starts `palisade serve` on it, logs in with headless Chromium (chromedriver, W3C
# WebDriver from Python's standard library), opens the overview with the range "All
# stored data" (those logs are years old: the last-24-hours view is empty), waits until
# the figures and charts are drawn and saves docs/dashboard-overview.png.
# Usage: scripts/screenshot-overview.sh [OUT.png]   (env PALISADE_DATA: the data set,
# default ../shared/data; needs chromium and chromium-driver, which scripts/test.sh
# installs).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-docs/dashboard-overview.png}"
DATA="${PALISADE_DATA:-../shared/data}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/palisade/target}"
WORK="$(mktemp -d /tmp/palisade-screenshot.XXXXXX)"
cargo build -q -p palisade
BIN="$CARGO_TARGET_DIR/debug/palisade"
export PALISADE_ADMIN_PASSWORD="shot-Admin-Password-42"

"$BIN" ingest --quiet --format combined --source elastic-apache --data-dir "$WORK/data" "$DATA/access-logs/elastic_apache_logs.log"
"$BIN" ingest --quiet --format combined --source hackers-access --data-dir "$WORK/data" "$DATA/access-logs/hackers-access.log"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" serve --data-dir "$WORK/data" --listen "127.0.0.1:$PORT" 2>"$WORK/server.log" &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 300); do
  curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break
  sleep 0.1
done

python3 - "$PORT" "$PALISADE_ADMIN_PASSWORD" "$OUT" <<'PY'
import base64, json, os, signal, socket, subprocess, sys, time, urllib.request

port, password, out = sys.argv[1], sys.argv[2], sys.argv[3]
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
        "--no-sandbox", "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1",
        "--window-size=1366,1100", "--lang=en-GB"]}}}})["sessionId"]
    S = f"/session/{sid}"

    def script(src):
        return call("POST", S + "/execute/sync", {"script": src, "args": []})

    def until(src, what, wait=180):
        end = time.time() + wait
        while time.time() < end:
            if script(src):
                return
            time.sleep(0.5)
        raise SystemExit(f"timed out waiting for {what}: " + script("return document.body.innerText;"))

    def find(css):
        until(f"return document.querySelector({json.dumps(css)}) !== null;", css)
        return list(call("POST", S + "/element", {"using": "css selector", "value": css}).values())[0]

    def overview(url):
        """Opens `url` signed in (logging in again if the login form shows) and waits
        for the overview's figures."""
        call("POST", S + "/url", {"url": url})
        for _ in range(5):
            until("return document.querySelector('[data-figure=events-total], #login-form') !== null;", "the page")
            if script("return document.querySelector('#login-form') === null;"):
                find("[data-figure=events-total]")
                return
            time.sleep(1)
            call("POST", S + f"/element/{find('#username')}/value", {"text": "admin"})
            call("POST", S + f"/element/{find('#password')}/value", {"text": password})
            call("POST", S + f"/element/{find('#login-form button')}/click", {})
            time.sleep(2)
        raise SystemExit("cannot log in: " + script("return document.body.innerText;"))

    # The server rolls the imported events up in the background: reload until both
    # charts are drawn.
    for attempt in range(60):
        overview(f"{app}/?shot={attempt}#/overview?range=all")
        time.sleep(1)
        if script("return document.querySelectorAll('svg.chart').length >= 2;"):
            break
        time.sleep(2)
    else:
        raise SystemExit("the charts were never drawn: " + script("return document.body.innerText;"))
    script("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0);")
    print("overview:", script("return [...document.querySelectorAll('#totals .tile')].map(t => t.innerText.replace('\\n', ': ')).join(', ');"))
    png = base64.b64decode(call("GET", S + "/screenshot"))
    with open(out, "wb") as f:
        f.write(png)
    print(f"{out}: {len(png):,} bytes")
    call("DELETE", S)
finally:
    os.killpg(driver.pid, signal.SIGTERM)
PY
