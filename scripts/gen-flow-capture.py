#!/usr/bin/env python3
"""Writes a generated pcap for the flow benchmarks (docs/BENCHMARKS.md).

  gen-flow-capture.py concurrent N OUT   N SYNs from N distinct clients (10.x.y.z:40000)
                                          to 192.0.2.1:80 within 60 s: N flows open at
                                          once at the end (idle timeout 120 s)
  gen-flow-capture.py mixed N OUT        N complete TCP exchanges (handshake, an HTTP
                                          request, a 1,400-byte answer, FIN/ACK: 8
                                          packets each) from 1,000 clients to 50 servers
"""
import struct
import sys


def eth_ip_tcp(src, dst, sport, dport, flags, payload=b"", seq=1):
    eth = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00"
    total = 40 + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 1, 0x4000, 64, 6, 0, bytes(src), bytes(dst))
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 0x50, flags, 0xFFFF, 0, 0)
    return eth + ip + tcp + payload


def main():
    mode, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    t0 = 1_700_000_000_000_000
    with open(out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))

        def pkt(ts, data):
            f.write(struct.pack("<IIII", ts // 1_000_000, ts % 1_000_000, len(data), len(data)))
            f.write(data)

        if mode == "concurrent":
            step = 60_000_000 // max(n, 1)
            for i in range(n):
                src = [10, (i >> 16) & 255, (i >> 8) & 255, i & 255]
                pkt(t0 + i * step, eth_ip_tcp(src, [192, 0, 2, 1], 40000, 80, 0x02, seq=i))
        elif mode == "mixed":
            req = b"GET /index.html HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: bench/1\r\n\r\n"
            res = b"HTTP/1.1 200 OK\r\nContent-Length: 1350\r\n\r\n" + b"x" * 1350
            t = t0
            for i in range(n):
                c = [10, 1, (i % 1000) >> 8, (i % 1000) & 255]
                s = [192, 0, 2, i % 50]
                cp = 1024 + (i // 1000) % 60000
                for up, flags, payload in [
                    (1, 0x02, b""), (0, 0x12, b""), (1, 0x10, b""), (1, 0x18, req),
                    (0, 0x18, res), (1, 0x11, b""), (0, 0x11, b""), (1, 0x10, b""),
                ]:
                    frame = eth_ip_tcp(c, s, cp, 80, flags, payload, i) if up else eth_ip_tcp(s, c, 80, cp, flags, payload, i)
                    pkt(t, frame)
                    t += 20
        else:
            sys.exit(__doc__)


if __name__ == "__main__":
    main()
