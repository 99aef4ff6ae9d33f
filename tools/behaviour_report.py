#!/usr/bin/env python3
"""Reads what scripts/eval-behaviour.sh left in OUT and prints Palisade beside CrowdSec:
alerts per scenario, source addresses flagged, and, where a ground truth exists (the
generated log), which attacks each caught, which benign sources each flagged, and time
to first detection in log time. Python 3.11 standard library only."""
import datetime as dt
import ipaddress
import json
import os
import sqlite3
import sys

out = sys.argv[1]


def ip_of(blob):
    if blob is None:
        return None
    a = ipaddress.IPv6Address(bytes(blob))
    return str(a.ipv4_mapped or a)


def palisade(name):
    db = sqlite3.connect(os.path.join(out, f"{name}.data", "palisade.db"))
    alerts, signatures = [], 0
    for ts, ip, source, evidence in db.execute(
        "SELECT ts, client_ip, source, evidence FROM threats ORDER BY ts"
    ):
        if source != "scenario":
            signatures += 1
            continue
        ev = json.loads(evidence)
        head = next((e for e in ev if e.get("location") == "behaviour"), {})
        try:
            group = json.loads(head.get("decoded_value", "{}")).get("group") or {}
        except ValueError:
            group = {}
        alerts.append({"scenario": head.get("part", "?"), "ip": ip_of(ip), "user": group.get("user"),
                       "at": dt.datetime.fromtimestamp(ts / 1e6, dt.timezone.utc)})
    return alerts, signatures


def crowdsec(name):
    alerts, summary = [], {}
    path = os.path.join(out, f"{name}.crowdsec.jsonl")
    if not os.path.exists(path):
        return alerts, summary
    for line in open(path):
        line = line.strip()
        if not line:
            continue
        a = json.loads(line)
        if a.get("kind") == "summary":
            summary = a
            continue
        if a.get("kind") != "alert":
            continue
        stop = a.get("stop_at", "").replace(" +0000 UTC", "")
        try:
            at = dt.datetime.strptime(stop[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.timezone.utc)
        except ValueError:
            at = None
        alerts.append({"scenario": a.get("scenario"), "ip": a.get("source_ip"), "at": at})
    return alerts, summary


def timing(name, tool):
    try:
        if tool == "palisade":
            e, user, sys_, rss = open(os.path.join(out, f"{name}.palisade.time")).read().split()
            return float(e), float(user) + float(sys_), int(rss) // 1024
    except (OSError, ValueError):
        pass
    return None


def by_scenario(alerts):
    counts = {}
    for a in alerts:
        counts[a["scenario"]] = counts.get(a["scenario"], 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"


for name in ("openssh", "linux", "generated-nginx"):
    if not os.path.isdir(os.path.join(out, f"{name}.data")):
        continue
    p, sig = palisade(name)
    c, summary = crowdsec(name)
    lines = None
    print(f"\n## {name}")
    t = timing(name, "palisade")
    cs_file = (summary.get("files") or [{}])[0]
    if t:
        print(f"Palisade: {len(p)} scenario alerts ({by_scenario(p)}), {sig} signature threats; "
              f"{t[0]:.2f} s wall, {t[1]:.2f} s CPU, {t[2]} MB RSS (parse + store + both detection stages)")
    print(f"CrowdSec: {len(c)} alerts ({by_scenario(c)}); "
          f"{cs_file.get('wall_s', '?')} s wall, {cs_file.get('cpu_s', '?')} s CPU, "
          f"{int(cs_file.get('max_rss_kb', 0)) // 1024} MB RSS, {cs_file.get('lines_per_s', '?')} lines/s")
    pi = sorted({a["ip"] for a in p if a["ip"]})
    ci = sorted({a["ip"] for a in c if a["ip"]})
    print(f"sources flagged: Palisade {len(pi)}, CrowdSec {len(ci)}; "
          f"only Palisade: {sorted(set(pi) - set(ci))}; only CrowdSec: {sorted(set(ci) - set(pi))}")
    truth_path = os.path.join(out, f"{name.split('-')[0]}.truth.json")
    if not os.path.exists(truth_path):
        continue
    truth = json.load(open(truth_path))
    attackers = set()
    print("| attack | Palisade | first detection (log time) | CrowdSec | first detection (log time) |")
    print("| --- | --- | --- | --- | --- |")
    for atk in truth["attacks"]:
        ips = set(atk["ips"])
        attackers |= ips
        start = dt.datetime.fromisoformat(atk["start"].replace("Z", "+00:00"))
        row = [atk["type"]]
        for alerts in (p, c):
            # Attacks spread over many addresses are found by the user they target.
            hits = [a for a in alerts if a["ip"] in ips
                    or (len(ips) > 1 and atk.get("user") and a.get("user") == atk["user"])]
            if not hits:
                row += ["missed", "-"]
                continue
            first = min((a["at"] for a in hits if a["at"]), default=None)
            names = sorted({a["scenario"] for a in hits})
            ips_hit = len({a["ip"] for a in hits if a["ip"]})
            by = f"{ips_hit}/{len(ips)} IPs" if ips_hit else f"user {atk.get('user')}"
            row += [f"yes ({', '.join(names)}; {by})",
                    f"+{int((first - start).total_seconds())} s" if first else "?"]
        print("| " + " | ".join(row) + " |")
    for label, alerts in (("Palisade", p), ("CrowdSec", c)):
        benign = sorted({a["ip"] for a in alerts if a["ip"] and a["ip"] not in attackers})
        print(f"benign sources flagged by {label}: {len(benign)} {benign[:10]}")
