#!/usr/bin/env python3
"""A labelled protocol-attack corpus for `palisade eval` (issue 17, protocol attacks).

  python3 scripts/protocol-corpus.py ../shared/data/crs-regression/v3.3.4/tests > /tmp/proto.jsonl
  palisade eval /tmp/proto.jsonl --paranoia 1

Two parts, told apart by `source` and `category`:

* OWASP CRS 3.3.4's regression tests of REQUEST-920 (protocol enforcement) and
  REQUEST-921 (protocol attack), converted as scripts/crs-corpus.py does, but with the
  HTTP version kept as the test sends it (crs-corpus.py rewrites HTTP/1.0 to 1.1) and
  the stages given as raw requests parsed too. Categories `crs-920` and `crs-921`. A
  stage that expects its rule to fire is an attack, one that expects it silent is
  normal. These were not tuned on: the rules were written from the technique list of
  the issue, then this part was run.
* Hand-made requests (`source: hand-made`): hard-benign shapes real clients send
  (chunked uploads, `gzip, chunked`, one or two ranges, WebDAV and CalDAV methods,
  method override to PATCH/DELETE, `Expect: 100-continue`, `Connection: TE, close`,
  CDN `X-Forwarded-Host`, HTTP/1.0 and HTTP/2 requests, typed `%` signs, translation
  strings), category `benign-protocol`; and one attack per technique of the issue's
  list (smuggling, framing, method and header abuse, evasive encodings, format
  strings), category `technique`. The technique part is what the rules were written
  for: a check, not a blind test.
"""
import importlib.util
import json
import os
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"


