//! Every line of the real access and error logs in `../shared/data` parses, except the
//! known broken ones, whose count and reasons are asserted exactly. Skipped (with a
//! message) when the data folder is absent.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use palisade_formats::{FormatSpec, LineParser, build, sniff};

fn data_dir() -> Option<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    if d.is_dir() {
        Some(d)
    } else {
        eprintln!("skipping: {} not found", d.display());
        None
    }
}

/// Non-empty lines without their "\n" / "\r\n", with 1-based line numbers.
fn read_lines(path: &Path) -> Vec<(usize, Vec<u8>)> {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    data.split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.strip_suffix(b"\r").unwrap_or(l).to_vec()))
        .filter(|(_, l)| !l.is_empty())
        .collect()
}

struct Outcome {
    events: Vec<palisade_core::Event>,
    failed: Vec<(usize, String)>,
}

fn parse_all(p: &dyn LineParser, path: &Path) -> Outcome {
    let mut out = Outcome {
        events: Vec::new(),
        failed: Vec::new(),
    };
    for (no, line) in read_lines(path) {
        match p.parse(&line) {
            Ok(ev) => out.events.push(ev),
            Err(e) => out.failed.push((no, e.reason)),
        }
    }
    out
}

fn count<K: Ord>(it: impl Iterator<Item = K>) -> BTreeMap<K, usize> {
    let mut m = BTreeMap::new();
    for k in it {
        *m.entry(k).or_default() += 1;
    }
    m
}

#[test]
fn elastic_apache_logs() {
    let Some(d) = data_dir() else { return };
    let p = build(&FormatSpec::Combined).unwrap();
    let out = parse_all(&*p, &d.join("access-logs/elastic_apache_logs.log"));
    assert_eq!(out.events.len(), 9_999);
    // Line 8,899 is cut short: its User-Agent has no closing quote.
    assert_eq!(out.failed.len(), 1, "{:?}", out.failed);
    assert_eq!(out.failed[0].0, 8_899);
    assert!(
        out.failed[0]
            .1
            .starts_with("http_user_agent: missing closing"),
        "{}",
        out.failed[0].1
    );
    // Cross-check with the dataset README (whose counts leave the cut line out).
    let ips: HashSet<_> = out.events.iter().filter_map(|e| e.client_ip).collect();
    assert_eq!(ips.len(), 1_753);
    let status = count(out.events.iter().filter_map(|e| e.status));
    assert_eq!(status[&200], 9_125);
    assert_eq!(status[&304], 445);
    assert_eq!(status[&404], 213);
    let methods = count(out.events.iter().filter_map(|e| e.method.clone()));
    assert_eq!(methods["GET"], 9_951);
    assert_eq!(methods["HEAD"], 42);
    assert_eq!(methods["POST"], 5);
    assert_eq!(methods["OPTIONS"], 1);
    let first = &out.events[0];
    assert_eq!(first.ts.to_string(), "2015-05-17T10:05:03Z");
    assert_eq!(
        first.path.as_deref(),
        Some("/presentations/logstash-monitorama-2013/images/kibana-search.png")
    );
    assert_eq!(first.bytes, Some(203_023));
    assert!(out.events.iter().all(|e| e.protocol.is_some()));
}

