#!/usr/bin/env python3
"""Opens many idle (or half-sent) connections to a listener, then checks whether a new
client is still answered, and reports the server's open descriptors before, during and
after. Evidence for the connection-cap and header/idle-timeout work (issue 19, finding 6).

    scripts/flood-connections.py --pid PID --port PORT [--count 300] [--half] [--path /livez]
"""
import argparse
import os
import socket
import time


def fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def fresh_request(port, path, timeout):
    start = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            data = s.recv(256)
        return data.split(b"\r\n", 1)[0].decode(errors="replace"), time.monotonic() - start
    except OSError as e:
        return f"error: {e}", time.monotonic() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--half", action="store_true", help="send half a request head")
    ap.add_argument("--path", default="/livez")
    ap.add_argument("--wait", type=float, default=0.0, help="seconds to wait before the fresh request")
    a = ap.parse_args()
    print(f"server descriptors at rest: {fds(a.pid)}")
    held, refused = [], 0
    for _ in range(a.count):
        try:
            s = socket.create_connection(("127.0.0.1", a.port), timeout=2)
            if a.half:
                s.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n")
            held.append(s)
        except OSError:
            refused += 1
    time.sleep(0.5)
    print(f"{len(held)} connections held ({refused} refused at connect); server descriptors: {fds(a.pid)}")
    if a.wait:
        time.sleep(a.wait)
    status, secs = fresh_request(a.port, a.path, 10)
    print(f"a new client after {a.wait:.1f}s: {status!r} in {secs:.3f}s; server descriptors: {fds(a.pid)}")
    closed = 0
    for s in held:
        s.setblocking(False)
        try:
            if s.recv(1) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    print(f"held connections closed by the server so far: {closed} of {len(held)}")
    for s in held:
        s.close()


if __name__ == "__main__":
    main()
