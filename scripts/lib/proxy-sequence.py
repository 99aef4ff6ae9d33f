#!/usr/bin/env python3
"""Sends one fixed sequence of requests to a protecting proxy over raw sockets and
prints every answer as received, byte for byte, with what varies from run to run
masked (the `Date` header's value, request ids): the client of
scripts/proxy-same-behaviour.sh, which compares two binaries' answers and stored events.

    proxy-sequence.py --port P [--rounds N]

The sequence covers the shapes the proxy treats differently: the benchmark's GET and
POST, an attack (403), HTTP/1.0 without Host, chunked and gzip bodies, hop-by-hop and
forwarding headers, duplicate headers, HEAD and OPTIONS, an upgrade request, an
absolute-form target, a head hyper refuses, Connection: close, a pipelined pair.
"""

import argparse
import gzip
import re
import socket
import sys

UA = "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Firefox/115.0"
GET_PATH = "/tienda1/publico/anadir.jsp?id=3&nombre=Vino+Rioja&precio=100&cantidad=55&B1=A%F1adir+al+carrito"
ATTACK_PATH = "/tienda1/publico/anadir.jsp?id=3&cantidad=1%27%20OR%20%271%27%3D%271"
FORM = b"modo=registro&login=jdelgado&nombre=Jacinta&cantidad=3&B1=Registrar"


def head(method, target, headers, version="HTTP/1.1"):
    lines = [f"{method} {target} {version}"] + [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def browser(extra=()):
    return [("Host", "localhost"), ("User-Agent", UA), ("Accept", "text/html,*/*;q=0.8"),
            ("Accept-Language", "en-US,en;q=0.5"), ("Cookie", "JSESSIONID=EA414B3E327DED68")] + list(extra)


def requests():
    """(label, bytes to send, answers expected on this connection)."""
    gz = gzip.compress(FORM, mtime=0)
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(FORM), FORM)
    yield "get", head("GET", GET_PATH, browser([("Referer", "http://localhost/tienda1/")])), 1
    yield "post", head("POST", "/tienda1/miembros/editar.jsp", browser([
        ("Content-Type", "application/x-www-form-urlencoded"), ("Content-Length", str(len(FORM)))])) + FORM, 1
    yield "attack", head("GET", ATTACK_PATH, browser()), 1
    yield "http10-no-host", head("GET", "/plain?x=1", [("User-Agent", "curl/8.0")], "HTTP/1.0"), 1
    yield "chunked", head("POST", "/form", browser([
        ("Content-Type", "application/x-www-form-urlencoded"), ("Transfer-Encoding", "chunked")])) + chunked, 1
    yield "gzip-body", head("POST", "/form", browser([
        ("Content-Type", "application/x-www-form-urlencoded"), ("Content-Encoding", "gzip"),
        ("Content-Length", str(len(gz)))])) + gz, 1
    yield "hop-by-hop", head("GET", "/hop", browser([
        ("Connection", "keep-alive, X-Secret"), ("X-Secret", "drop me"), ("Keep-Alive", "timeout=5"),
        ("TE", "trailers"), ("Proxy-Connection", "keep-alive"), ("Proxy-Authorization", "Basic eDp5")])), 1
    yield "forwarded", head("GET", "/fwd", browser([
        ("X-Forwarded-For", "203.0.113.9"), ("X-Real-IP", "203.0.113.10"),
        ("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "evil.example"),
        ("X-Request-Id", "client-given-id")])), 1
    yield "duplicates", head("GET", "/dup?a=1&a=2", browser([("Accept", "text/plain"), ("X-Dup", "1"), ("X-Dup", "2")])), 1
    yield "head", head("HEAD", "/", browser()), 1
    yield "options-star", head("OPTIONS", "*", [("Host", "localhost")]), 1
    yield "root-no-ua", head("GET", "/", [("Host", "localhost")]), 1
    yield "absolute-form", head("GET", "http://localhost/abs?q=%27", [("Host", "localhost")]), 1
    yield "upgrade", head("GET", "/ws", browser([("Connection", "Upgrade"), ("Upgrade", "websocket"),
        ("Sec-WebSocket-Version", "13"), ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")])), 1
    yield "unicode-path", head("GET", "/caf%C3%A9/%E2%82%AC?n=%C3%B1", browser()), 1
    yield "pipelined", head("GET", "/p1", browser()) + head("GET", "/p2?x=%3Cb%3E", browser()), 2
    yield "close", head("GET", "/bye", browser([("Connection", "close")])), 1
    yield "bad-head", b"GET /bad HTTP/1.1\r\nHost: localhost\r\nBad Header\r\n\r\n", 1


def read_answers(sock, count, method):
    """Reads `count` answers (Content-Length or chunked, or to the close)."""
    data = b""
    out = []
    sock.settimeout(5)
    while len(out) < count:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                out.append(data)
                return out
            data += chunk
        end = data.index(b"\r\n\r\n") + 4
        head_bytes, data = data[:end], data[end:]
        text = head_bytes.decode("latin-1").lower()
        m = re.search(r"\r\ncontent-length:\s*(\d+)", text)
        if method == "HEAD" or text.startswith("http/1.1 101") or text.startswith("http/1.1 304"):
            body = b""
        elif m:
            need = int(m.group(1))
            while len(data) < need:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
            body, data = data[:need], data[need:]
        elif "transfer-encoding: chunked" in text:
            while not data.endswith(b"0\r\n\r\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
            body, data = data, b""
        else:
            try:
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            except socket.timeout:
                pass
            body, data = data, b""
        out.append(head_bytes + body)
    return out


def mask(answer):
    text = answer.decode("latin-1")
    text = re.sub(r"(?im)^(date:) .*$", r"\1 <date>", text)
    text = re.sub(r"\b[0-9a-f]{8}-[0-9a-f]+\b", "<request-id>", text)
    return text


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--rounds", type=int, default=1)
    a = ap.parse_args()
    for r in range(a.rounds):
        for label, payload, count in requests():
            sock = socket.create_connection(("127.0.0.1", a.port))
            sock.sendall(payload)
            method = payload.split(b" ", 1)[0].decode()
            try:
                answers = read_answers(sock, count, method)
            except socket.timeout:
                answers = [b"<timeout>"]
            sock.close()
            for i, answer in enumerate(answers):
                print(f"=== round {r} {label} #{i}")
                print(mask(answer))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
