//! Corpus tests: classic payloads, benign look-alikes, and a no-panic fuzz.

use super::{sqli, xss};

const SQLI_POSITIVE: &[&str] = &[
    "1' or '1'='1",
    "' OR 1=1--",
    "1 union select null,version()--",
    "1;drop table users",
    "admin'--",
    "1' and sleep(5)#",
    "' waitfor delay '0:0:5'--",
    "1 AND (SELECT 1 FROM (SELECT(SLEEP(5)))a)",
    "-1' UNION ALL SELECT table_name FROM information_schema.tables--",
    "1) or (1=1",
    "' || '1'='1",
    "1 UnIoN/**/SeLeCt 1,2,3",
    "1/**/UNION/**/SELECT/**/password/**/FROM/**/users",
    "' or 'a'='a",
    "\" or \"\"=\"",
    "admin' #",
    "admin'/*",
    "') or ('1'='1",
    "1 or 1=1",
    "1' and 1=1 and '1'='1",
    "' or true--",
    "' or 1--",
    "'='",
    "'; exec master..xp_cmdshell 'dir'--",
    "1; select pg_sleep(5)",
    "1' and ascii(substring((select user()),1,1))>64--",
    "1 and extractvalue(1,concat(0x7e,version()))",
    "' order by 3--",
    "1 order by 10--",
    "1' RLIKE (SELECT (CASE WHEN (1=1) THEN 1 ELSE 0x28 END))--",
    "'+sleep(5)+'",
    "1 AND 1=CAST((SELECT version()) AS int)",
    "1 UNION/*!50000SELECT*/ 1,2",
    "' UNION SELECT username, password FROM users--",
    "x' AND 1=(SELECT COUNT(*) FROM tabname); --",
    "1'; DROP TABLE users; --",
    "1 or benchmark(10000000,md5(1))",
    "'))) or 1=1--",
    "1%27%20or%20%271%27%3D%271",
    "' OR 'x' LIKE 'x",
    "1 OR 1 IS NOT NULL",
    "'; insert into users values('a','b')--",
    "1;update users set admin=1",
    "' and 1 in (select 1)--",
    "1 and 1=2 union select 1,@@version",
    "'; shutdown--",
    "1' into outfile '/tmp/x'--",
    "' or ''='",
    "1 || 1=1",
    "\"; declare @q varchar(99); --",
    "1' or 1=1#",
    "1\" or \"1\"=\"1",
    "admin\" --",
    "' or 1=1 limit 1 -- -",
    "1 or sleep(5)",
    "1) union select 1,2--",
    "' union all select null,null,null--",
    "1' and updatexml(1,concat(0x7e,(select user())),1)--",
    "'; WAITFOR DELAY '0:0:10'--",
    "1 and 1=1",
    "1' and '1'='1",
    "' or 'unusual' = 'unusual'",
    "' or 2 > 1--",
    "1 AnD 1=1",
    "-1 or 1=1",
    "1'or'1'='1",
    "' OR EXISTS(SELECT * FROM users)--",
    "1 and (select count(*) from users) > 0",
    "' and substring(@@version,1,1)='5",
    "1' GROUP BY 1--",
    "1; exec xp_cmdshell('dir')",
    "'||(select pg_sleep(5))||'",
    "1 rlike sleep(5)",
    "\" or 1=1 --",
    "') or 1=1--",
    "' OR '1'='1' /*",
    "1'||'a'='a",
    "' AND 1=0 UNION SELECT 1,2,3 --",
    "admin')--",
    "1 or 'a'='a'",
    "1'/**/or/**/1=1#",
    "1 %55nion %53elect 1",
    "1'+or+1=1--",
    "1 or 1 like 1",
    "' or 1 between 0 and 2--",
    "1 and 'a' not like 'b'",
    "' or (1)=(1)--",
    "1;waitfor delay '0:0:5'",
    "1 and exists(select 1)",
    "1 div 0 or 1=1",
    "' or @@version like '%'--",
    "1 and 1=(select 1 from dual)",
    "admin'or'1",
    "' or username is not null--",
    "1 and char(65)=char(65)",
    "') union select * from users--",
    "1 union(select 1,2)",
    "1 procedure analyse()",
    "'-- -",
    "1' and benchmark(5000000,sha1(1))--",
];

