//! A property-style test: many thousands of random and mutated byte strings never make
//! any parser (or the format compilers, or sniff) panic. A tiny xorshift PRNG keeps it
//! deterministic without a new dependency.

use palisade_formats::{FormatSpec, JsonFieldMap, LineParser, SyslogOptions, build, sniff};

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
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const SEEDS: &[&[u8]] = &[
    br#"83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET /presentations/x.png?a=b HTTP/1.1" 200 203023 "http://semicomplete.com/" "Mozilla/5.0 (Macintosh)""#,
    br#"68.49.152.86 - - [22/Apr/2004:11:55:13 -0400] "GET" /hostadmin/?page=' HTTP/1.0" 501 345 "-" "Mozilla/4.75 (Nikto/1.32 )""#,
    br#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /\x22x HTTP/1.1" 400 0 "-" "a\"b \xC3\xA9""#,
    b"[Wed Oct 11 14:32:52.123456 2000] [core:error] [pid 35708:tid 4328636416] [client 72.15.99.187:57445] AH00128: File does not exist",
    b"[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok /etc/httpd/conf/workers2.properties",
    br#"{"time":"2020-01-01T00:00:00Z","remote_addr":"::1","request":"GET / HTTP/1.1","status":200,"request_time":"0.1"}"#,
    b"www.example.com:443 198.51.100.4 - - [11/Oct/2000:13:55:36 +0000] \"HEAD /x HTTP/1.1\" 301 512 1532",
    b"Dec 10 06:55:46 LabSZ sshd[24200]: Failed password for invalid user webmaster from 173.234.31.186 port 38926 ssh2",
    b"Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=218.188.2.4  user=root",
    b"Dec 10 07:13:56 LabSZ sshd[24227]: message repeated 5 times: [ Failed password for root from 5.36.59.76 port 42393 ssh2]",
    b"Mar 27 13:06:56 ip-10-77-20-248 sudo:   ubuntu : 3 incorrect password attempts ; TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/ls",
    b"Dec 10 06:55:46 LabSZ sshd[24200]: reverse mapping checking getaddrinfo for ns.example [173.234.31.186] failed - POSSIBLE BREAK-IN ATTEMPT!",
    b"Dec 10 06:55:46 LabSZ sshd[24200]: Received disconnect from 2001:db8::1 port 22:11: Bye Bye [preauth]",
    b"Dec 10 06:55:46 LabSZ sshd[24200]: Disconnecting invalid user a b 1.2.3.4 port 22: Too many authentication failures [preauth]",
    b"Dec 10 06:55:46 LabSZ su[1]: + /dev/pts/0 ubuntu:root",
    b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"App\\]\"][x@1] \xEF\xBB\xBFAn application event",
    b"<38>2024-03-01T10:00:00.5+01:00 web1 sshd[5]: Accepted publickey for bob from ::1 port 50000 ssh2: ED25519 SHA256:abc",
];

const ALPHABET: &[u8] = b" -[]\"\\/:.?{}%$0123456789xHTTP\t\r\x00\xff\xc3<>=;()";

fn mutate(rng: &mut XorShift, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(6) {
        let pos = rng.below(v.len() + 1);
        match rng.below(5) {
            0 if !v.is_empty() => {
                v.remove(pos.min(v.len() - 1));
            }
            1 => v.insert(pos, ALPHABET[rng.below(ALPHABET.len())]),
            2 if pos < v.len() => v[pos] = rng.next() as u8,
            3 => v.truncate(pos),
            _ => {
                let a = rng.below(v.len() + 1);
                let b = rng.below(v.len() + 1);
                let chunk = v[a.min(b)..a.max(b)].to_vec();
                let at = rng.below(v.len() + 1);
                v.splice(at..at, chunk);
            }
        }
    }
    v
}

fn random_bytes(rng: &mut XorShift) -> Vec<u8> {
    let len = rng.below(200);
    (0..len)
        .map(|_| {
            if rng.below(2) == 0 {
                ALPHABET[rng.below(ALPHABET.len())]
            } else {
                rng.next() as u8
            }
        })
        .collect()
}