#[test]
fn hackers_access_log() {
    let Some(d) = data_dir() else { return };
    let p = build(&FormatSpec::Combined).unwrap();
    let out = parse_all(&*p, &d.join("access-logs/hackers-access.log"));
    assert_eq!(out.failed, vec![]);
    assert_eq!(out.events.len(), 3_456);
    let ips: HashSet<_> = out.events.iter().filter_map(|e| e.client_ip).collect();
    assert_eq!(ips.len(), 520);
    let methods = count(out.events.iter().filter_map(|e| e.method.clone()));
    assert_eq!(methods["GET"], 2_376);
    assert_eq!(methods["POST"], 1_080);
    let status = count(out.events.iter().filter_map(|e| e.status));
    assert_eq!(status[&302], 585);
    // Absolute-URI requests keep the whole target as the path.
    let absolute = out
        .events
        .iter()
        .filter(|e| e.path.as_deref().is_some_and(|p| p.starts_with("http://")))
        .count();
    assert_eq!(absolute, 13);
    let login = out
        .events
        .iter()
        .find(|e| e.path.as_deref() == Some("/acl_users/credentials_cookie_auth/require_login"))
        .expect("a require_login request");
    assert!(
        login
            .query
            .as_deref()
            .is_some_and(|q| q.contains("came_from"))
    );
    // +0100 is converted to UTC.
    assert_eq!(out.events[0].ts.to_string(), "2015-10-25T03:11:25Z");
}

#[test]
fn honeynet_2004() {
    let Some(d) = data_dir() else { return };
    let p = build(&FormatSpec::Combined).unwrap();
    let dir = d.join("access-logs/honeynet-2004");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("access_log"))
        })
        .collect();
    files.sort();
    assert_eq!(files.len(), 23);
    let mut events = Vec::new();
    let mut failed = Vec::new();
    for f in &files {
        let out = parse_all(&*p, f);
        events.extend(out.events);
        failed.extend(out.failed.into_iter().map(|(n, r)| (f.clone(), n, r)));
    }
    // All 38,487 lines parse, including the four Nikto lines with a raw quote inside
    // the request (`"GET" /hostadmin/?page=' HTTP/1.0"`): the engine backtracks to the
    // next closing quote when the status after the first one is not 3 digits.
    assert_eq!(failed, vec![]);
    assert_eq!(events.len(), 38_487);
    let nikto: Vec<_> = events
        .iter()
        .filter(|e| e.method.as_deref() == Some("GET\""))
        .collect();
    assert_eq!(nikto.len(), 4);
    assert_eq!(nikto[0].path.as_deref(), Some("/hostadmin/"));
    assert_eq!(nikto[0].query.as_deref(), Some("page='"));
    assert_eq!(nikto[0].status, Some(501));
    assert_eq!(nikto[2].path.as_deref(), Some("/cgi-bin/cart.pl"));
    assert_eq!(nikto[2].status, Some(404));

    // 9,269 distinct clients: 9,268 IPs and one hostname, kept in extra as "client".
    let ips: HashSet<_> = events.iter().filter_map(|e| e.client_ip).collect();
    assert_eq!(ips.len(), 9_268);
    let hosts: HashSet<_> = events
        .iter()
        .flat_map(|e| {
            e.extra
                .iter()
                .filter(|(k, _)| k == "client")
                .map(|(_, v)| v.clone())
        })
        .collect();
    assert_eq!(hosts.len(), 1);
    assert!(hosts.contains("pcp740115pcs.reston01.va.comcast.net"));
    let status = count(events.iter().filter_map(|e| e.status));
    // The README's regex counts leave out the four Nikto lines (two 404, two 501).
    assert_eq!(status[&404], 23_680 + 2);
    assert_eq!(status[&501], 96 + 2);
    assert_eq!(status[&200], 11_884);
    assert_eq!(status[&414], 1_048);
    assert_eq!(status[&408], 229);
    let methods = count(events.iter().filter_map(|e| e.method.clone()));
    assert_eq!(methods["PROPFIND"], 15_244);
    assert_eq!(methods["OPTIONS"], 2_798);
    assert_eq!(methods["SEARCH"], 1_069);
    assert_eq!(methods["CONNECT"], 427);
    assert_eq!(methods["get"], 31);
    // `"-"` requests (timeouts) have no request parts.
    let no_request = events
        .iter()
        .filter(|e| e.status == Some(408) && e.method.is_none())
        .count();
    assert_eq!(no_request, 229);
    // Raw bytes above 0x7F become U+FFFD, never an error.
    assert!(
        events
            .iter()
            .any(|e| e.path.as_deref().is_some_and(|p| p.contains('\u{fffd}')))
    );
    // -0400 is converted to UTC; the logs run from 21 Apr to 11 Oct 2004.
    let (min, max) = (
        events.iter().map(|e| e.ts).min().unwrap(),
        events.iter().map(|e| e.ts).max().unwrap(),
    );
    assert!(min.to_string().starts_with("2004-04-21T14:56"), "{min}");
    assert!(max.to_string().starts_with("2004-10-11T11:11"), "{max}");
}

