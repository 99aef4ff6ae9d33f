#!/usr/bin/env python3
"""How long a runtime worker waited for its CPU, and who had the CPU meanwhile (issue 16, paced1).

    perf sched record -C 1 -o SCHED.data -- sleep 4      # while the paced benchmark runs
    perf script -i SCHED.data -F time,cpu,event,trace > SCHED.txt
    python3 scripts/worker-waits.py SCHED.txt WORKER_TID [OWN_TIDS] [CPU]

A wait starts when the worker is woken (sched_waking) or preempted (switched out
runnable, prev_state R) and ends when it is switched in. Prints the waits' percentiles,
the count and total of waits over 0.5 / 1 / 2 ms, and for those over 1 ms which threads
ran meanwhile on CPU (default 1, the worker's): the process's own other threads (OWN_TIDS, comma-separated; else every
`tokio-rt-worker` but the worker), nginx, idle, or anything else ("foreign").
"""
import re
import sys
from collections import defaultdict

SW = re.compile(r"^\s*\[(\d+)\]\s+([\d.]+):\s+sched:sched_switch:\s+prev_comm=(.*?) prev_pid=(\d+) prev_prio=\d+ prev_state=(\S+) ==> next_comm=(.*?) next_pid=(\d+)")
WK = re.compile(r"^\s*\[(\d+)\]\s+([\d.]+):\s+sched:sched_waking:\s+comm=(.*?) pid=(\d+)")


def main():
    path, worker = sys.argv[1], int(sys.argv[2])
    own = {int(x) for x in sys.argv[3].split(",")} if len(sys.argv) > 3 and sys.argv[3] else None
    wcpu = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    waits = []
    start = None
    cur = {}  # cpu -> (since, comm, tid)
    during = None
    for line in open(path, errors="replace"):
        m = SW.match(line)
        if m:
            cpu, t = int(m.group(1)), float(m.group(2))
            pcomm, ppid, pstate, ncomm, npid = m.group(3), int(m.group(4)), m.group(5), m.group(6), int(m.group(7))
            if cpu == wcpu and cpu in cur and during is not None and start is not None:
                s, c, tid = cur[cpu]
                during[(c, tid)] += t - max(s, start)
            cur[cpu] = (t, ncomm, npid)
            if ppid == worker and pstate.startswith("R") and start is None:
                start, during = t, defaultdict(float)
            if npid == worker and start is not None:
                waits.append((t - start, during))
                start, during = None, None
            continue
        m = WK.match(line)
        if m and int(m.group(4)) == worker and start is None:
            start, during = float(m.group(2)), defaultdict(float)
    if not waits:
        sys.exit("no waits of that thread")
    ms = sorted(w * 1e3 for w, _ in waits)
    pct = lambda p: ms[min(len(ms) - 1, int(p / 100 * len(ms)))]
    print(f"worker {worker}: {len(ms)} waits, p50 {pct(50):.3f} p99 {pct(99):.3f} p99.9 {pct(99.9):.3f} max {ms[-1]:.3f} ms")
    for lim in (0.5, 1, 2):
        over = [x for x in ms if x > lim]
        print(f"  over {lim} ms: {len(over)} waits, {sum(over):.1f} ms in all")
    cat = defaultdict(float)
    for w, d in waits:
        if w <= 0.001:
            continue
        for (c, tid), v in d.items():
            if tid == worker:
                continue
            if (own is not None and tid in own) or (own is None and c.startswith("tokio-rt")):
                k = "own threads"
            elif c == "nginx":
                k = "nginx"
            elif c.startswith("swapper"):
                k = "idle"
            else:
                k = "foreign"
            cat[k] += v
    print("  who ran during the waits over 1 ms (ms):", {k: round(v * 1e3, 1) for k, v in sorted(cat.items(), key=lambda kv: -kv[1])})


if __name__ == "__main__":
    main()
