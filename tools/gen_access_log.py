#!/usr/bin/env python3
"""Write N nginx "combined" access-log lines with realistic variety, for load tests
and benchmarks of the Palisade ingestion pipeline.

Requests, statuses, sizes, referers and user agents are drawn from the real access
logs in ../shared/data/access-logs (elastic, hackers, honeynet-2004) and from the CSIC
2010 HTTP requests (normal and attack traffic: method, URI, User-Agent, Host), when
that data is present; a small built-in pool is used otherwise. Clients are a skewed mix
of IPv4 (real and synthetic) and some IPv6 addresses; timestamps only increase; about
0.1% of the lines are malformed on purpose (cut short, broken quotes, bad status, bad
time, binary junk) so that dead-letter handling gets exercised.

Fields are escaped as nginx does (`"`, `\\`, control and non-ASCII bytes as \\xHH), so
the output is plain ASCII. Output is deterministic for a given --seed.

Usage: gen_access_log.py OUTPUT [--lines N] [--seed S] [--start 2024-03-01T00:00:00]
Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import gzip
import itertools
import json
import random
import re
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"

COMBINED_RE = re.compile(
    rb'^(\S+) \S+ \S+ \[[^\]]+\] "(.*)" (\d{3}) (\d+|-) "(.*?)" "(.*)"$'
)

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

BUILTIN_REQUESTS = [
    ("GET / HTTP/1.1", 200, 2890, "-", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"),
    ("GET /index.html HTTP/1.1", 200, 5120, "https://www.google.com/", "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"),
    ("GET /wp-login.php HTTP/1.1", 404, 162, "-", "Mozilla/5.0 (compatible; MSIE 9.0; Windows NT 6.1)"),
    ("POST /login HTTP/1.1", 302, 0, "https://example.com/login", "python-requests/2.31.0"),
    ("GET /scripts/..%c0%af../winnt/system32/cmd.exe?/c+dir HTTP/1.0", 404, 288, "-", "-"),
    ("GET /search?q=%27+OR+1%3D1-- HTTP/1.1", 500, 731, "-", "sqlmap/1.7"),
    ("HEAD /robots.txt HTTP/1.1", 200, 0, "-", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
]


def nginx_escape(raw: bytes) -> str:
    """Escapes like nginx's access log: `"`, `\\`, bytes < 0x20 and >= 0x7f as \\xHH."""
    out = []
    for b in raw:
        if b < 0x20 or b >= 0x7F or b in (0x22, 0x5C):
            out.append("\\x%02X" % b)
        else:
            out.append(chr(b))
    return "".join(out)


def load_access_logs(limit_per_file: int = 20_000) -> tuple[list, list[str]]:
    """(request tuples, client IPs) from the real combined logs."""
    requests, ips = [], []
    base = DATA / "access-logs"
    files = [base / "elastic_apache_logs.log", base / "hackers-access.log"]
    files += sorted((base / "honeynet-2004").glob("access_log*"))
    for f in files:
        try:
            data = f.read_bytes()
        except OSError:
            continue
        for line in data.split(b"\n")[:limit_per_file]:
            m = COMBINED_RE.match(line.rstrip(b"\r"))
            if not m:
                continue
            ip, req, status, size, ref, ua = m.groups()
            if len(req) > 2048:  # keep a few of the 8 KB overflow attempts, not all
                if len(requests) % 20:
                    continue
            requests.append(
                (
                    nginx_escape(req),
                    int(status),
                    0 if size == b"-" else int(size),
                    nginx_escape(ref) if ref else "-",
                    nginx_escape(ua) if ua else "-",
                )
            )
            ips.append(ip.decode("ascii", "replace"))
    return requests, ips


def load_csic(limit: int = 40_000) -> list:
    """Request tuples from CSIC 2010 (normal training + anomalous test traffic)."""
    out = []
    base = DATA / "csic2010"
    for name in ("normalTrafficTraining.jsonl.gz", "anomalousTrafficTest.jsonl.gz"):
        try:
            fh = gzip.open(base / name, "rt", encoding="utf-8")
        except OSError:
            continue
        with fh:
            for i, row in enumerate(fh):
                if i >= limit:
                    break
                r = json.loads(row)
                uri = r["uri"]
                rest = uri.split("://", 1)[-1]
                target = "/" + rest.split("/", 1)[1] if "/" in rest else uri
                headers = {k.lower(): v for k, v in r["headers"]}
                host = headers.get("host", "localhost:8080")
                attack = r.get("label") == "attack"
                status = 200 if not attack else None
                req = f'{r["method"]} {target} {r["version"]}'
                out.append(
                    (
                        nginx_escape(req.encode("latin-1", "replace")),
                        status,
                        None,
                        f"http://{host}/tienda1/index.jsp",
                        nginx_escape(headers.get("user-agent", "-").encode("latin-1", "replace")),
                    )
                )
    return out


