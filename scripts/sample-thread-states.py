#!/usr/bin/env python3
"""Who waits for whom during an import (issue 16, `pgingest2` in docs/BENCHMARKS.md).

    sample-thread-states.py sample PID DATABASE OUT   # until PID exits
    sample-thread-states.py report OUT [N]

`sample` reads, every 0.1 s, the state (R running or runnable, S waiting, D disk) and
the CPU ticks of every thread of PID and of every PostgreSQL backend connected to
DATABASE (the server on this machine, `psql` on the PATH, backends listed once a
second); `report` prints the N threads with the most CPU and the share of samples each
spent in each state. A thread that is R while the other side is S is the bound.
"""
import os
import subprocess
import sys
import time
from collections import Counter, defaultdict


def stat(path):
    """(state, utime + stime ticks) of one /proc stat file, None once it is gone."""
    try:
        with open(path) as f:
            s = f.read()
    except OSError:
        return None
    fields = s[s.rindex(")") + 2:].split()
    return fields[0], int(fields[11]) + int(fields[12])


def backends(database):
    r = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-Atc",
         f"SELECT pid FROM pg_stat_activity WHERE datname = '{database}'"],
        capture_output=True, text=True, check=False)
    return [int(x) for x in r.stdout.split()]


def sample(pid, database, out):
    start, listed, pids = time.time(), 0.0, []
    with open(out, "w") as f:
        while os.path.exists(f"/proc/{pid}"):
            now = time.time()
            if now - listed > 1:
                pids, listed = backends(database), now
            row = [f"{now - start:.2f}"]
            try:
                tids = os.listdir(f"/proc/{pid}/task")
            except OSError:
                tids = []
            for tid in tids:
                st = stat(f"/proc/{pid}/task/{tid}/stat")
                if st:
                    row.append(f"p{tid}:{st[0]}:{st[1]}")
            for b in pids:
                st = stat(f"/proc/{b}/stat")
                if st:
                    row.append(f"b{b}:{st[0]}:{st[1]}")
            f.write(" ".join(row) + "\n")
            time.sleep(0.1)


def report(path, n):
    first, last, states = {}, {}, defaultdict(Counter)
    with open(path) as f:
        rows = [line.split() for line in f]
    for row in rows:
        for item in row[1:]:
            tid, state, ticks = item.split(":")
            first.setdefault(tid, int(ticks))
            last[tid] = int(ticks)
            states[tid][state] += 1
    print(f"{len(rows)} samples (p = the process's threads, b = backends)")
    for tid in sorted(last, key=lambda t: last[t] - first[t], reverse=True)[:n]:
        c = states[tid]
        total = sum(c.values())
        print(f"{tid:>10}  cpu {(last[tid] - first[tid]) / 100:6.2f} s  "
              f"R {c['R'] / total:6.1%}  S {c['S'] / total:6.1%}  D {c['D'] / total:6.1%}")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "sample":
        sample(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    elif len(sys.argv) in (3, 4) and sys.argv[1] == "report":
        report(sys.argv[2], int(sys.argv[3]) if len(sys.argv) == 4 else 8)
    else:
        sys.exit(__doc__)
