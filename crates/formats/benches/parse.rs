//! Lines per second for `combined` on real access-log lines (read from
//! `../shared/data/access-logs` when present, else built-in lines), for a custom
//! nginx format with timing, host and forwarded-for fields, and for `syslog` (with its
//! authentication layer) on sshd, auth.log and /var/log/messages lines
//! (`cargo bench -p palisade-formats -- syslog`).

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use palisade_formats::{FormatSpec, LineParser, SyslogOptions, build};

const BUILTIN: &[&str] = &[
    r#"83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET /presentations/logstash-monitorama-2013/images/kibana-search.png HTTP/1.1" 200 203023 "http://semicomplete.com/presentations/logstash-monitorama-2013/" "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/32.0.1700.77 Safari/537.36""#,
    r#"23.95.237.180 - - [25/Oct/2015:04:11:27 +0100] "POST /join_form HTTP/1.1" 302 9093 "http://howto.basjes.nl/join_form" "Mozilla/5.0 (Windows NT 5.1; rv:35.0) Gecko/20100101 Firefox/35.0""#,
    r#"24.215.76.171 - - [03/Oct/2004:09:54:22 -0400] "GET /scripts/root.exe?/c+dir HTTP/1.0" 404 288 "-" "-""#,
    r#"66.249.73.135 - - [17/May/2015:10:05:40 +0000] "GET /blog/tags/ipv6 HTTP/1.1" 200 12251 "-" "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)""#,
];

/// Real lines per source (up to 10,000 each), or the built-ins when the data is absent.
fn sources() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/access-logs");
    let mut out = Vec::new();
    for (name, f) in [
        ("elastic", "elastic_apache_logs.log"),
        ("hackers", "hackers-access.log"),
        ("honeynet", "honeynet-2004/access_log.24"),
    ] {
        if let Ok(data) = std::fs::read(dir.join(f)) {
            let lines: Vec<Vec<u8>> = data
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .take(10_000)
                .map(<[u8]>::to_vec)
                .collect();
            out.push((name, lines));
        }
    }
    if out.is_empty() {
        eprintln!("access logs not found, using built-in lines");
        out.push((
            "builtin",
            BUILTIN.iter().map(|l| l.as_bytes().to_vec()).collect(),
        ));
    }
    out
}

fn run(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: &str,
    p: &dyn LineParser,
    lines: &[Vec<u8>],
) {
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function(id, |b| {
        b.iter(|| {
            let mut ok = 0usize;
            for l in lines {
                ok += p.parse(black_box(l)).is_ok() as usize;
            }
            ok
        })
    });
}

fn bench(c: &mut Criterion) {
    let sources = sources();
    let combined = build(&FormatSpec::Combined).unwrap();
    let mut g = c.benchmark_group("combined");
    let mut mixed = Vec::new();
    for (name, lines) in &sources {
        run(&mut g, name, &*combined, lines);
        mixed.extend(lines.iter().take(5_000).cloned());
    }
    if sources.len() > 1 {
        run(&mut g, "mixed", &*combined, &mixed);
    }
    g.finish();

    let fmt = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" "$http_x_forwarded_for" $host rt=$request_time"#;
    let custom = build(&FormatSpec::Nginx(fmt.into())).unwrap();
    let custom_lines: Vec<Vec<u8>> = mixed_or_first(&sources, &mixed)
        .iter()
        .map(|l| {
            let mut l = l.clone();
            l.extend_from_slice(br#" "10.0.0.1, 10.0.0.2" www.example.com rt=0.012"#);
            l
        })
        .collect();
    let mut g = c.benchmark_group("nginx_custom");
    run(&mut g, "mixed", &*custom, &custom_lines);
    g.finish();
}

const BUILTIN_SYSLOG: &[&str] = &[
    "Dec 10 06:55:46 LabSZ sshd[24200]: reverse mapping checking getaddrinfo for ns.marryaldkfaczcz.com [173.234.31.186] failed - POSSIBLE BREAK-IN ATTEMPT!",
    "Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186",
    "Dec 10 06:55:48 LabSZ sshd[24200]: Failed password for invalid user webmaster from 173.234.31.186 port 38926 ssh2",
    "Dec 10 07:07:38 LabSZ sshd[24206]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=52.80.34.196  user=root",
    "Dec 10 07:08:28 LabSZ sshd[24208]: Received disconnect from 52.80.34.196: 11: Bye Bye [preauth]",
];

/// Lines of the host logs in `../shared/data` (or built-ins when absent).
fn syslog_sources() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    let mut out = Vec::new();
    for (name, f) in [
        ("sshd", "loghub/OpenSSH/OpenSSH_2k.log"),
        ("auth_log", "auth-logs/elastic_auth.log"),
        ("linux_messages", "loghub/Linux/Linux_2k.log"),
    ] {
        if let Ok(data) = std::fs::read(dir.join(f)) {
            let lines: Vec<Vec<u8>> = data
                .split(|&b| b == b'\n')
                .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
                .filter(|l| !l.is_empty())
                .map(<[u8]>::to_vec)
                .collect();
            out.push((name, lines));
        }
    }
    if out.is_empty() {
        eprintln!("host logs not found, using built-in sshd lines");
        out.push((
            "sshd",
            BUILTIN_SYSLOG
                .iter()
                .map(|l| l.as_bytes().to_vec())
                .collect(),
        ));
    }
    out
}

fn bench_syslog(c: &mut Criterion) {
    let p = build(&FormatSpec::Syslog(SyslogOptions { year: Some(2017) })).unwrap();
    let mut g = c.benchmark_group("syslog");
    for (name, lines) in syslog_sources() {
        run(&mut g, name, &*p, &lines);
    }
    g.finish();
}

fn mixed_or_first<'a>(sources: &'a [(&str, Vec<Vec<u8>>)], mixed: &'a [Vec<u8>]) -> &'a [Vec<u8>] {
    if mixed.is_empty() {
        &sources[0].1
    } else {
        mixed
    }
}

// criterion_group! generates an undocumented public function.
#[allow(missing_docs)]
mod group {
    use super::*;
    criterion_group!(benches, bench, bench_syslog);
}
use group::benches;
criterion_main!(benches);
