//! Protocol attacks (issue 17): request smuggling shapes, bad framing, method and header
//! abuse, evasive encodings and format strings are blocked by the built-in rules at
//! paranoia 1, and the hard-benign look-alikes real clients send are not.

use crate::{Engine, EngineConfig, HttpRequest, RuleSet, Verdict};

fn engine() -> Engine {
    Engine::new(
        RuleSet::builtin().expect("built-in rules load"),
        EngineConfig::default(),
    )
}

fn request(
    method: &str,
    uri: &str,
    version: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> HttpRequest {
    let mut all: Vec<(String, String)> = vec![(
        "User-Agent".into(),
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"
            .into(),
    )];
    all.extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    HttpRequest {
        method: method.into(),
        uri: uri.into(),
        protocol: version.into(),
        headers: all,
        body: body.as_bytes().to_vec(),
        client_ip: None,
    }
}

fn ids(v: &Verdict) -> Vec<u32> {
    v.findings.iter().map(|f| f.rule_id).collect()
}

/// (what, request, a rule that must be among the findings)
fn attacks() -> Vec<(&'static str, HttpRequest, u32)> {
    let h = ("Host", "shop.example");
    vec![
        (
            "CL.TE",
            request(
                "POST",
                "/",
                "HTTP/1.1",
                &[
                    h,
                    ("Content-Length", "13"),
                    ("Transfer-Encoding", "chunked"),
                ],
                "0\r\n\r\nSMUGGLED",
            ),
            920150,
        ),
        (
            "TE.CL with a smuggled request after the last chunk",
            request(
                "POST",
                "/",
                "HTTP/1.1",
                &[h, ("Transfer-Encoding", "chunked")],
                "0\r\n\r\nGET /admin HTTP/1.1\r\nHost: localhost\r\n\r\n",
            ),
            920315,
        ),
        (
            "conflicting Content-Length",
            request(
                "POST",
                "/",
                "HTTP/1.1",
                &[h, ("Content-Length", "4"), ("Content-Length", "40")],
                "a=bc",
            ),
            920300,
        ),
        (
            "Transfer-Encoding: xchunked",
            request(
                "POST",
                "/",
                "HTTP/1.1",
                &[h, ("Transfer-Encoding", "xchunked")],
                "",
            ),
            920310,
        ),
        (
            "Transfer-Encoding: chunked, identity",
            request(
                "POST",
                "/",
                "HTTP/1.1",
                &[h, ("Transfer-Encoding", "chunked, identity")],
                "",
            ),
            920310,
        ),
        (
            "Transfer-Encoding with a vertical tab",
            request(
                "POST",
                "/",
                "HTTP/1.1",
                &[h, ("Transfer-Encoding", "\u{b}chunked")],
                "",
            ),
            920310,
        ),
        (
            "header name with a space before the colon",
            request(
                "POST",
                "/",
                "HTTP/1.1",
                &[h, ("Transfer-Encoding ", "chunked")],
                "",
            ),
            920320,
        ),
        (
            "Transfer_Encoding",
            request(
                "POST",
                "/",
                "HTTP/1.1",
                &[h, ("Transfer_Encoding", "chunked")],
                "",
            ),
            920314,
        ),
        (
            "Transfer-Encoding on HTTP/1.0",
            request(
                "POST",
                "/",
                "HTTP/1.0",
                &[h, ("Transfer-Encoding", "chunked")],
                "",
            ),
            920313,
        ),
        (
            "obs-fold",
            request(
                "GET",
                "/",
                "HTTP/1.1",
                &[h, ("X-Custom", "a\r\n Transfer-Encoding: chunked")],
                "",
            ),
            920321,
        ),
        (
            "NUL in a header value",
            request(
                "GET",
                "/",
                "HTTP/1.1",
                &[h, ("Accept-Language", "en\u{0}")],
                "",
            ),
            920120,
        ),
        (
            "CR/LF in the path",
            request("GET", "/index.php/PHP%0Ainfo.php", "HTTP/1.1", &[h], ""),
            920323,
        ),
        (
            "absolute-form target to another host",
            request(
                "GET",
                "http://169.254.169.254/latest/meta-data/",
                "HTTP/1.1",
                &[h],
                "",
            ),
            920332,
        ),
        (
            "invalid version",
            request("GET", "/", "HTTP/1.2", &[h], ""),
            920324,
        ),
        (
            "two Host headers",
            request("GET", "/", "HTTP/1.1", &[h, ("Host", "internal.admin")], ""),
            920330,
        ),
        (
            "Host with a path",
            request(
                "GET",
                "/",
                "HTTP/1.1",
                &[("Host", "shop.example/../admin")],
                "",
            ),
            920331,
        ),
        ("TRACE", request("TRACE", "/", "HTTP/1.1", &[h], ""), 920340),
        ("TRACK", request("TRACK", "/", "HTTP/1.1", &[h], ""), 920340),
        (
            "DEBUG",
            request(
                "DEBUG",
                "/default.aspx",
                "HTTP/1.1",
                &[h, ("Command", "stop-debug")],
                "",
            ),
            920340,
        ),
        (
            "method override to TRACE",
            request(
                "POST",
                "/",
                "HTTP/1.1",
                &[h, ("X-HTTP-Method-Override", "TRACE")],
                "",
            ),
            920341,
        ),
        (
            "X-Original-URL to an internal path",
            request(
                "GET",
                "/",
                "HTTP/1.1",
                &[h, ("X-Original-URL", "/admin/users/delete")],
                "",
            ),
            920350,
        ),
        (
            "X-Rewrite-URL",
            request(
                "GET",
                "/",
                "HTTP/1.1",
                &[h, ("X-Rewrite-URL", "/admin")],
                "",
            ),
            920350,
        ),
        (
            "X-Forwarded-Host to localhost",
            request(
                "GET",
                "/reset-password",
                "HTTP/1.1",
                &[h, ("X-Forwarded-Host", "localhost:8080")],
                "",
            ),
            920351,
        ),
        (
            "httpoxy",
            request(
                "GET",
                "/cgi-bin/app",
                "HTTP/1.1",
                &[h, ("Proxy", "http://203.0.113.9:3128")],
                "",
            ),
            920352,
        ),
        (
            "Expect with markup",
            request(
                "GET",
                "/",
                "HTTP/1.1",
                &[h, ("Expect", "<script>alert(1)</script>")],
                "",
            ),
            920353,
        ),
        (
            "Connection stripping X-Forwarded-For",
            request(
                "GET",
                "/admin",
                "HTTP/1.1",
                &[h, ("Connection", "close, X-Forwarded-For")],
                "",
            ),
            920354,
        ),
        (
            "Range DoS",
            request(
                "GET",
                "/big.iso",
                "HTTP/1.1",
                &[
                    h,
                    (
                        "Range",
                        "bytes=0-,5-0,5-1,5-2,5-3,5-4,5-5,5-6,5-7,5-8,5-9,5-10,5-11",
                    ),
                ],
                "",
            ),
            920361,
        ),
        (
            "invalid escapes around a traversal",
            request(
                "GET",
                "/files/..%bg%qf..%bgetc/passwd",
                "HTTP/1.1",
                &[h],
                "",
            ),
            920191,
        ),
        (
            "invalid escape %1G",
            request("GET", "/?parm=%1G", "HTTP/1.1", &[h], ""),
            920191,
        ),
        (
            "overlong UTF-8",
            request("GET", "/?f=..%c0%af..%c0%afetc", "HTTP/1.1", &[h], ""),
            920192,
        ),
        (
            "format string %8.8x",
            request("GET", "/?name=%8.8x%8.8x", "HTTP/1.1", &[h], ""),
            921310,
        ),
        (
            "format string %n",
            request("GET", "/login?user=AAAA%25n", "HTTP/1.1", &[h], ""),
            921310,
        ),
        (
            "chunk size that is not hex",
            request(
                "POST",
                "/",
                "HTTP/1.1",
                &[h, ("Transfer-Encoding", "chunked")],
                "0x5\r\nhello\r\n0\r\n\r\n",
            ),
            920316,
        ),
        (
            "request line in a parameter",
            request(
                "POST",
                "/",
                "HTTP/1.1",
                &[h, ("Content-Type", "application/x-www-form-urlencoded")],
                "var=aaa%0d%0aGET+/admin+HTTP/1.1",
            ),
            921300,
        ),
    ]
}

#[test]
fn protocol_attacks_are_blocked_with_their_rule() {
    let engine = engine();
    for (what, req, rule) in attacks() {
        let v = engine.inspect(&req);
        assert!(ids(&v).contains(&rule), "{what}: {:?}", ids(&v));
        assert!(v.blocked, "{what}: score {} from {:?}", v.score, ids(&v));
    }
}

#[test]
fn a_finding_says_what_showed_the_anomaly() {
    let req = request(
        "POST",
        "/",
        "HTTP/1.1",
        &[("Host", "a"), ("Transfer-Encoding", "xchunked")],
        "",
    );
    let v = engine().inspect(&req);
    let f = v
        .findings
        .iter()
        .find(|f| f.rule_id == 920310)
        .expect("920310 fires");
    assert_eq!(f.name_of_part, "xchunked");
    assert_eq!(f.location, "anomaly");
}

#[test]
fn hard_benign_protocol_look_alikes_pass() {
    let h = ("Host", "shop.example");
    let cases = vec![
        (
            "chunked upload",
            request(
                "POST",
                "/upload",
                "HTTP/1.1",
                &[
                    h,
                    ("Transfer-Encoding", "chunked"),
                    ("Content-Type", "application/json"),
                ],
                "c\r\n{\"name\":\"a\"}\r\n0\r\n\r\n",
            ),
        ),
        (
            "gzip transfer coding",
            request(
                "POST",
                "/upload",
                "HTTP/1.1",
                &[
                    h,
                    ("Transfer-Encoding", "gzip, chunked"),
                    ("Content-Type", "application/octet-stream"),
                ],
                "",
            ),
        ),
        (
            "one range",
            request(
                "GET",
                "/video.mp4",
                "HTTP/1.1",
                &[h, ("Range", "bytes=0-1048575")],
                "",
            ),
        ),
        (
            "two ranges",
            request(
                "GET",
                "/doc.pdf",
                "HTTP/1.1",
                &[h, ("Range", "bytes=0-1023, 4096-8191")],
                "",
            ),
        ),
        (
            "PROPFIND",
            request("PROPFIND", "/dav/", "HTTP/1.1", &[h, ("Depth", "1")], ""),
        ),
        (
            "REPORT",
            request("REPORT", "/cal/", "HTTP/1.1", &[h, ("Depth", "1")], ""),
        ),
        (
            "override to DELETE",
            request(
                "POST",
                "/api/items/7",
                "HTTP/1.1",
                &[h, ("X-HTTP-Method-Override", "DELETE")],
                "",
            ),
        ),
        (
            "Rails _method",
            request("POST", "/posts/3?_method=patch", "HTTP/1.1", &[h], ""),
        ),
        (
            "Expect 100-continue",
            request(
                "PUT",
                "/f",
                "HTTP/1.1",
                &[h, ("Expect", "100-continue")],
                "x",
            ),
        ),
        (
            "keep-alive",
            request(
                "GET",
                "/",
                "HTTP/1.1",
                &[h, ("Connection", "keep-alive")],
                "",
            ),
        ),
        (
            "LWP's Connection: TE",
            request(
                "GET",
                "/",
                "HTTP/1.1",
                &[h, ("Connection", "TE, close"), ("TE", "deflate,gzip;q=0.3")],
                "",
            ),
        ),
        (
            "websocket",
            request(
                "GET",
                "/ws",
                "HTTP/1.1",
                &[h, ("Connection", "Upgrade"), ("Upgrade", "websocket")],
                "",
            ),
        ),
        (
            "CDN forwarded host",
            request(
                "GET",
                "/",
                "HTTP/1.1",
                &[h, ("X-Forwarded-Host", "www.shop.example")],
                "",
            ),
        ),
        (
            "absolute form, same host",
            request("GET", "http://shop.example/a?b=1", "HTTP/1.1", &[h], ""),
        ),
        (
            "HTTP/2 without Host",
            request("GET", "/", "HTTP/2.0", &[], ""),
        ),
        ("HTTP/1.0", request("GET", "/", "HTTP/1.0", &[], "")),
        (
            "a typed percent",
            request("GET", "/search?q=50%", "HTTP/1.1", &[h], ""),
        ),
        (
            "percent off",
            request("GET", "/search?q=100%25%20off", "HTTP/1.1", &[h], ""),
        ),
        (
            "a translation string",
            request(
                "POST",
                "/admin/i18n",
                "HTTP/1.1",
                &[h, ("Content-Type", "application/json")],
                "{\"msgstr\":\"Hello %s, you have %d new messages (%1$s)\"}",
            ),
        ),
        (
            "URL-encoded text inside JSON",
            request(
                "POST",
                "/api/track",
                "HTTP/1.1",
                &[h, ("Content-Type", "application/json")],
                "{\"q\":\"windows%20xp%20pro\",\"ref\":\"plan%20n\"}",
            ),
        ),
        (
            "a documentation comment quoting HTTP",
            request(
                "POST",
                "/comments",
                "HTTP/1.1",
                &[h, ("Content-Type", "application/x-www-form-urlencoded")],
                "text=Try+the+endpoint+with+a+plain+GET+and+tell+me+if+it+works",
            ),
        ),
    ];
    let engine = engine();
    for (what, req) in cases {
        let v = engine.inspect(&req);
        assert!(
            !v.blocked && v.findings.iter().all(|f| f.severity.points() < 5),
            "{what}: score {} from {:?}",
            v.score,
            ids(&v)
        );
    }
}