def make_clients(rng: random.Random, real_ips: list[str], n: int = 20_000) -> list[str]:
    clients = []
    uniq = sorted(set(real_ips))
    for _ in range(n):
        r = rng.random()
        if r < 0.4 and uniq:
            clients.append(rng.choice(uniq))
        elif r < 0.93:
            clients.append(
                f"{rng.choice([23, 31, 45, 62, 66, 77, 81, 91, 104, 141, 176, 185, 192, 203, 212])}."
                f"{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            )
        else:
            clients.append(
                "2001:db8:%x:%x::%x" % (rng.randrange(0x10000), rng.randrange(0x10000), rng.randrange(1, 0x10000))
            )
    return clients


def clf_time(t: dt.datetime) -> str:
    return f"{t.day:02d}/{MONTHS[t.month - 1]}/{t.year:04d}:{t.hour:02d}:{t.minute:02d}:{t.second:02d} +0000"


def malformed(rng: random.Random, good: str) -> str:
    kind = rng.randrange(5)
    if kind == 0:  # cut short inside the user agent (no closing quote)
        return good[: max(1, good.rfind('"') - rng.randrange(1, 5))]
    if kind == 1:  # bad status
        return re.sub(r'" \d{3} ', '" 2x0 ', good, count=1)
    if kind == 2:  # bad month
        return re.sub(r"/[A-Z][a-z]{2}/", "/Foo/", good, count=1)
    if kind == 3:  # request quote missing entirely
        return good.replace('"', "", 2)
    return "".join(chr(rng.randrange(0x21, 0x7F)) for _ in range(rng.randrange(1, 120)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("output", help="file to write (overwritten)")
    ap.add_argument("--lines", type=int, default=1_000_000, help="number of lines (default 1,000,000)")
    ap.add_argument("--seed", type=int, default=1, help="random seed (same seed, same file)")
    ap.add_argument("--start", default="2024-03-01T00:00:00", help="time of the first line (UTC)")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    log_requests, real_ips = load_access_logs()
    csic = load_csic()
    if not log_requests and not csic:
        print("data not found, using the built-in request pool", file=sys.stderr)
        log_requests = list(BUILTIN_REQUESTS)
    clients = make_clients(rng, real_ips)
    # A skewed client distribution: a few heavy hitters (scanners, crawlers).
    cum_weights = list(itertools.accumulate(1.0 / (i + 1) ** 0.8 for i in range(len(clients))))
    total_weight = cum_weights[-1]
    referers = ["-", "-", "-", "https://www.google.com/", "https://www.bing.com/search?q=example",
                "https://www.example.com/", "https://t.co/abc123"]

    t = dt.datetime.fromisoformat(args.start)
    frac = 0.0
    bad = 0
    batch = 4096
    with open(args.output, "w", encoding="ascii", newline="\n") as out:
        buf = []
        for i in range(args.lines):
            frac += rng.expovariate(20.0)  # ~20 requests per second on average
            if frac >= 1.0:
                whole = int(frac)
                t += dt.timedelta(seconds=whole)
                frac -= whole
            if i % 8:
                ip = clients[min(bisect.bisect(cum_weights, rng.random() * total_weight), len(clients) - 1)]
            else:
                ip = rng.choice(clients)
            if csic and (not log_requests or rng.random() < 0.4):
                req, status, size, ref, ua = rng.choice(csic)
                if status is None:
                    status = rng.choice([200, 200, 400, 403, 404, 500])
                if rng.random() < 0.5:
                    ref = "-"
            else:
                req, status, size, ref, ua = rng.choice(log_requests)
                if ref == "-" and rng.random() < 0.2:
                    ref = rng.choice(referers)
            if size is None:
                size = 0 if status in (204, 304) else int(rng.lognormvariate(8.5, 1.2))
            elif size and rng.random() < 0.3:
                size = max(0, int(size * rng.uniform(0.8, 1.2)))
            user = "-" if rng.random() < 0.995 else rng.choice(["admin", "alice", "bob", "test"])
            line = f'{ip} - {user} [{clf_time(t)}] "{req}" {status} {size} "{ref}" "{ua}"'
            if rng.random() < 0.001:
                line = malformed(rng, line)
                bad += 1
            buf.append(line)
            if len(buf) >= batch:
                out.write("\n".join(buf) + "\n")
                buf.clear()
        if buf:
            out.write("\n".join(buf) + "\n")
    print(f"wrote {args.lines} lines to {args.output} ({bad} malformed on purpose)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