const SQLI_NEGATIVE: &[&str] = &[
    "O'Brien",
    "d'Artagnan",
    "l'hôtel",
    "Mc'Donald's burger",
    "please select an option",
    "union station",
    "drop me a line",
    "rock and roll",
    "salt or pepper",
    "Tom and Jerry",
    "this is not a drill",
    "12\" pizza",
    "1-2-3",
    "a=b",
    "2024-01-05",
    "3.14159",
    "42",
    "john.doe@example.com",
    "o'neil@example.org",
    "https://example.com/search?q=rust&page=2",
    "{\"name\": \"O'Brien\", \"age\": 42}",
    "[1, 2, 3]",
    "cheap flights to new york",
    "how to select a union rep",
    "It's a 5\" screen and 3' cable",
    "Let's drop the table tennis plan",
    "I can't and won't",
    "select the best option from the list",
    "Update your profile",
    "delete my account please",
    "Spain or Portugal?",
    "El niño y la niña: ¿dónde está la estación?",
    "Où est l'hôtel de ville ? C'est à côté de l'église.",
    "Je t'aime, n'est-ce pas",
    "the union of sets A and B",
    "order by price",
    "Q&A session",
    "rock 'n' roll",
    "He said \"hello\" and left",
    "5' 11\" tall",
    "price: $5 - $10",
    "sleep well",
    "I need more sleep (8 hours)",
    "C:\\Program Files\\App",
    "user_id=123&sort=desc",
    "-- signed, the team",
    "#hashtag and more",
    "100% cotton; machine wash",
    "Rock & roll; select your seat",
    "I'll be there at 5",
    "Don't select me",
    "We're a union of workers",
    "Select and drop your files here",
    "Please order by Friday",
    "10 or 20 people",
    "Tom's favorite: rock and roll",
    "\"Hello\" -- he said",
    "The value was 1=1 in the doc",
    "Who's on first?",
    "jean-pierre o'connor",
    "5'10\"",
    "SELECT YOUR SIZE",
    "Tickets for union square",
    "id=42",
    "2+2=4",
    "a or b",
    "you and me",
    "\"quoted\" and \"more quoted\"",
    "it's 'fine' and 'dandy'",
    "Rua d'Ajuda 12, Lisboa",
    "C'est la vie, n'est-ce pas?",
    "Dell XPS 13\" laptop",
    "He's 6' tall and 200lbs",
    "Where to sleep in Paris",
    "Insert coin to continue",
    "Execute order 66",
    "What's new; select all that apply",
    "create table reservation",
    "x = y or z",
    "She said 'yes' or 'no'",
    "1,000,000",
    "+1 (555) 123-4567",
    "#1 best seller",
    "Best price -- guaranteed!",
    "/* not a comment */",
    "alert('hello')",
    "The union select committee met",
    "or and not",
    "and 1 more thing",
    "from A to B",
    "select * from fun",
    "I'd rather not (really)",
    "she's \"the one\" and only",
    "(select one)",
    "it is 1 in a million",
    "nothing or 0",
    "between you and me",
    "\"a\" or \"b\"",
    "Paris, je t'aime",
    "size: 8.5\" x 11\"",
    "'single quoted text'",
    "\"double quoted text\"",
    "Mary-Kate's & Ashley's",
    "1 AND 2",
];