#[test]
fn loghub_apache_error_log() {
    let Some(d) = data_dir() else { return };
    let p = build(&FormatSpec::ApacheError).unwrap();
    let out = parse_all(&*p, &d.join("loghub/Apache/Apache_2k.log"));
    assert_eq!(out.failed, vec![]);
    assert_eq!(out.events.len(), 2_000);
    let levels = count(out.events.iter().map(|e| {
        e.extra
            .iter()
            .find(|(k, _)| k == "level")
            .map(|(_, v)| v.clone())
            .unwrap()
    }));
    assert_eq!(levels["error"], 595);
    assert_eq!(levels["notice"], 1_405);
    assert!(out.events.iter().all(|e| e.message.is_some()));
    let with_client = out.events.iter().filter(|e| e.client_ip.is_some()).count();
    assert!(with_client > 0);
    assert_eq!(out.events[0].ts.to_string(), "2005-12-04T04:47:44Z");
}

#[test]
fn sniff_real_files() {
    let Some(d) = data_dir() else { return };
    let cases = [
        ("access-logs/elastic_apache_logs.log", FormatSpec::Combined),
        ("access-logs/hackers-access.log", FormatSpec::Combined),
        (
            "access-logs/honeynet-2004/access_log.25",
            FormatSpec::Combined,
        ),
        (
            "access-logs/honeynet-2004/access_log.11",
            FormatSpec::Combined,
        ),
        ("loghub/Apache/Apache_2k.log", FormatSpec::ApacheError),
    ];
    for (file, want) in cases {
        let lines = read_lines(&d.join(file));
        let sample: Vec<&[u8]> = lines.iter().take(50).map(|(_, l)| l.as_slice()).collect();
        assert_eq!(sniff(&sample), Some(want.clone()), "{file}");
        // The same lines cut down to the common format are detected as common.
        if want == FormatSpec::Combined {
            let common: Vec<Vec<u8>> = lines
                .iter()
                .take(50)
                .map(|(_, l)| cut_to_common(l))
                .collect();
            let sample: Vec<&[u8]> = common.iter().map(Vec::as_slice).collect();
            assert_eq!(sniff(&sample), Some(FormatSpec::Common), "{file} as common");
            let p = build(&FormatSpec::Common).unwrap();
            assert!(sample.iter().all(|l| p.parse(l).is_ok()));
        }
    }
    // Other logs are not mistaken for access logs: an auth.log is syslog.
    let auth = read_lines(&d.join("auth-logs/elastic_auth.log"));
    let sample: Vec<&[u8]> = auth.iter().take(50).map(|(_, l)| l.as_slice()).collect();
    assert_eq!(
        sniff(&sample),
        Some(FormatSpec::Syslog(
            palisade_formats::SyslogOptions::default()
        ))
    );
}

/// Drops ` "referer" "user agent"` from a combined line.
fn cut_to_common(line: &[u8]) -> Vec<u8> {
    let p = build(&FormatSpec::Combined).unwrap();
    let ev = p.parse(line).unwrap();
    let tail = format!(
        " \"{}\" \"{}\"",
        ev.referer.as_deref().unwrap_or("-"),
        ev.user_agent.as_deref().unwrap_or("-")
    );
    line.strip_suffix(tail.as_bytes())
        .unwrap_or_else(|| panic!("{}", String::from_utf8_lossy(line)))
        .to_vec()
}