#[test]
fn random_and_mutated_lines_never_panic() {
    let parsers: Vec<std::sync::Arc<dyn LineParser>> = [
        FormatSpec::Combined,
        FormatSpec::Common,
        FormatSpec::ApacheError,
        FormatSpec::Json(JsonFieldMap::default()),
        FormatSpec::Nginx(r#"$remote_addr "$request" $status $msec $time_iso8601 rt=$request_time "$http_user_agent""#.into()),
        FormatSpec::Apache(r#"%v:%p %a %l %u %t \"%r\" %>s %O %D %{X-Forwarded-For}i"#.into()),
        FormatSpec::Syslog(SyslogOptions::default()),
        FormatSpec::Syslog(SyslogOptions { year: Some(2000) }),
    ]
    .iter()
    .map(|s| build(s).unwrap())
    .collect();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut parsed = 0;
    for i in 0..20_000 {
        let line = if i % 4 == 0 {
            random_bytes(&mut rng)
        } else {
            let seed = SEEDS[rng.below(SEEDS.len())];
            mutate(&mut rng, seed)
        };
        for p in &parsers {
            match p.parse(&line) {
                Ok(ev) => {
                    parsed += 1;
                    assert!(ev.source.is_empty());
                }
                Err(e) => assert!(!e.reason.is_empty()),
            }
        }
        if i % 10 == 0 {
            let _ = sniff(&[&line, SEEDS[0], &line]);
        }
    }
    // Mutations keep many lines valid, so the success paths are exercised too.
    assert!(parsed > 1_000, "{parsed}");
}

#[test]
fn random_format_strings_never_panic() {
    let mut rng = XorShift(42);
    let pieces: &[&str] = &[
        "$remote_addr",
        "${status}",
        "$",
        "${",
        "}",
        " ",
        "\"",
        "[",
        "]",
        "$request",
        "%h",
        "%>s",
        "%{Referer}i",
        "%{",
        "%",
        "%%",
        "\\\"",
        "\\",
        "%t",
        "%r",
        "x",
        "$msec",
    ];
    let mut compiled = 0;
    for _ in 0..5_000 {
        let n = 1 + rng.below(8);
        let fmt: String = (0..n).map(|_| pieces[rng.below(pieces.len())]).collect();
        for spec in [
            FormatSpec::Nginx(fmt.clone()),
            FormatSpec::Apache(fmt.clone()),
        ] {
            if let Ok(p) = build(&spec) {
                compiled += 1;
                let line = random_bytes(&mut rng);
                let _ = p.parse(&line);
                let _ = p.parse(fmt.as_bytes());
            }
        }
    }
    assert!(compiled > 100, "{compiled}");
}

#[test]
fn mutated_syslog_lines_keep_the_auth_invariants() {
    // Only the syslog and auth seeds, mutated harder: whatever parses is a Syslog or Auth
    // event, and an Auth event always says what happened.
    let seeds: Vec<&[u8]> = SEEDS
        .iter()
        .copied()
        .filter(|s| {
            s.starts_with(b"Dec")
                || s.starts_with(b"Jun")
                || s.starts_with(b"Mar")
                || s.starts_with(b"<")
        })
        .collect();
    assert!(seeds.len() >= 10);
    let p = build(&FormatSpec::Syslog(SyslogOptions::default())).unwrap();
    let mut rng = XorShift(0x5151_0a0a_dead_beef);
    let (mut auth, mut syslog) = (0, 0);
    for _ in 0..30_000 {
        let mut line = seeds[rng.below(seeds.len())].to_vec();
        for _ in 0..1 + rng.below(3) {
            line = mutate(&mut rng, &line);
        }
        let Ok(ev) = p.parse(&line) else { continue };
        let outcome = ev.extra.iter().any(|(k, _)| k == "outcome");
        match ev.kind {
            palisade_core::EventKind::Auth => {
                assert!(outcome, "{:?}", String::from_utf8_lossy(&line));
                auth += 1;
            }
            palisade_core::EventKind::Syslog => syslog += 1,
            other => panic!("{other:?}"),
        }
    }
    assert!(auth > 1_000 && syslog > 1_000, "{auth} {syslog}");
}