const XSS_POSITIVE: &[&str] = &[
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "\"><svg/onload=alert(1)>",
    "javascript:alert(1)",
    "<iframe src=javascript:alert(1)>",
    "<body onload=alert(1)>",
    "&#106;avascript:alert(1)",
    "<a href=\"java&#x09;script:alert(1)\">x</a>",
    "<details open ontoggle=alert(1)>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<IMG SRC=JaVaScRiPt:alert('XSS')>",
    "<a href=\"&#x6A;avascript:alert(1)\">x</a>",
    "<a href=\"  javascript:alert(1)\">x</a>",
    "<a href=\"jav&#x0A;ascript:alert(1)\">x</a>",
    "<div style=\"width: expression(alert(1))\">",
    "<div style=\"background:url(javascript:alert(1))\">",
    "<style>body{background:url(javascript:alert(1))}</style>",
    "<meta http-equiv=\"refresh\" content=\"0;url=javascript:alert(1)\">",
    "<object data=\"x.swf\"></object>",
    "<embed src=x.swf>",
    "<base href=\"//evil.example/\">",
    "<form action=javascript:alert(1)><input type=submit>",
    "<button formaction=javascript:alert(1)>x</button>",
    "<svg><animate onbegin=alert(1) attributeName=x dur=1s>",
    "<input onfocus=alert(1) autofocus>",
    "<marquee onstart=alert(1)>",
    "' onmouseover='alert(1)",
    "\" autofocus onfocus=alert(1) x=\"",
    "x onerror=alert(1)",
    "<<script>alert(1)//<</script>",
    "%3Cscript%3Ealert(1)%3C/script%3E",
    "vbscript:msgbox(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "<video><source onerror=alert(1)>",
    "<a href=\"java\tscript:alert(1)\">x</a>",
    "<ScRiPt>alert(1)</sCrIpT>",
    "<img src=1 onerror=\"alert(document.cookie)\">",
    "<svg onload=alert(1)//",
    "<iframe srcdoc=\"&lt;script&gt;alert(1)&lt;/script&gt;\">",
    "<a href=\"javascript&colon;alert(1)\">x</a>",
    "<a href=\"&#0000106&#0000097&#0000118&#0000097&#0000115&#0000099&#0000114&#0000105&#0000112&#0000116&#0000058alert(1)\">x</a>",
    "<math><maction actiontype=statusline xlink:href=javascript:alert(1)>x",
    "<video src=x onerror=alert(1)>",
    "<audio src onloadstart=alert(1)>",
    "<x onclick=alert(1)>click",
    "<body/onpageshow=alert(1)>",
    "'><img src=x onerror=prompt(1)>",
    "\"><script>alert(String.fromCharCode(88,83,83))</script>",
    "<object data=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\">",
    "<a href=\"data:text/html,<script>alert(1)</script>\">x</a>",
    "<link rel=import href=//evil>",
    "<img src=\"x\" onerror=\"&#97;lert(1)\">",
    "<div onmouseover=\"alert(1)\">hover</div>",
    "<select autofocus onfocus=alert(1)>",
    "<textarea autofocus onfocus=alert(1)>",
    "<keygen autofocus onfocus=alert(1)>",
    "<svg><a xlink:href=\"javascript:alert(1)\"><text x=\"20\" y=\"20\">X</text></a>",
    "\" onfocus=\"alert(1)\" autofocus=\"",
    "<img src=`x` onerror=alert(1)>",
    "jAvAsCrIpT:alert(1)",
];

