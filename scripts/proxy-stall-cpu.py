#!/usr/bin/env python3
"""What ran on each CPU while the slowest proxied requests waited (issue 16, paced1).

    perf sched record -k mono -C 0,1 -o SCHED.data -- sleep 4   # beside a loopback capture
    perf script -i SCHED.data -F time,cpu,event,trace > SCHED.txt
    python3 scripts/proxy-stall-cpu.py CAPTURE.pcap SCHED.txt OFFSET PROXY_PORT UPSTREAM_PORT [N]

OFFSET = CLOCK_REALTIME - CLOCK_MONOTONIC in seconds when both ran
(`python3 -c 'import time; print(time.time() - time.monotonic())'`): the capture's
timestamps are wall-clock, perf's (with -k mono) monotonic. For the N slowest requests
(default 10; legs as in proxy-pcap-legs.py) prints, per CPU, who ran how long inside
the request's window, and who ran for more than 0.3 ms at a stretch.
"""
import importlib.util
import os
import re
import sys
from collections import defaultdict

spec = importlib.util.spec_from_file_location(
    "legs", os.path.join(os.path.dirname(os.path.abspath(__file__)), "proxy-pcap-legs.py"))
legs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(legs)

SWITCH = re.compile(r"^\s*\[(\d+)\]\s+([\d.]+):\s+sched:sched_switch:\s+prev_comm=(.*?) prev_pid=(\d+) .*==> next_comm=(.*?) next_pid=(\d+)")


def runs(path):
    """Per CPU, [(start, end, comm, tid)] from sched_switch events."""
    last = {}
    out = defaultdict(list)
    for line in open(path, errors="replace"):
        m = SWITCH.match(line)
        if not m:
            continue
        cpu, t = int(m.group(1)), float(m.group(2))
        if cpu in last:
            s, comm, tid = last[cpu]
            out[cpu].append((s, t, comm, tid))
        last[cpu] = (t, m.group(5), int(m.group(6)))
    return out


def requests(pcap, proxy, upstream):
    client = defaultdict(list)
    up = defaultdict(list)
    for t, sp, dp, seq, flags, plen, payload in legs.packets(pcap):
        if plen <= 0:
            continue
        if dp == proxy and payload.startswith((b"GET ", b"POST ")):
            client[sp].append({"req": t, "first": None, "last": None, "id": None})
        elif sp == proxy and client.get(dp):
            r = client[dp][-1]
            if r["first"] is None:
                r["first"], r["id"] = t, legs.request_id(payload)
            r["last"] = t
        elif dp == upstream and payload.startswith((b"GET ", b"POST ")):
            up[sp].append({"req": t, "first": None, "id": legs.request_id(payload)})
        elif sp == upstream and up.get(dp):
            e = up[dp][-1]
            if e["first"] is None:
                e["first"] = t
    by_id = {e["id"]: e for ex in up.values() for e in ex}
    rows = []
    for port, rs in client.items():
        for r in rs:
            if r["last"] is None:
                continue
            e = by_id.get(r["id"], {})
            rows.append((r["last"] - r["req"], port, r["req"], e.get("req"), e.get("first"), r["first"], r["last"]))
    return rows


def main():
    pcap, sched, offset, proxy, upstream = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    n = int(sys.argv[6]) if len(sys.argv) > 6 else 10
    per_cpu = runs(sched)
    rows = sorted(requests(pcap, proxy, upstream), reverse=True)
    first_run = min(r[0] for c in per_cpu.values() for r in c[:1])
    last_run = max(c[-1][1] for c in per_cpu.values())
    shown = 0
    for total, port, t0, ureq, ufirst, rfirst, rlast in rows:
        a, b = t0 - offset, rlast - offset
        if a < first_run or b > last_run:
            continue
        marks = " ".join(f"{k} {(v - t0) * 1e3:.3f}" for k, v in (("up_req", ureq), ("up_resp", ufirst), ("resp", rfirst)) if v)
        print(f"\n{total * 1e3:.3f} ms, client port {port}, at mono {a:.6f}: {marks}")
        for cpu in sorted(per_cpu):
            busy = defaultdict(float)
            long = []
            for s, e, comm, tid in per_cpu[cpu]:
                if e <= a or s >= b:
                    continue
                d = min(e, b) - max(s, a)
                busy[f"{comm}/{tid}"] += d
                if e - s > 0.0003:
                    long.append(f"{comm}/{tid} {(s - a) * 1e3:+.3f}..{(e - a) * 1e3:+.3f}")
            top = sorted(busy.items(), key=lambda kv: -kv[1])[:6]
            print(f"  cpu{cpu}: " + ", ".join(f"{k} {v * 1e3:.3f}" for k, v in top))
            if long:
                print(f"    long runs: " + "; ".join(long[:6]))
        shown += 1
        if shown >= n:
            break


if __name__ == "__main__":
    main()
