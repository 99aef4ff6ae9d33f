#!/usr/bin/env python3
"""Per-request figures of one callgrind dump, as one JSON line (the callgrind benches).

    callgrind-figures.py DUMP REQUESTS [KEY=VALUE ...]

Prints the KEY=VALUE pairs first (numbers as numbers), then `requests` and, per
request: `ir_per_req` (every instruction of the process in the dump),
`conn_ir_per_req` (inclusive instructions of hyper's `Dispatcher::poll_catch`: the
HTTP connection tasks, i.e. the request path) and `judge_ir_per_req` (inclusive
instructions of `Guard::judge`, the decision); null when the dump has no such frame.
"""
import json
import re
import subprocess
import sys

JUDGE = "palisade_pipeline::guard::Guard::judge"
CONNECTIONS = "dispatch.rs:hyper::proto::h1::dispatch::Dispatcher<D,Bs,I,T>::poll_catch"


def value(text):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def main():
    path, n = sys.argv[1], int(sys.argv[2])
    out = {k: value(v) for k, v in (a.split("=", 1) for a in sys.argv[3:])}
    total = None
    for line in open(path, errors="replace"):
        if line.startswith(("totals:", "summary:")):
            total = int(line.split()[1])
    ann = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", "--threshold=100", path],
        capture_output=True,
        text=True,
    ).stdout

    def inclusive(marker):
        for line in ann.splitlines():
            if marker in line:
                return int(re.match(r"\s*([\d,]+)", line).group(1).replace(",", ""))
        return None

    def per(x):
        return round(x / n) if x else None

    out.update(
        requests=n,
        ir_per_req=per(total),
        conn_ir_per_req=per(inclusive(CONNECTIONS)),
        judge_ir_per_req=per(inclusive(JUDGE)),
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
