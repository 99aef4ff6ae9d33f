#!/usr/bin/env python3
"""Sends N requests of one fixed shape over one keep-alive connection and checks each
answer's status: the client of scripts/bench-ml-cost-ir.sh (its cost is outside the
measured process, so a plain Python client is fine).

    send-requests.py --port P --case get|post|attack [--check KEY] [--count N]
                     [--expect STATUS]

The shapes are those of shared/peers/bench.sh (the same path, query, ~500 B form body
and browser headers), so instruction counts and the wrk figures describe one request.
--check KEY asks /api/v1/check about that request instead (X-Original-URI,
X-Original-Method, the body passed on, an API key of scope check).
"""

import argparse
import http.client
import sys

GET_PATH = "/tienda1/publico/anadir.jsp?id=3&nombre=Vino+Rioja&precio=100&cantidad=55&B1=A%F1adir+al+carrito"
ATTACK_PATH = "/tienda1/publico/anadir.jsp?id=3&nombre=Vino+Rioja&precio=100&cantidad=1%27%20OR%20%271%27%3D%271&B1=A%F1adir+al+carrito"
POST_PATH = "/tienda1/miembros/editar.jsp"
POST_BODY = (
    "modo=registro&login=jdelgado&password=Sk9pTr4x21&nombre=Jacinta&apellidos=Delgado+Rubio"
    "&email=jacinta.delgado%40correo.example&dni=48213577K&direccion=Calle+Mayor+12%2C+3B"
    "&ciudad=Valladolid&cp=47001&provincia=Valladolid&ntc=4556737586899855&telefono=983123456"
    "&movil=600123456&nacimiento=12%2F04%2F1985&idioma=es&boletin=si"
    "&comentarios=Entrega+por+la+tarde+preferiblemente+entre+las+cinco+y+las+ocho+gracias"
    "&referencia=PED20101123&producto=Jamon+Iberico+de+bellota&cantidad=3&precio=39&B1=Registrar"
).encode()
HEADERS = {
    "Host": "localhost",
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Firefox/115.0",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-US,en;q=0.5",
    "Accept-Encoding": "gzip, deflate",
    "Cookie": "JSESSIONID=EA414B3E327DED6875848530C864BD8F",
}


def shape(case):
    """(method, path, body) of a case."""
    if case == "get":
        return "GET", GET_PATH, None
    if case == "post":
        return "POST", POST_PATH, POST_BODY
    if case == "attack":
        return "GET", ATTACK_PATH, None
    raise SystemExit(f"send-requests.py: unknown case {case}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--case", required=True)
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--check", metavar="KEY", help="ask /api/v1/check with this API key")
    ap.add_argument("--expect", type=int, help="the status every answer must have")
    a = ap.parse_args()
    method, path, body = shape(a.case)
    headers = dict(HEADERS)
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    if a.check:
        headers.update({"X-Api-Key": a.check, "X-Original-URI": path,
                        "X-Original-Method": method, "X-Real-IP": "198.51.100.1"})
        path = "/api/v1/check"
    conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=600)
    statuses = {}
    for _ in range(a.count):
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        statuses[resp.status] = statuses.get(resp.status, 0) + 1
        if resp.will_close:
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=600)
    conn.close()
    summary = " ".join(f"{s}x{n}" for s, n in sorted(statuses.items()))
    if a.expect is not None and set(statuses) != {a.expect}:
        print(f"send-requests.py: {a.case}: expected {a.expect}, got {summary}", file=sys.stderr)
        return 1
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
