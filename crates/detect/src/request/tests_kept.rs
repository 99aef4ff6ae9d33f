//! The parse's kept buffers change nothing but the allocations: refilled parts give
//! the parts of a parse on a fresh thread, and a warm parse allocates nothing.

use super::tests::req;
use super::{HttpRequest, MAX_VALUE_LEN, ParsedRequest, parse};

/// Requests that between them reach every way a part is made.
fn requests() -> Vec<HttpRequest> {
    let long = "v".repeat(MAX_VALUE_LEN + 10);
    let long_query = format!("/s?{long}={long}");
    let many: Vec<String> = (0..600).map(|i| format!("p{i}=%27{i}")).collect();
    let many_query = format!("/m?{}", many.join("&"));
    let multipart = "--XyZ\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nhello\r\n--XyZ\r\nContent-Disposition: form-data; name=\"up\"; filename=\"a.php\"\r\n\r\n<?php ?>\r\n--XyZ--\r\n";
    vec![
        req(
            "GET",
            "http://h:8080/a%20b/c%27d/aGVsbG8gd29ybGQgYWdhaW4=?x=1+2&y=%3Cs%3E&&z&%00=n#f",
            &[
                ("Host", "h"),
                ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)"),
                ("Cookie", "sid=abc; t=1; b=aGVsbG8gd29ybGQgYWdhaW4="),
                ("X-Note", "aGVsbG8gd29ybGQgYWdhaW4="),
                ("Authorization", "Bearer x"),
                ("Accept", "*/*"),
            ],
            b"",
        ),
        req(
            "POST",
            "/login",
            &[
                ("Host", "h"),
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Content-Length", "40"),
            ],
            b"user=ana&pass=p%C3%A9+x&query=%7Bme%7Bname%7D%7D&x=%E9t%E9",
        ),
        req(
            "POST",
            "/api",
            &[("Host", "h"), ("Content-Type", "application/json")],
            br#"{"a":{"b":["x","y\"z"]},"c":1,"d":"\u003c","query":"{ me { name } }"}"#,
        ),
        req(
            "POST",
            "/u",
            &[
                ("Host", "h"),
                ("Content-Type", "multipart/form-data; boundary=XyZ"),
            ],
            multipart.as_bytes(),
        ),
        req(
            "POST",
            "/f",
            &[
                ("Host", "h"),
                ("Transfer-Encoding", "chunked"),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            b"7\r\na=1&b=2\r\n0\r\n\r\nGET /x HTTP/1.1\r\n",
        ),
        req(
            "FOO",
            "relative",
            &[("Content-Length", "abc")],
            b"\xff\xfe=\xc0\xae",
        ),
        req("GET", &long_query, &[("Host", "h")], b""),
        req("GET", &many_query, &[("Host", "h")], b""),
        req(
            "PUT",
            "/x",
            &[("Host", "h"), ("Content-Type", "text/xml")],
            b"<a><b>1</b><c d=\"2\">t</c></a>",
        ),
    ]
}

/// Each request parsed on a thread of its own, which has no kept buffers.
fn fresh(reqs: &[HttpRequest], paranoia: u8) -> Vec<ParsedRequest> {
    reqs.iter()
        .map(|r| {
            let r = r.clone();
            std::thread::spawn(move || parse(&r, paranoia))
                .join()
                .unwrap_or_default()
        })
        .collect()
}

fn same(a: &ParsedRequest, b: &ParsedRequest) -> bool {
    a.parts == b.parts && a.path == b.path
}

#[test]
fn refilled_parts_are_those_of_a_fresh_parse() {
    let reqs = requests();
    for paranoia in [1, 3] {
        let want = fresh(&reqs, paranoia);
        // Forward, backward and each request twice: every part refilled after parts
        // of other roles and sizes; each result dropped before the next parse.
        let order: Vec<usize> = (0..reqs.len())
            .chain((0..reqs.len()).rev())
            .chain((0..reqs.len()).flat_map(|i| [i, i]))
            .collect();
        for i in order {
            let got = parse(&reqs[i], paranoia);
            assert!(same(&got, &want[i]), "request {i} at paranoia {paranoia}");
        }
        // Results held while others are parsed (nothing given back in between).
        let held: Vec<ParsedRequest> = reqs.iter().map(|r| parse(r, paranoia)).collect();
        for (i, (got, want)) in held.iter().zip(&want).enumerate() {
            assert!(same(got, want), "held request {i}");
        }
    }
}

#[test]
fn a_warm_parse_allocates_nothing() {
    let reqs = [
        req(
            "GET",
            // (A percent-encoded path would show an allocation of `framing::check`'s.)
            "/shop/items/view?id=42&q=red+shoes&ref=%2Fhome&n=A%F1adir",
            &[
                ("Host", "shop.example"),
                ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)"),
                ("Accept", "text/html"),
                ("Cookie", "sid=abc123; lang=en"),
                ("Referer", "https://shop.example/"),
            ],
            b"",
        ),
        req(
            "POST",
            "/checkout",
            &[("Host", "shop.example"), ("Accept", "*/*")],
            b"name=Ana+Mar%C3%ADa&street=Calle+Mayor+12&city=Madrid&qty=2",
        ),
    ];
    for r in &reqs {
        drop(parse(r, 1));
        let before = alloc_count::this_thread();
        let parsed = parse(r, 1);
        let during = alloc_count::this_thread() - before;
        drop(parsed);
        let after = alloc_count::this_thread() - before;
        assert_eq!((during, after), (0, 0), "{} {}", r.method, r.uri);
    }
}

/// Counts this thread's allocations (the test binary's global allocator; the same file
/// as the injection crate's allocation tests use).
#[path = "../../../injection/src/alloc_count.rs"]
mod alloc_count;
