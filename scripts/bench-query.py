#!/usr/bin/env python3
"""Query latency benchmark: GET /api/v1/events with two filters and a text search.

Loads N copies of a generated access log into a fresh store (each copy under its own
source name, so 10 copies of the 1M-line log make 10M events), starts `palisade serve`
on it, and times queries of three shapes with values sampled from the log. Prints
p50/p95/p99 per shape and overall.

usage: scripts/bench-query.py LOG --copies 10 [--database-url URL] [--queries 100]
"""
import argparse, json, os, random, re, shutil, subprocess, sys, time, urllib.parse, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/palisade/target"))
BIN = os.path.join(TARGET, "release", "palisade")
WORDS = ["mozilla", "admin", "php", "bot", "select", "login", "windows", "curl", "zzqx-rare"]


def sample(log, n=400):
    ips, prefixes, times = [], [], []
    line_re = re.compile(r'^(\S+) \S+ \S+ \[([^\]]+)\] "(\S+) (/[^/ ?]*)')
    with open(log, "rb") as f:
        for i, raw in enumerate(f):
            if i % 997:
                continue
            m = line_re.match(raw.decode("latin-1"))
            if m:
                ips.append(m.group(1)); times.append(m.group(2)); prefixes.append(m.group(4))
            if len(ips) >= n:
                break
    return ips, prefixes, times


def clf_to_iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.strptime(t.split()[0], "%d/%b/%Y:%H:%M:%S"))


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("log")
    ap.add_argument("--copies", type=int, default=10)
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--data-dir", default="/tmp/palisade-bench/query")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--port", type=int, default=18181)
    ap.add_argument("--skip-load", action="store_true")
    a = ap.parse_args()
    env = dict(os.environ, PALISADE_LOG="warn", PALISADE_ADMIN_PASSWORD="bench-Admin-Password-1")
    cfg = os.path.join(os.path.dirname(a.data_dir), "bench-query.toml")
    os.makedirs(os.path.dirname(cfg), exist_ok=True)
    with open(cfg, "w") as f:
        f.write("[rate_limit]\nread_per_second = 100000\nlogin_per_minute = 100000\n")
    base = [BIN, "--data-dir", a.data_dir] + (["--database-url", a.database_url] if a.database_url else [])
    if not a.skip_load:
        if not a.database_url:
            shutil.rmtree(a.data_dir, ignore_errors=True)
        for c in range(a.copies):
            t0 = time.time()
            out = subprocess.run(base + ["ingest", "--quiet", "--format", "combined", "--source", f"copy{c}", a.log],
                                 env=env, capture_output=True, text=True, check=True)
            print(f"load copy {c}: {time.time() - t0:.1f}s {out.stdout.strip().splitlines()[-1]}", flush=True)
    server = subprocess.Popen(base + ["serve", "--config", cfg, "--listen", f"127.0.0.1:{a.port}"], env=env)
    try:
        url = f"http://127.0.0.1:{a.port}"
        for _ in range(300):
            try:
                if urllib.request.urlopen(url + "/readyz", timeout=2).status == 200:
                    break
            except Exception:
                time.sleep(0.2)
        token = ""
        for _ in range(100):
            req = urllib.request.Request(url + "/api/v1/auth/login", data=json.dumps({"username": "admin", "password": env["PALISADE_ADMIN_PASSWORD"]}).encode(), headers={"content-type": "application/json"})
            try:
                token = json.load(urllib.request.urlopen(req, timeout=10))["access_token"]
                break
            except Exception:
                time.sleep(0.2)
        auth = {"Authorization": f"Bearer {token}"}
        ips, prefixes, times = sample(a.log)
        rnd = random.Random(7)
        shapes = {
            "client_ip/24 + status class + q": lambda: {"client_ip": ".".join(rnd.choice([i for i in ips if "." in i]).split(".")[:3]) + ".0/24", "status": rnd.choice(["2xx", "4xx"]), "q": rnd.choice(WORDS)},
            "path_prefix + method + q": lambda: {"path_prefix": rnd.choice(prefixes), "method": "GET", "q": rnd.choice(WORDS)},
            "1h window + status + q": lambda: (lambda t: {"from": t, "to": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.mktime(time.strptime(t, "%Y-%m-%dT%H:%M:%SZ")) + 3600)), "status": "200", "q": rnd.choice(WORDS)})(clf_to_iso(rnd.choice(times))),
        }
        allt = []
        for name, make in shapes.items():
            lat = []
            for _ in range(a.queries):
                q = urllib.parse.urlencode(make())
                t0 = time.perf_counter()
                with urllib.request.urlopen(urllib.request.Request(f"{url}/api/v1/events?{q}", headers=auth), timeout=120) as r:
                    body = r.read()
                    assert r.status == 200, body
                lat.append((time.perf_counter() - t0) * 1000)
            allt += lat
            print(f"{name:<34} p50 {pct(lat,50):8.1f} ms  p95 {pct(lat,95):8.1f} ms  p99 {pct(lat,99):8.1f} ms  max {max(lat):8.1f} ms")
        print(f"{'all':<34} p50 {pct(allt,50):8.1f} ms  p95 {pct(allt,95):8.1f} ms  p99 {pct(allt,99):8.1f} ms")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