const XSS_NEGATIVE: &[&str] = &[
    "a < b and c > d",
    "<3",
    "x<y",
    "I <b>love</b> it",
    "5 > 3",
    "john@example.com",
    "<john@example.com>",
    "2<3>1",
    "if (a<b && c>d) return;",
    "on=1",
    "one=two",
    "onion",
    "onion rings and online=yes",
    "<p>Hello, world</p>",
    "<a href=\"https://example.com\">link</a>",
    "<img src=\"cat.png\" alt=\"a cat\">",
    "the script tag is deprecated",
    "javascript: the good parts",
    "I like javascript and java",
    "O'Brien said \"hi\"",
    "<i>italic</i> and <em>emphasis</em>",
    "x > y; y < z",
    "see https://example.com/?a=1&b=2",
    "&lt;script&gt; is escaped",
    "<br/>line<br>break",
    "price < 10 & qty > 2",
    "data: 1, 2, 3",
    "the onload event fires once",
    "if x < 5 and y > 3",
    "i <3 u",
    "<html lang=\"en\"><head><title>Hi</title></head></html>",
    "<ul><li>One</li><li>Two</li></ul>",
    "<a href=\"/about\" title=\"About us\">About</a>",
    "<img src=\"/img/logo.png\" width=\"100\" height=\"40\">",
    "<table border=\"1\"><tr><td>1</td></tr></table>",
    "Use the onclick attribute carefully",
    "Javascript is fun",
    "vector<int> v;",
    "Map<String, List<Integer>>",
    "<div class=\"online\">x</div>",
    "<input type=\"text\" name=\"onion\" value=\"one=two\">",
    "<code>&lt;script&gt;</code>",
    "1 << 3",
    "<!-- a comment -->",
    "<p style=\"color: red\">red</p>",
    "<blockquote cite=\"https://example.com\">q</blockquote>",
    "email me at <bob@example.com>",
    "price <= 100",
    "<form action=\"/login\" method=\"post\">",
    "<iframe-like text",
    "look: <scripting> is a word? no",
    "<span data-on=\"1\">x</span>",
    "html <b onclick> hmm",
];

fn check(name: &str, f: fn(&str) -> Option<super::Match>, pos: &[&str], neg: &[&str]) {
    let missed: Vec<&&str> = pos.iter().filter(|p| f(p).is_none()).collect();
    let fps: Vec<(&&str, super::Match)> = neg.iter().filter_map(|n| f(n).map(|m| (n, m))).collect();
    let tp = pos.len() - missed.len();
    let precision = tp as f64 / (tp + fps.len()).max(1) as f64;
    let recall = tp as f64 / pos.len() as f64;
    println!(
        "{name}: {tp}/{} detected, {} false positives of {} benign, precision {precision:.3}, recall {recall:.3}",
        pos.len(),
        fps.len(),
        neg.len()
    );
    assert!(missed.is_empty(), "{name} missed: {missed:#?}");
    assert!(fps.is_empty(), "{name} false positives: {fps:#?}");
}

#[test]
fn sqli_corpus() {
    assert!(SQLI_POSITIVE.len() >= 40 && SQLI_NEGATIVE.len() >= 40);
    check("sqli", sqli, SQLI_POSITIVE, SQLI_NEGATIVE);
}

#[test]
fn xss_corpus() {
    assert!(XSS_POSITIVE.len() >= 25 && XSS_NEGATIVE.len() >= 25);
    check("xss", xss, XSS_POSITIVE, XSS_NEGATIVE);
}

#[test]
fn evidence_is_useful() {
    let m = sqli("1' or '1'='1").expect("match");
    assert!(m.fingerprint.contains("s&sos"), "{m:?}");
    assert!(m.matched.contains("or"), "{m:?}");
    let m = xss("<img src=x onerror=alert(1)>").expect("match");
    assert_eq!(m.fingerprint, "xss:event-handler:onerror");
    assert!(m.matched.starts_with("<img"));
}

#[test]
fn detectors_agree_on_empty_and_plain() {
    for s in ["", " ", "hello", "'", "\"", "<", "&", "--", "#", ";", "("] {
        assert!(sqli(s).is_none(), "{s:?}");
        assert!(xss(s).is_none(), "{s:?}");
    }
}

