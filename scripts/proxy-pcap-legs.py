#!/usr/bin/env python3
"""Where a proxied request's time goes, from a loopback capture (issue 16, paced1).

    tcpdump -i lo -s 2048 -w FILE --time-stamp-precision=nano 'tcp port PROXY or tcp port UPSTREAM'
    python3 scripts/proxy-pcap-legs.py FILE PROXY_PORT UPSTREAM_PORT [--slow MS] [--show N]

Each client request (a segment with payload to PROXY_PORT) is paired with the response
that follows it on the same connection (segments from PROXY_PORT up to the next request),
and, by the response's `X-Request-Id`, with the upstream exchange carrying the same id
(segments to and from UPSTREAM_PORT). For each request the kernel's timestamps give
four legs (all in ms):

    in   client request arrives -> upstream request leaves Palisade (head read, judge)
    up   upstream request       -> upstream response's first byte (nginx)
    back upstream response      -> client response's first byte (Palisade)
    tail client response's first byte -> its last byte

`total` (request -> last response byte) is what the client could see at best; a client's
own figure above it was spent in the client (or in its CPU's queue). Prints percentiles
of every leg, the slow requests' legs (total >= --slow, default 1 ms) and what else
happened on the wire just before the slowest ones.
"""
import struct
import sys
from collections import defaultdict


def packets(path):
    with open(path, "rb") as f:
        head = f.read(24)
        magic = struct.unpack("<I", head[:4])[0]
        scale = {0xA1B2C3D4: 1e-6, 0xA1B23C4D: 1e-9}.get(magic)
        if scale is None:
            sys.exit("not a little-endian pcap file")
        link = struct.unpack("<I", head[20:24])[0]
        skip = {1: 14, 113: 16, 276: 20}.get(link)
        if skip is None:
            sys.exit(f"link type {link} not handled")
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                return
            sec, frac, caplen, _ = struct.unpack("<IIII", rec)
            data = f.read(caplen)
            ip = data[skip:]
            if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 6:
                continue
            ihl = (ip[0] & 15) * 4
            total_len = struct.unpack(">H", ip[2:4])[0]
            tcp = ip[ihl:]
            sport, dport, seq, ack = struct.unpack(">HHII", tcp[:12])
            off = (tcp[12] >> 4) * 4
            flags = tcp[13]
            plen = total_len - ihl - off
            payload = tcp[off:]
            yield sec + frac * scale, sport, dport, seq, flags, plen, payload


def request_id(payload):
    for line in payload.split(b"\r\n"):
        if line.lower().startswith(b"x-request-id:"):
            return line.split(b":", 1)[1].strip()
    return None


# How a request's first segment begins (the methods the benches send).
REQUEST_STARTS = (b"GET ", b"POST ", b"HEAD ")


def exchange(t, rid):
    """A request sent at `t` (with `rid`, its X-Request-Id when known), not yet answered."""
    return {"req": t, "first": None, "last": None, "id": rid}


def answered(exchanges, t):
    """Marks a response segment at `t` on its connection's newest exchange, on both legs
    alike; returns that exchange when this is its first response segment, else None."""
    if not exchanges:
        return None
    e = exchanges[-1]
    first = e["first"] is None
    if first:
        e["first"] = t
    e["last"] = t
    return e if first else None


def pct(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


def main():
    args = sys.argv[1:]
    slow, show = 1.0, 15
    if "--slow" in args:
        i = args.index("--slow")
        slow = float(args[i + 1])
        del args[i : i + 2]
    if "--show" in args:
        i = args.index("--show")
        show = int(args[i + 1])
        del args[i : i + 2]
    path, proxy, upstream = args[0], int(args[1]), int(args[2])
    wire = []  # every packet: (t, sport, dport, plen, flags)
    client = defaultdict(list)  # client port -> [request dict]
    up_conn = defaultdict(list)  # upstream-side port -> [exchange dict]
    for t, sp, dp, seq, flags, plen, payload in packets(path):
        wire.append((t, sp, dp, plen, flags))
        if plen <= 0:
            continue
        if dp == proxy:
            if payload.startswith(REQUEST_STARTS):
                client[sp].append(exchange(t, None))
        elif sp == proxy:
            r = answered(client.get(dp), t)
            if r is not None:
                r["id"] = request_id(payload)
        elif dp == upstream:
            if payload.startswith(REQUEST_STARTS):
                up_conn[sp].append(exchange(t, request_id(payload)))
        elif sp == upstream:
            answered(up_conn.get(dp), t)
    by_id = {e["id"]: e for ex in up_conn.values() for e in ex if e["id"]}
    rows = []
    for port, reqs in client.items():
        for r in reqs:
            if r["last"] is None:
                continue
            e = by_id.get(r["id"])
            row = {"port": port, "t": r["req"], "total": (r["last"] - r["req"]) * 1e3,
                   "tail": (r["last"] - r["first"]) * 1e3}
            if e and e["first"] is not None:
                row["in"] = (e["req"] - r["req"]) * 1e3
                row["up"] = (e["first"] - e["req"]) * 1e3
                row["back"] = (r["first"] - e["last"]) * 1e3
            rows.append(row)
    rows.sort(key=lambda r: r["t"])
    print(f"requests {len(rows)}, matched to an upstream exchange {sum('in' in r for r in rows)}, "
          f"client connections {len(client)}, upstream connections {len(up_conn)}")
    print(f"{'leg':<6} {'p50':>8} {'p90':>8} {'p99':>8} {'p99.9':>8} {'max':>8}  (ms)")
    for leg in ("total", "in", "up", "back", "tail"):
        v = [r[leg] for r in rows if leg in r]
        print(f"{leg:<6} " + " ".join(f"{pct(v, p):>8.3f}" for p in (50, 90, 99, 99.9, 100)))
    slow_rows = [r for r in rows if r["total"] >= slow]
    print(f"\n{len(slow_rows)} of {len(rows)} ({100 * len(slow_rows) / max(len(rows), 1):.2f}%) took >= {slow} ms")
    t0 = rows[0]["t"] if rows else 0
    for r in sorted(slow_rows, key=lambda r: -r["total"])[:show]:
        legs = " ".join(f"{k} {r[k]:.3f}" for k in ("in", "up", "back", "tail") if k in r)
        print(f"  at {r['t'] - t0:9.4f} s port {r['port']}: total {r['total']:.3f} ({legs})")


if __name__ == "__main__":
    main()