def load_crs_corpus():
    spec = importlib.util.spec_from_file_location("crs_corpus", os.path.join(HERE, "crs-corpus.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def parse_raw(raw):
    """A raw request (ftw `raw_request`) as method, target, version, headers, body."""
    if isinstance(raw, bytes):
        raw = raw.decode("latin-1")
    head, _, body = raw.replace("\r\n", "\n").partition("\n\n")
    lines = head.split("\n")
    first = lines[0].split(" ")
    method, target = first[0], first[1] if len(first) > 1 else "/"
    version = first[-1] if len(first) > 2 else ""
    headers = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:
            headers[-1][1] += "\r\n " + line.strip()
            continue
        name, _, value = line.partition(":")
        headers.append([name, value.strip()])
    return method, target, version, headers, body


def crs_part(root, crs):
    for family in ("920", "921"):
        d = next(x for x in sorted(os.listdir(root)) if x.startswith(f"REQUEST-{family}-"))
        for f in sorted(os.listdir(os.path.join(root, d))):
            if not f.endswith(".yaml"):
                continue
            doc = yaml.safe_load(open(os.path.join(root, d, f), encoding="utf-8", errors="replace"))
            for test in doc.get("tests", []):
                for st in test.get("stages", []):
                    stage = st.get("stage", st)
                    inp, out = stage.get("input", {}), stage.get("output", {})
                    if "log_contains" in out:
                        label, rule = "attack", crs.rule_of(out, "log_contains")
                    elif "no_log_contains" in out:
                        label, rule = "normal", crs.rule_of(out, "no_log_contains")
                    else:
                        continue
                    if "raw_request" in inp:
                        method, uri, version, headers, data = parse_raw(inp["raw_request"])
                    elif "encoded_request" in inp:
                        continue
                    else:
                        method = str(inp.get("method", "GET"))
                        uri = str(inp.get("uri", "/"))
                        version = str(inp.get("version", "HTTP/1.1"))
                        headers = [[str(k), str(v)] for k, v in (inp.get("headers") or {}).items()]
                        data = inp.get("data") or ""
                        if isinstance(data, list):
                            data = "\r\n".join(str(x) for x in data)
                    print(json.dumps({
                        "method": method, "uri": uri, "version": version,
                        "headers": headers, "body": str(data), "label": label,
                        "category": f"crs-{family}",
                        "part": crs.part_of(uri, dict(headers), data),
                        "source": f"crs-3.3.4:{test.get('test_title', f)}",
                        "rule": rule,
                    }))


def req(label, category, what, method="GET", uri="/", version="HTTP/1.1", headers=(), body=""):
    h = [["Host", "shop.example"], ["User-Agent", UA]] + [list(x) for x in headers]
    return {"method": method, "uri": uri, "version": version, "headers": h, "body": body,
            "label": label, "category": category, "part": "protocol",
            "source": f"hand-made:{what}"}


def hand_made():
    b = lambda what, **k: req("normal", "benign-protocol", what, **k)
    a = lambda what, **k: req("attack", "technique", what, **k)
    out = [
        b("chunked JSON upload", method="POST", uri="/api/upload",
          headers=[("Transfer-Encoding", "chunked"), ("Content-Type", "application/json")],
          body="c\r\n{\"name\":\"a\"}\r\n0\r\n\r\n"),
        b("chunked form, two chunks", method="POST", uri="/form",
          headers=[("Transfer-Encoding", "chunked"), ("Content-Type", "application/x-www-form-urlencoded")],
          body="8\r\nname=Ana\r\nc\r\n&city=Lisboa\r\n0\r\n\r\n"),
        b("chunked with trailer", method="POST", uri="/logs",
          headers=[("Transfer-Encoding", "chunked"), ("Trailer", "X-Checksum"), ("Content-Type", "text/plain")],
          body="5\r\nhello\r\n0\r\nX-Checksum: 5d41\r\n\r\n"),
        b("gzip transfer coding", method="POST", uri="/ingest",
          headers=[("Transfer-Encoding", "gzip, chunked"), ("Content-Type", "application/octet-stream")]),
        b("one range", uri="/video.mp4", headers=[("Range", "bytes=0-1048575")]),
        b("open range", uri="/big.iso", headers=[("Range", "bytes=1048576-")]),
        b("suffix range", uri="/log.txt", headers=[("Range", "bytes=-500")]),
        b("two ranges", uri="/doc.pdf", headers=[("Range", "bytes=0-1023, 4096-8191")]),
        b("If-Range", uri="/a.zip", headers=[("Range", "bytes=500-999"), ("If-Range", "\"abc\"")]),
        b("PROPFIND", method="PROPFIND", uri="/dav/", headers=[("Depth", "1")]),
        b("MKCOL", method="MKCOL", uri="/dav/new/"),
        b("REPORT", method="REPORT", uri="/cal/user/", headers=[("Depth", "1")]),
        b("LOCK", method="LOCK", uri="/dav/a.docx", headers=[("Timeout", "Second-600")]),
        b("override to PATCH", method="POST", uri="/api/items/7",
          headers=[("X-HTTP-Method-Override", "PATCH")]),
        b("override to DELETE", method="POST", uri="/api/items/7",
          headers=[("X-HTTP-Method", "DELETE")]),
        b("Rails _method", method="POST", uri="/posts/3?_method=patch"),
        b("Expect 100-continue", method="PUT", uri="/files/a.bin",
          headers=[("Expect", "100-continue"), ("Content-Type", "application/octet-stream")], body="x" * 64),
        b("keep-alive", headers=[("Connection", "keep-alive")]),
        b("close", headers=[("Connection", "close")]),
        b("LWP Connection: TE", headers=[("Connection", "TE, close"), ("TE", "deflate,gzip;q=0.3")]),
        b("websocket", uri="/ws", headers=[("Connection", "Upgrade"), ("Upgrade", "websocket"),
                                          ("Sec-WebSocket-Version", "13"), ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")]),
        b("CDN X-Forwarded-Host", headers=[("X-Forwarded-Host", "www.shop.example"), ("X-Forwarded-Proto", "https")]),
        b("Forwarded", headers=[("Forwarded", "for=192.0.2.60;proto=https;host=shop.example")]),
        b("absolute form, same host", uri="http://shop.example/a?b=1"),
        b("HTTP/1.0 without Host", version="HTTP/1.0"),
        b("HTTP/2", version="HTTP/2.0"),
        b("OPTIONS *", method="OPTIONS", uri="*"),
        b("CORS preflight", method="OPTIONS", uri="/api/orders",
          headers=[("Origin", "https://app.example"), ("Access-Control-Request-Method", "DELETE")]),
        b("typed percent", uri="/search?q=50%"),
        b("percent off, encoded", uri="/sale?discount=50%25%20off"),
        b("translation string", method="POST", uri="/admin/i18n",
          headers=[("Content-Type", "application/json")],
          body="{\"msgstr\":\"Hello %s, you have %d new messages (%1$s)\"}"),
        b("URL-encoded text in JSON", method="POST", uri="/api/track",
          headers=[("Content-Type", "application/json")],
          body="{\"q\":\"windows%20xp%20pro\",\"ref\":\"plan%20n\"}"),
        b("IIS unicode escape", uri="/search?q=%u00e9t%u00e9"),
        b("UTF-8 text", uri="/wiki/%E6%97%A5%E6%9C%AC%E8%AA%9E"),
        b("If-Match with quotes", method="PUT", uri="/api/doc/1",
          headers=[("If-Match", "\"33a64df551425fcc55e4d42a148795d9f25f89d4\""), ("Content-Type", "application/json")],
          body="{\"title\":\"x\"}"),
        b("long cookie and Accept", headers=[("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
                                             ("Cookie", "session=" + "a1B2" * 40)]),
        b("comment quoting a method", method="POST", uri="/comments",
          headers=[("Content-Type", "application/x-www-form-urlencoded")],
          body="text=Try+the+endpoint+with+a+plain+GET+and+tell+me+if+it+works"),
    ]
    out += [
        a("CL.TE", method="POST", headers=[("Content-Length", "13"), ("Transfer-Encoding", "chunked")],
          body="0\r\n\r\nSMUGGLED"),
        a("TE.CL", method="POST", headers=[("Transfer-Encoding", "chunked"), ("Content-Length", "3")],
          body="8\r\nSMUGGLED\r\n0\r\n\r\n"),
        a("smuggled request after the last chunk", method="POST", headers=[("Transfer-Encoding", "chunked")],
          body="0\r\n\r\nGET /admin HTTP/1.1\r\nHost: localhost\r\n\r\n"),
        a("conflicting Content-Length", method="POST",
          headers=[("Content-Length", "4"), ("Content-Length", "40")], body="a=bc"),
        a("Content-Length list", method="POST", headers=[("Content-Length", "4, 40")], body="a=bc"),
        a("TE xchunked", method="POST", headers=[("Transfer-Encoding", "xchunked")]),
        a("TE leading space value", method="POST", headers=[("Transfer-Encoding", "\u000bchunked")]),
        a("TE tab", method="POST", headers=[("Transfer-Encoding", "chunked\t\u000c")]),
        a("TE chunked, identity", method="POST", headers=[("Transfer-Encoding", "chunked, identity")]),
        a("TE twice", method="POST", headers=[("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "identity")]),
        a("TE quoted", method="POST", headers=[("Transfer-Encoding", "\"chunked\"")]),
        a("Transfer_Encoding", method="POST", headers=[("Transfer_Encoding", "chunked")]),
        a("TE on HTTP/1.0", method="POST", version="HTTP/1.0", headers=[("Transfer-Encoding", "chunked")],
          body="0\r\n\r\n"),
        a("chunk size garbage", method="POST", headers=[("Transfer-Encoding", "chunked")],
          body="0x5\r\nhello\r\n0\r\n\r\n"),
        a("chunk size overflow", method="POST", headers=[("Transfer-Encoding", "chunked")],
          body="fffffffffffffffff1\r\nhello\r\n0\r\n\r\n"),
        a("header name with space", headers=[("Transfer-Encoding ", "chunked")]),
        a("header name with slash", headers=[("X/Forwarded-For", "127.0.0.1")]),
        a("obs-fold", headers=[("X-Custom", "a\r\n Transfer-Encoding: chunked")]),
        a("NUL in header", headers=[("Accept-Language", "en\u0000")]),
        a("CR in header", headers=[("X-Note", "a\rb")]),
        a("LF in path", uri="/index.php/PHP%0Ainfo.php"),
        a("NUL in path", uri="/download/report.pdf%00.php"),
        a("absolute form to metadata", uri="http://169.254.169.254/latest/meta-data/"),
        a("absolute form to internal", uri="http://internal.admin:8080/"),
        a("HTTP/1.2", version="HTTP/1.2"),
        a("HTTP/0.9", version="HTTP/0.9"),
        a("JUNK version", version="JUNK/1.0"),
        a("two Host headers", headers=[("Host", "internal.admin")]),
        a("Host with path", headers=[("Host", "shop.example/../admin")]),
        a("Host with userinfo", headers=[("Host", "shop.example@evil.example")]),
        a("huge Host", headers=[("Host", "a" * 300 + ".example")]),
        a("TRACE", method="TRACE"),
        a("TRACK", method="TRACK"),
        a("DEBUG", method="DEBUG", uri="/default.aspx", headers=[("Command", "stop-debug")]),
        a("CONNECT", method="CONNECT", uri="internal.admin:22"),
        a("unknown method", method="FOO"),
        a("override to TRACE", method="POST", headers=[("X-HTTP-Method-Override", "TRACE")]),
        a("override to an unknown method", method="POST", headers=[("X-Method-Override", "HACK")]),
        a("_method TRACE", method="POST", uri="/?_method=TRACE"),
        a("X-Original-URL", headers=[("X-Original-URL", "/admin/users/delete")]),
        a("X-Rewrite-URL", headers=[("X-Rewrite-URL", "/admin")]),
        a("X-Forwarded-Host localhost", uri="/reset-password", headers=[("X-Forwarded-Host", "localhost:8080")]),
        a("X-Forwarded-Host metadata", headers=[("X-Forwarded-Host", "169.254.169.254")]),
        a("X-Host evil path", headers=[("X-Host", "evil.example/x?")]),
        a("Forwarded host internal", headers=[("Forwarded", "host=127.0.0.1")]),
        a("httpoxy", uri="/cgi-bin/app", headers=[("Proxy", "http://203.0.113.9:3128")]),
        a("Range DoS", uri="/big.iso",
          headers=[("Range", "bytes=0-,5-0,5-1,5-2,5-3,5-4,5-5,5-6,5-7,5-8,5-9,5-10,5-11")]),
        a("Range inverted", uri="/big.iso", headers=[("Range", "bytes=500-100")]),
        a("Request-Range DoS", uri="/big.iso",
          headers=[("Request-Range", ",".join(f"0-{i}" for i in range(20)))]),
        a("Expect XSS", headers=[("Expect", "<script>alert(1)</script>")]),
        a("Expect junk", method="POST", headers=[("Expect", "y 100-continue")], body="a=1"),
        a("Connection strips XFF", uri="/admin", headers=[("Connection", "close, X-Forwarded-For")]),
        a("Connection strips Authorization", uri="/admin", headers=[("Connection", "Authorization")]),
        a("invalid escapes around traversal", uri="/files/..%bg%qf..%bgetc/passwd"),
        a("invalid escape %1G", uri="/?parm=%1G"),
        a("invalid escape %w20", uri="/?x=%w20"),
        a("bad %u", uri="/?x=%u00zz"),
        a("overlong UTF-8", uri="/?f=..%c0%af..%c0%afetc%c0%afpasswd"),
        a("format string %8.8x", uri="/?name=%8.8x%8.8x"),
        a("format string %n", uri="/login?user=AAAA%25n"),
        a("format string positional", uri="/?q=%25%37%24%6e"),
        a("format string %s run", method="POST", headers=[("Content-Type", "application/x-www-form-urlencoded")],
          body="user=%25s%25s%25s%25s%25s"),
        a("request line in a parameter", method="POST",
          headers=[("Content-Type", "application/x-www-form-urlencoded")],
          body="var=aaa%0d%0aGET+/admin+HTTP/1.1"),
    ]
    for r in out:
        print(json.dumps(r))


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    root = args[0] if args else os.path.join(HERE, "../../shared/data/crs-regression/v3.3.4/tests")
    crs_part(root, load_crs_corpus())
    hand_made()


if __name__ == "__main__":
    main()
