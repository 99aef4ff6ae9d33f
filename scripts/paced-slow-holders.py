#!/usr/bin/env python3
"""Who held the proxy's CPU while its slow requests waited, counted over all of them, and
how long the process's own non-worker threads run at a stretch (issue 16, paced12).

    bash scripts/paced-capture.sh PROXY_PORT UPSTREAM_PORT PREFIX 4 PID   # saves PREFIX.tids
    python3 scripts/paced-slow-holders.py PREFIX PROXY_PORT UPSTREAM_PORT [--slow MS] [--cpu N]

Reads PREFIX.pcap, PREFIX.sched.txt, PREFIX.offset and PREFIX.tids (the instance's
thread ids, `TID COMM` a line). The worker is the instance's `tokio-rt-worker` thread
switched in most often on the CPU (default 1); "own" is every other thread of the
instance (the blocking pool: store writes). Prints

- the own threads' runs on the CPU: count, percentiles, how many over 0.25/0.5/1/2 ms
  (a run: switched in until switched out; the writer's slice between yields shows here);
- for the requests of the recorded window that took >= --slow ms (default 1) on the
  wire (proxy-pcap-legs.py's total), the largest user of the CPU inside each one's
  window (worker, own, nginx, idle, foreign), how many requests each was the largest
  in, and the longest single run of it inside those windows (p50, max);
- the same for the slowest 1% of the window's requests.
"""
import importlib.util
import os
import sys
from collections import Counter, defaultdict

here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("stall", os.path.join(here, "proxy-stall-cpu.py"))
stall = importlib.util.module_from_spec(spec)
spec.loader.exec_module(stall)


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))] if s else float("nan")


def main():
    args = sys.argv[1:]
    slow, cpu = 1.0, 1
    for flag in ("--slow", "--cpu"):
        if flag in args:
            i = args.index(flag)
            if flag == "--slow":
                slow = float(args[i + 1])
            else:
                cpu = int(args[i + 1])
            del args[i : i + 2]
    prefix, proxy, upstream = args[0], int(args[1]), int(args[2])
    tids = {}
    for line in open(prefix + ".tids"):
        parts = line.split(None, 1)
        if parts:
            tids[int(parts[0])] = parts[1].strip() if len(parts) > 1 else ""
    offset = float(open(prefix + ".offset").read())
    runs = stall.runs(prefix + ".sched.txt")[cpu]
    ins = Counter(tid for _, _, comm, tid in runs if tid in tids and tids[tid].startswith("tokio-rt"))
    if not ins:
        sys.exit("no run of the instance's threads on that CPU")
    worker = ins.most_common(1)[0][0]

    def kind(comm, tid):
        if tid == worker:
            return "worker"
        if tid in tids:
            return "own"
        if comm == "nginx":
            return "nginx"
        if comm.startswith("swapper"):
            return "idle"
        return "foreign"

    own = [(e - s) * 1e3 for s, e, comm, tid in runs if kind(comm, tid) == "own"]
    print(f"worker {worker}; own threads' runs on cpu{cpu}: {len(own)}, {sum(own):.1f} ms in all, "
          f"p50 {pct(own, 50):.3f} p90 {pct(own, 90):.3f} p99 {pct(own, 99):.3f} max {max(own, default=0):.3f} ms")
    print("  over 0.25 / 0.5 / 1 / 2 ms: " + " / ".join(str(sum(x > lim for x in own)) for lim in (0.25, 0.5, 1, 2)))
    by_thread = defaultdict(list)
    for s, e, comm, tid in runs:
        if kind(comm, tid) == "own":
            by_thread[f"{comm}/{tid}"].append((e - s) * 1e3)
    for name, v in sorted(by_thread.items(), key=lambda kv: -sum(kv[1]))[:4]:
        print(f"  {name}: {len(v)} runs, {sum(v):.1f} ms, max {max(v):.3f} ms")

    first, last = runs[0][0], runs[-1][1]
    rows = [r for r in stall.requests(prefix + ".pcap", proxy, upstream)
            if r[2] - offset >= first and r[6] - offset <= last]
    totals = [r[0] * 1e3 for r in rows]
    p99 = pct(totals, 99)
    print(f"requests in the window: {len(rows)}, total p50 {pct(totals, 50):.3f} p99 {p99:.3f} "
          f"p99.9 {pct(totals, 99.9):.3f} ms")
    for label, limit in ((f">= {slow} ms", slow), (f"slowest 1% (>= {p99:.3f} ms)", p99)):
        chosen = [r for r in rows if r[0] * 1e3 >= limit]
        largest = Counter()
        longest = defaultdict(list)
        for total, port, t0, ureq, ufirst, rfirst, rlast in chosen:
            a, b = t0 - offset, rlast - offset
            busy = defaultdict(float)
            stretch = defaultdict(float)
            for s, e, comm, tid in runs:
                if e <= a or s >= b:
                    continue
                k = kind(comm, tid)
                busy[k] += min(e, b) - max(s, a)
                stretch[k] = max(stretch[k], min(e, b) - max(s, a))
            top = max(busy.items(), key=lambda kv: kv[1])[0] if busy else "none"
            largest[top] += 1
            longest[top].append(stretch.get(top, 0) * 1e3)
        print(f"{label}: {len(chosen)} requests; the largest user of cpu{cpu} in each one's window:")
        for k, n in largest.most_common():
            v = longest[k]
            print(f"  {k:<8} {n:>5} requests, its longest run inside p50 {pct(v, 50):.3f} max {max(v):.3f} ms")


if __name__ == "__main__":
    main()