#[test]
fn only_first_64k_inspected() {
    let mut s = "a".repeat(super::MAX_INPUT);
    s.push_str("<script>alert(1)</script>' or 1=1--");
    assert!(xss(&s).is_none());
    assert!(sqli(&s).is_none());
    // Truncation on a multi-byte boundary must not panic.
    let s = "é".repeat(super::MAX_INPUT);
    assert!(sqli(&s).is_none());
    assert!(xss(&s).is_none());
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

#[test]
fn random_inputs_never_panic() {
    const ALPHABET: &[&str] = &[
        "'",
        "\"",
        "`",
        "<",
        ">",
        "/",
        "*",
        "-",
        "#",
        ";",
        "(",
        ")",
        "=",
        "&",
        "#x",
        "%",
        "\\",
        " ",
        "\t",
        "\n",
        "\0",
        "a",
        "1",
        "0x",
        "or",
        "and",
        "union",
        "select",
        "sleep",
        "on",
        "onerror",
        "script",
        "javascript:",
        "&#",
        "é",
        "漢",
        "\u{10ffff}",
        "/*",
        "*/",
        "--",
        "@@",
        "!",
        "|",
        "style",
        "expression(",
        "srcdoc=",
        "&lt;",
    ];
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for round in 0..20_000u32 {
        let len = if round % 1000 == 0 {
            20_000
        } else {
            (rng.next() % 64) as usize
        };
        let mut s = String::new();
        for _ in 0..len {
            let r = rng.next();
            if r.is_multiple_of(7) {
                // Arbitrary scalar value.
                if let Some(c) = char::from_u32((r >> 8) as u32 % 0x11_0000) {
                    s.push(c);
                }
            } else {
                s.push_str(ALPHABET[(r >> 16) as usize % ALPHABET.len()]);
            }
        }
        let _ = sqli(&s);
        let _ = xss(&s);
    }
}

#[test]
fn pathological_inputs_stay_fast() {
    let patterns = [
        "(",
        "'",
        "\"",
        "<a ",
        "&#",
        "<style>",
        "<!--",
        "/*",
        "or 1=",
        "union (",
        "<a x='",
        "(select ",
        "; select ",
        "\\'",
        "%27",
        "<",
        "a",
    ];
    for p in patterns {
        let s = p.repeat(super::MAX_INPUT / p.len() + 1);
        let t = std::time::Instant::now();
        let _ = sqli(&s);
        let _ = xss(&s);
        let el = t.elapsed();
        assert!(el.as_secs_f64() < 2.0, "{p:?} took {el:?}");
    }
}

/// Words are classified on their lower case as `str::to_lowercase` gives it, also for
/// non-ASCII letters that fold to ASCII (the Kelvin sign `K` is a `k`), and attribute
/// names on theirs char by char.
#[test]
fn non_ascii_letters_fold_as_before() {
    let m = sqli("1 or 1 li\u{212A}e 1").map(|m| m.fingerprint);
    assert_eq!(m.as_deref(), Some("sqli:tautology:&1o1"));
    // A final sigma is its own lower case (`ς`), not a keyword either way.
    assert_eq!(sqli("ΣΕΛΕΚΤΣ ΣΑΣ"), None);
    let m = xss("<b on\u{212A}eydown=alert(1)>").map(|m| m.fingerprint);
    assert_eq!(m.as_deref(), Some("xss:event-handler:onkeydown"));
}

/// A warm detector allocates nothing for a value it finds nothing in (the working
/// memory is kept per thread; a finding allocates its evidence).
#[test]
fn a_benign_value_costs_no_allocation_once_warm() {
    let values = [
        "Entrega por la tarde preferiblemente entre las cinco y las ocho",
        "calle mayor 12, 3b",
        "O'Brien",
        "jacinta.delgado@correo.example",
        "a=b c:d",
        "<b>bold</b> and <i>x</i>",
        "niño pequeño ÁÉÍ",
        "javascript: the good parts",
        "(1) and (2)",
    ];
    for v in values {
        let _ = (sqli(v), xss(v));
        let before = alloc_count::this_thread();
        let found = (sqli(v), xss(v));
        let after = alloc_count::this_thread();
        assert_eq!(found, (None, None), "{v:?}");
        assert_eq!(after - before, 0, "{v:?} allocated");
    }
}

/// Counts this thread's allocations (the test binary's global allocator).
#[path = "alloc_count.rs"]
mod alloc_count;
