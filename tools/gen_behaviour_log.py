#!/usr/bin/env python3
"""Write an nginx "combined" access log of benign traffic with known attacks mixed in,
and a ground-truth JSON file, to test and benchmark Palisade's behaviour scenarios.

Benign actors: browsers (many addresses; pages with bursts of assets, a few broken
links and missing favicons, some logins with the odd typo), search-engine crawlers with
occasional 404s, an office behind one NAT address where 60 people log in each morning
(three mistype once) and then browse, an API client polling at a steady, high but normal
rate, an uptime monitor, one person who mistypes a password twice, and a few background
bots that try one well-known path once.

Attacks: path probing (a scanner walking /.env, /.git/config, /wp-login.php, /admin.php…,
mostly 404), HTTP login brute force (one address, one user, failed POST /login → 401),
credential stuffing (one address, many users), slow distributed brute force (many
addresses, one user, one attempt each a few minutes apart) and a request flood.

The attempted login user is written to $remote_user, as an application that logs it there
(or HTTP Basic authentication) would; without it no log can tell users apart.

Lines are in time order. Output is deterministic for a given --seed.

Usage: gen_behaviour_log.py OUTPUT [--lines N] [--seed S] [--start 2024-03-01T00:00:00]
                                   [--truth FILE]
Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

BROWSER_UAS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36 Edg/122.0.0.0",
]
GOOGLEBOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
BINGBOT_UA = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
API_UA = "inventory-sync/3.2 (python-requests/2.31.0)"
MONITOR_UA = "UptimeRobot/2.0 (+http://www.uptimerobot.com/)"
SCANNER_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/81.0.4044.129 Safari/537.36"
BOT_UAS = ["python-requests/2.28.1", "Go-http-client/1.1", "curl/7.88.1", "Mozilla/5.0 zgrab/0.x"]

PAGES = ["/", "/about", "/pricing", "/contact", "/blog", "/docs", "/docs/install", "/docs/api",
         "/features", "/careers", "/support", "/search", "/products", "/products/widget",
         "/products/gadget", "/cart", "/account", "/news", "/faq", "/terms", "/privacy"]
ASSETS = ["/static/css/site.css", "/static/js/app.js", "/static/js/vendor.js",
          "/static/img/logo.svg", "/static/img/hero.jpg", "/static/fonts/inter.woff2",
          "/static/img/icon-1.png", "/static/img/icon-2.png", "/static/img/photo-3.webp"]
PROBE_PATHS = [
    "/.env", "/.git/config", "/wp-login.php", "/admin.php", "/phpmyadmin/", "/.aws/credentials",
    "/backup.zip", "/config.php.bak", "/wp-admin/setup-config.php", "/.DS_Store", "/server-status",
    "/phpinfo.php", "/.git/HEAD", "/xmlrpc.php", "/admin/", "/administrator/", "/login.php",
    "/shell.php", "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php", "/.env.production",
    "/api/.env", "/laravel/.env", "/wp-config.php.bak", "/db.sql", "/dump.sql", "/.htpasswd",
    "/cgi-bin/luci", "/actuator/env", "/solr/admin/info/system", "/console", "/manager/html",
    "/old/", "/new/", "/test/", "/dev/", "/staging/", "/backup/", "/bak/", "/tmp/", "/temp/",
    "/upload/", "/uploads/", "/files/", "/private/", "/secret/", "/config/", "/conf/", "/db/",
    "/sql/", "/data/", "/logs/", "/log/", "/debug/", "/install/", "/setup/", "/.svn/entries",
    "/.hg/hgrc", "/id_rsa", "/.ssh/id_rsa", "/sftp-config.json", "/.vscode/sftp.json",
    "/docker-compose.yml", "/web.config", "/info.php", "/test.php", "/pma/", "/myadmin/",
    "/mysql/", "/HNAP1", "/boaform/admin/formLogin", "/setup.php", "/install.php",
    "/wp-content/plugins/revslider/", "/wp-includes/wlwmanifest.xml", "/user/login",
    "/.well-known/security.txt", "/robots.txt", "/sitemap.xml",
]
STUFFING_DOMAINS = ["gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "mail.ru", "web.de"]


class Log:
    """Collects (time, line) pairs and writes them in time order."""

    def __init__(self, start: dt.datetime) -> None:
        self.start = start
        self.items: list[tuple[float, int, str]] = []

    def add(self, t: float, ip: str, method: str, path: str, status: int, size: int,
            ua: str, user: str = "-", referer: str = "-") -> None:
        ts = self.start + dt.timedelta(seconds=t)
        stamp = "%02d/%s/%04d:%02d:%02d:%02d +0000" % (
            ts.day, MONTHS[ts.month - 1], ts.year, ts.hour, ts.minute, ts.second)
        line = f'{ip} - {user} [{stamp}] "{method} {path} HTTP/1.1" {status} {size} "{referer}" "{ua}"'
        self.items.append((t, len(self.items), line))

    def __len__(self) -> int:
        return len(self.items)


def iso(start: dt.datetime, t: float) -> str:
    return (start + dt.timedelta(seconds=int(t))).strftime("%Y-%m-%dT%H:%M:%SZ")


class IpPool:
    """Unique public-looking addresses, never reused across actors."""

    def __init__(self, rnd: random.Random) -> None:
        self.rnd = rnd
        self.used: set[str] = set()

    def take(self, prefix: str | None = None) -> str:
        while True:
            if prefix is not None:
                ip = f"{prefix}.{self.rnd.randint(2, 254)}"
            else:
                first = self.rnd.choice([24, 31, 37, 46, 62, 73, 77, 81, 86, 88, 92, 98, 109,
                                         128, 141, 151, 176, 178, 188, 195, 212, 217])
                ip = f"{first}.{self.rnd.randint(0, 255)}.{self.rnd.randint(0, 255)}.{self.rnd.randint(1, 254)}"
            if ip not in self.used:
                self.used.add(ip)
                return ip


def generate(lines: int, seed: int, start: dt.datetime) -> tuple[Log, dict]:
    rnd = random.Random(seed)
    pool = IpPool(rnd)
    log = Log(start)
    duration = max(2 * 3600.0, lines / 12.0)
    small = lines < 50_000
    attacks: list[dict] = []
    benign: list[dict] = []

    # --- Attacks, at fixed fractions of the period. ---
    def attack_start(frac: float) -> float:
        return duration * frac + rnd.uniform(0, 60)

    # Path probing: a scanner walking a word list, mostly 404.
    ip = pool.take("45.155.205")
    t = t0 = attack_start(0.15)
    probes = PROBE_PATHS[:]
    rnd.shuffle(probes)
    for path in probes:
        status = 200 if path in ("/robots.txt", "/sitemap.xml") else (403 if path in ("/.htpasswd", "/server-status") else 404)
        log.add(t, ip, "GET", path, status, 162 if status != 200 else 512, SCANNER_UA)
        t += rnd.uniform(0.1, 0.6)
    attacks.append({"type": "path_probing", "ips": [ip], "start": iso(start, t0), "end": iso(start, t),
                    "lines": len(probes), "expected": ["http-path-probing", "http-sensitive-files"]})

    # HTTP login brute force: one address, one user.
    ip = pool.take("185.220.101")
    t = t0 = attack_start(0.30)
    n = 60
    for _ in range(n):
        log.add(t, ip, "POST", "/login", 401, 48, "python-requests/2.31.0", user="admin",
                referer="-")
        t += rnd.uniform(1.5, 4.0)
    attacks.append({"type": "http_bruteforce", "ips": [ip], "user": "admin", "start": iso(start, t0),
                    "end": iso(start, t), "lines": n,
                    "expected": ["http-auth-bruteforce", "http-login-flood"]})

    # Credential stuffing: one address, many users, a slow pace.
    ip = pool.take("193.42.33")
    t = t0 = attack_start(0.45)
    n = 50
    users = [f"{rnd.choice(['j', 'm', 'a', 's', 'k'])}{rnd.choice(['smith', 'lee', 'brown', 'garcia', 'muller', 'rossi'])}{rnd.randint(1, 999)}@{rnd.choice(STUFFING_DOMAINS)}" for _ in range(n)]
    for i, u in enumerate(users):
        status = 302 if i == 31 else 401
        log.add(t, ip, "POST", "/login", status, 48, BROWSER_UAS[0], user=u, referer="https://shop.example/login")
        t += rnd.uniform(10, 30)
    attacks.append({"type": "credential_stuffing", "ips": [ip], "users": len(users), "start": iso(start, t0),
                    "end": iso(start, t), "lines": n, "expected": ["credential-stuffing"]})

    # Slow distributed brute force: many addresses, one user, one attempt each.
    t = t0 = attack_start(0.60)
    ips = [pool.take() for _ in range(15)]
    for ip in ips:
        log.add(t, ip, "POST", "/login", 401, 48, rnd.choice(BROWSER_UAS), user="alice",
                referer="https://shop.example/login")
        t += rnd.uniform(180, 300)
    attacks.append({"type": "distributed_bruteforce", "ips": ips, "user": "alice", "start": iso(start, t0),
                    "end": iso(start, t), "lines": len(ips), "expected": ["distributed-bruteforce"]})

    # Request flood: 60 requests a second from one address.
    ip = pool.take("91.240.118")
    t = t0 = attack_start(0.75)
    n = 500 if small else 3000
    for i in range(n):
        log.add(t + i / 60.0, ip, "GET", rnd.choice(["/search", "/", "/products"]), 200, 4096,
                "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36")
    attacks.append({"type": "request_flood", "ips": [ip], "start": iso(start, t0),
                    "end": iso(start, t0 + n / 60.0), "lines": n, "expected": ["http-request-flood"]})

    attack_lines = len(log)
    budget = max(lines - attack_lines, 0)

    # --- Benign actors. ---
    # Uptime monitor: /health every 30 s.
    ip = pool.take()
    t = rnd.uniform(0, 30)
    count = 0
    while t < duration and count < budget * 0.05:
        log.add(t, ip, "GET", "/health", 200, 2, MONITOR_UA)
        t += 30
        count += 1
    benign.append({"actor": "uptime_monitor", "ips": [ip]})

    # API client: steady polling, about 20% of the lines.
    ip = pool.take()
    n = int(budget * 0.20)
    step = duration / max(n, 1)
    for i in range(n):
        path = f"/api/v1/items?page={i % 40 + 1}" if i % 5 else "/api/v1/orders?since=latest"
        log.add(i * step + rnd.uniform(0, step * 0.3), ip, "GET", path, 200, rnd.randint(800, 9000),
                API_UA, user="svc-sync")
    benign.append({"actor": "api_client", "ips": [ip], "rate_per_s": round(1 / step, 3)})

    # Crawlers: about 10% of the lines, 3% of them 404.
    crawler_ips = [pool.take("66.249.66") for _ in range(3)] + [pool.take("157.55.39")]
    n = int(budget * 0.10)
    for i in range(n):
        k = i % len(crawler_ips)
        ua = BINGBOT_UA if k == 3 else GOOGLEBOT_UA
        t = rnd.uniform(0, duration)
        if rnd.random() < 0.03:
            path, status = f"/blog/{rnd.randint(2012, 2020)}/removed-post-{rnd.randint(1, 99999)}", 404
        elif rnd.random() < 0.02:
            path, status = "/robots.txt", 200
        else:
            path, status = f"/blog/{rnd.randint(2012, 2024)}/post-{rnd.randint(1, 5000)}", 200
        log.add(t, crawler_ips[k], "GET", path, status, rnd.randint(2000, 40000), ua)
    benign.append({"actor": "crawlers", "ips": crawler_ips})

    # Office behind one NAT address: logins each morning (or early in a short log), then
    # browsing; about 15% of the lines.
    nat = pool.take("198.51.100")
    employees = [f"employee{i:02d}" for i in range(60)]
    days = max(1, int(duration // 86400) + (1 if duration % 86400 else 0))
    n = int(budget * 0.15)
    per_login = max(1, n // (len(employees) * days))
    typos = {7, 27, 47}
    for day in range(days):
        base = day * 86400.0 + (8 * 3600.0 if duration >= 86400 else 0.0)
        window = min(3600.0, duration * 0.4)
        for k, user in enumerate(employees):
            t = base + rnd.uniform(0, window)
            if t >= duration:
                continue
            ua = BROWSER_UAS[k % len(BROWSER_UAS)]
            if k in typos and day == 0:
                log.add(t - rnd.uniform(5, 15), nat, "POST", "/login", 401, 48, ua, user=user,
                        referer="https://shop.example/login")
            log.add(t, nat, "POST", "/login", 302, 0, ua, user=user, referer="https://shop.example/login")
            bt = t
            for _ in range(per_login - 1):
                bt += rnd.uniform(5, 120)
                if bt >= duration:
                    break
                path = rnd.choice(["/account", "/dashboard", "/api/v1/items", "/products", "/static/js/app.js"])
                log.add(bt, nat, "GET", path, 200, rnd.randint(500, 20000), ua)
    benign.append({"actor": "office_nat", "ips": [nat], "users": len(employees)})

    # One person who mistypes a password twice.
    ip = pool.take()
    t = duration * 0.5 + rnd.uniform(0, 600)
    log.add(t, ip, "GET", "/login", 200, 3000, BROWSER_UAS[2])
    log.add(t + 9, ip, "POST", "/login", 401, 48, BROWSER_UAS[2], user="carol", referer="https://shop.example/login")
    log.add(t + 17, ip, "POST", "/login", 401, 48, BROWSER_UAS[2], user="carol", referer="https://shop.example/login")
    log.add(t + 26, ip, "POST", "/login", 302, 0, BROWSER_UAS[2], user="carol", referer="https://shop.example/login")
    log.add(t + 27, ip, "GET", "/account", 200, 8000, BROWSER_UAS[2])
    benign.append({"actor": "mistyping_user", "ips": [ip], "user": "carol"})

    # Background bots that try one well-known path once.
    bots = []
    for path in ["/.env", "/wp-login.php", "/.git/config", "/phpmyadmin/", "/xmlrpc.php"]:
        ip = pool.take()
        log.add(rnd.uniform(0, duration), ip, "GET", path, 404, 162, rnd.choice(BOT_UAS))
        bots.append(ip)
    benign.append({"actor": "single_probe_bots", "ips": bots})

    # Browsers: the rest. Sessions of a few pages, each with a burst of assets.
    browser_ips: list[str] = []
    n_ips = max(50, (lines - len(log)) // 60)
    for _ in range(n_ips):
        browser_ips.append(pool.take())
    customers = [f"customer{i}" for i in range(max(20, n_ips // 4))]
    # Browsers go to their own log, cut to exactly the lines still wanted, so the cut
    # never removes an attack or another actor's line.
    needed = lines - len(log)
    main_log, log = log, Log(start)
    while len(log) < needed:
        ip = rnd.choice(browser_ips)
        ua = BROWSER_UAS[sum(map(ord, ip)) % len(BROWSER_UAS)]
        t = rnd.uniform(0, duration - 600)
        for _ in range(rnd.randint(1, 6)):
            page = rnd.choice(PAGES)
            status = 404 if rnd.random() < 0.01 else 200
            if status == 404:
                page = f"/blog/old-article-{rnd.randint(1, 400)}"
            log.add(t, ip, "GET", page, status, rnd.randint(3000, 60000), ua, referer="https://www.google.com/")
            if status == 200:
                for asset in rnd.sample(ASSETS, rnd.randint(3, len(ASSETS))):
                    log.add(t + rnd.uniform(0.05, 1.5), ip, "GET", asset, rnd.choice([200, 200, 304]),
                            rnd.randint(300, 90000), ua, referer=f"https://shop.example{page}")
                if rnd.random() < 0.05:
                    log.add(t + 1.6, ip, "GET", "/favicon.ico", 404, 162, ua)
            if rnd.random() < 0.04:
                user = rnd.choice(customers)
                lt = t + rnd.uniform(5, 20)
                if rnd.random() < 0.03:
                    log.add(lt, ip, "POST", "/login", 401, 48, ua, user=user, referer="https://shop.example/login")
                    lt += rnd.uniform(5, 15)
                log.add(lt, ip, "POST", "/login", 302, 0, ua, user=user, referer="https://shop.example/login")
            t += rnd.uniform(5, 90)
    benign.append({"actor": "browsers", "ips": browser_ips})

    browsers = log.items[:max(needed, 0)]
    log = main_log
    log.items.extend((t, len(log.items) + i, line) for i, (t, _, line) in enumerate(browsers))
    log.items.sort()
    truth = {
        "generator": "tools/gen_behaviour_log.py",
        "seed": seed,
        "lines": len(log.items),
        "start": iso(start, 0),
        "end": iso(start, log.items[-1][0] if log.items else 0),
        "attacks": attacks,
        "benign": benign,
    }
    return log, truth


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("output")
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start", default="2024-03-01T00:00:00")
    ap.add_argument("--truth", help="write the ground truth JSON here")
    args = ap.parse_args()
    if args.lines < 2000:
        ap.error("--lines must be at least 2000 (the attacks alone take about 800)")
    start = dt.datetime.fromisoformat(args.start).replace(tzinfo=dt.timezone.utc)
    log, truth = generate(args.lines, args.seed, start)
    with open(args.output, "w", encoding="ascii") as f:
        for _, _, line in log.items:
            f.write(line)
            f.write("\n")
    if args.truth:
        with open(args.truth, "w", encoding="utf-8") as f:
            json.dump(truth, f, indent=1)
            f.write("\n")
    print(f"wrote {truth['lines']} lines ({truth['start']} .. {truth['end']}), "
          f"{len(truth['attacks'])} attacks", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
