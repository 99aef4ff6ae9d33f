//! The syslog parser and its authentication layer on real host logs in
//! `../shared/data` (loghub OpenSSH and Linux samples, Elastic's auth.log): every line
//! parses, and the counts a brute-force or user-enumeration scenario needs match
//! independent counts, taken with the grep command quoted beside each (run from
//! `shared/data`), and loghub's own structured CSV where there is one. Skipped (with a
//! message) when the data folder is absent.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use palisade_core::time::month_from_abbrev;
use palisade_core::{Event, EventKind, Timestamp};
use palisade_formats::{FormatSpec, LineParser, SyslogOptions, build, sniff};

fn data_dir() -> Option<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    if d.is_dir() {
        Some(d)
    } else {
        eprintln!("skipping: {} not found", d.display());
        None
    }
}

/// Lines without "\n" / "\r\n" (loghub's samples are CRLF), with 1-based numbers.
fn read_lines(path: &Path) -> Vec<(usize, Vec<u8>)> {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    data.split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.strip_suffix(b"\r").unwrap_or(l).to_vec()))
        .filter(|(_, l)| !l.is_empty())
        .collect()
}

fn parser(year: i32) -> std::sync::Arc<dyn LineParser> {
    build(&FormatSpec::Syslog(SyslogOptions { year: Some(year) })).unwrap()
}

/// Parses every line; panics with the line number and reason on the first failure.
fn parse_all(p: &dyn LineParser, path: &Path) -> Vec<Event> {
    read_lines(path)
        .into_iter()
        .map(|(no, line)| {
            p.parse(&line)
                .unwrap_or_else(|e| panic!("line {no}: {e}: {}", String::from_utf8_lossy(&line)))
        })
        .collect()
}

fn extra<'a>(ev: &'a Event, key: &str) -> Option<&'a str> {
    ev.extra
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn outcome(ev: &Event) -> Option<&str> {
    extra(ev, "outcome")
}

fn count<K: Ord>(it: impl Iterator<Item = K>) -> BTreeMap<K, usize> {
    let mut m = BTreeMap::new();
    for k in it {
        *m.entry(k).or_default() += 1;
    }
    m
}

fn with_outcome<'a>(events: &'a [Event], want: &'a str) -> impl Iterator<Item = &'a Event> {
    events.iter().filter(move |e| outcome(e) == Some(want))
}

/// Splits one CSV record (RFC 4180 quoting), enough for loghub's structured files.
fn csv_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    out.push(field);
    out
}

/// The structured CSV's rows (without the header), as field lists.
fn csv_rows(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .skip(1)
        .map(|l| csv_fields(l.strip_suffix('\r').unwrap_or(l)))
        .collect()
}

#[test]
fn loghub_openssh() {
    let Some(d) = data_dir() else { return };
    // The year is not logged and loghub does not give it: any year will do here.
    let events = parse_all(&*parser(2015), &d.join("loghub/OpenSSH/OpenSSH_2k.log"));
    assert_eq!(events.len(), 2_000);

    // Cross-check every line against loghub's structured CSV: host, pid, time, and the
    // outcome its template implies.
    let rows = csv_rows(&d.join("loghub/OpenSSH/OpenSSH_2k.log_structured.csv"));
    assert_eq!(rows.len(), 2_000);
    for (ev, row) in events.iter().zip(&rows) {
        let [
            id,
            month,
            day,
            time,
            host,
            pid,
            _content,
            event_id,
            _template,
        ] = &row[..]
        else {
            panic!("bad row {row:?}");
        };
        assert_eq!(ev.host.as_deref(), Some(host.as_str()), "line {id}");
        assert_eq!(extra(ev, "pid"), Some(pid.as_str()), "line {id}");
        assert_eq!(extra(ev, "program"), Some("sshd"), "line {id}");
        let want_ts = format!(
            "2015-{:02}-{:02}T{time}Z",
            if month == "Dec" { 12 } else { 0 },
            day.parse::<u32>().unwrap()
        );
        assert_eq!(ev.ts.to_string(), want_ts, "line {id}");
        let want = match event_id.as_str() {
            "E1" => Some("success"),
            "E2" | "E6" | "E7" | "E24" | "E25" | "E26" => Some("disconnect"),
            "E3" => Some("protocol_error"),
            "E4" | "E5" | "E15" | "E16" | "E17" => Some("too_many_failures"),
            "E8" | "E9" | "E10" | "E14" | "E19" | "E20" => Some("failure"),
            "E12" | "E13" | "E21" => Some("invalid_user"),
            "E22" => Some("session_closed"),
            "E23" => Some("session_opened"),
            "E27" => Some("break_in_attempt"),
            // `fatal: Write failed`, `PAM service(sshd) ignoring max retries`.
            "E11" | "E18" => None,
            other => panic!("unknown template {other}"),
        };
        assert_eq!(outcome(ev), want, "line {id} ({event_id})");
        let kind = if want.is_some() {
            EventKind::Auth
        } else {
            EventKind::Syslog
        };
        assert_eq!(ev.kind, kind, "line {id}");
    }

    let outcomes = count(events.iter().filter_map(outcome));
    // grep -c 'Failed password\|Failed none\|pam_unix(sshd:auth): authentication failure' → 520 + 4 + 494
    assert_eq!(outcomes["failure"], 1_018);
    // grep -c ']: Invalid user \|input_userauth_request: invalid user\|check pass; user unknown' → 113 + 113 + 135
    assert_eq!(outcomes["invalid_user"], 361);
    // grep -c 'Accepted ' → 1
    assert_eq!(outcomes["success"], 1);
    // grep -c 'POSSIBLE BREAK-IN ATTEMPT' → 85
    assert_eq!(outcomes["break_in_attempt"], 85);
    // grep -c 'Received disconnect from\|Connection closed by' → 468 + 34
    assert_eq!(outcomes["disconnect"], 502);
    // grep -c 'PAM [0-9]* more authentication failure\|Too many authentication failures' → 10 + 3
    assert_eq!(outcomes["too_many_failures"], 13);
    // grep -c 'Did not receive identification' → 10
    assert_eq!(outcomes["protocol_error"], 10);
    assert_eq!(outcomes["session_opened"], 1);
    assert_eq!(outcomes["session_closed"], 1);
    // grep -c 'ignoring max retries\|fatal: Write failed' → 7 + 1
    assert_eq!(
        events
            .iter()
            .filter(|e| e.kind == EventKind::Syslog)
            .count(),
        8
    );

    // Failed passwords: grep -c 'Failed password' → 520, every one with an address;
    // grep -c 'Failed password for invalid user' → 135.
    let failed: Vec<&Event> = events
        .iter()
        .filter(|e| outcome(e) == Some("failure") && extra(e, "auth_method") == Some("password"))
        .collect();
    assert_eq!(failed.len(), 520);
    assert!(
        failed
            .iter()
            .all(|e| e.client_ip.is_some() && extra(e, "port").is_some())
    );
    assert_eq!(
        failed
            .iter()
            .filter(|e| extra(e, "invalid_user") == Some("true"))
            .count(),
        135
    );
    // grep -c 'message repeated' → 2 (5 more failures each)
    assert_eq!(
        failed
            .iter()
            .filter(|e| extra(e, "repeated") == Some("5"))
            .count(),
        2
    );
    // grep -o 'Failed password.* from [0-9.]* port' OpenSSH_2k.log | awk '{print $(NF-1)}' | sort -u | wc -l → 23
    let ips: HashSet<IpAddr> = failed.iter().filter_map(|e| e.client_ip).collect();
    assert_eq!(ips.len(), 23);
    // The README's main sources: 286, 80 and 46 failed passwords
    // (grep 'Failed password' OpenSSH_2k.log | grep -c 'from 183.62.140.253 ').
    let per_ip = count(failed.iter().filter_map(|e| e.client_ip));
    assert_eq!(per_ip[&"183.62.140.253".parse().unwrap()], 286);
    assert_eq!(per_ip[&"187.141.143.180".parse().unwrap()], 80);
    assert_eq!(per_ip[&"103.99.0.122".parse().unwrap()], 46);

    // sshd's own `Invalid user X from IP` lines carry the address: 113.
    let invalid_with_ip = with_outcome(&events, "invalid_user")
        .filter(|e| e.client_ip.is_some())
        .count();
    assert_eq!(invalid_with_ip, 113);

    // PAM failures: 494, of which 6 name the client by host name
    // (grep 'pam_unix(sshd:auth): authentication failure' OpenSSH_2k.log | grep -o 'rhost=[^ ]*' | grep -vc 'rhost=[0-9.]*$' → 6)
    // and the rest by address (grep -c 'pam_unix(sshd:auth): authentication failure.*rhost=[0-9.]* ' → 488).
    let pam: Vec<&Event> = with_outcome(&events, "failure")
        .filter(|e| extra(e, "pam_service") == Some("sshd"))
        .collect();
    assert_eq!(pam.len(), 494);
    assert_eq!(
        pam.iter().filter(|e| extra(e, "rhost").is_some()).count(),
        6
    );
    assert_eq!(pam.iter().filter(|e| e.client_ip.is_some()).count(), 488);
    assert!(
        pam.iter()
            .all(|e| !(e.client_ip.is_some() && extra(e, "rhost").is_some()))
    );

    let accepted = with_outcome(&events, "success").next().unwrap();
    assert_eq!(accepted.user.as_deref(), Some("fztu"));
    assert_eq!(accepted.client_ip, Some("119.137.62.142".parse().unwrap()));
    assert_eq!(extra(accepted, "auth_method"), Some("password"));
}

#[test]
fn loghub_linux() {
    let Some(d) = data_dir() else { return };
    let path = d.join("loghub/Linux/Linux_2k.log");
    // 2005: ftpd writes the full date in its message (checked below).
    let events = parse_all(&*parser(2005), &path);
    assert_eq!(events.len(), 2_000);
    assert!(events.iter().all(|e| e.host.as_deref() == Some("combo")));

    // Program and pid against loghub's split. The only differences are the lines
    // whose first word is no syslog tag: `syslogd 1.4.1: restart.` (7 lines, loghub's
    // component `syslogd 1.4.1`) and `-- root[2421]: ROOT LOGIN ON tty2` (line 899,
    // component `-- root`), which keep their whole text as the message.
    let rows = csv_rows(&d.join("loghub/Linux/Linux_2k.log_structured.csv"));
    assert_eq!(rows.len(), 2_000);
    let mut untagged = Vec::new();
    for (ev, row) in events.iter().zip(&rows) {
        let (id, component, pid, content) = (&row[0], &row[5], &row[6], &row[7]);
        match extra(ev, "program") {
            Some(p) => {
                assert_eq!(p, component, "line {id}");
                assert_eq!(extra(ev, "pid").unwrap_or(""), pid, "line {id}");
                assert_eq!(
                    ev.message.as_deref().unwrap_or(""),
                    content.trim(),
                    "line {id}"
                );
            }
            None => untagged.push((id.parse::<usize>().unwrap(), component.clone())),
        }
    }
    assert_eq!(untagged.len(), 8, "{untagged:?}");
    assert_eq!(untagged[3], (899, "-- root".to_owned()));
    assert_eq!(
        untagged
            .iter()
            .filter(|(_, c)| c == "syslogd 1.4.1")
            .count(),
        7
    );

    // The ftpd lines carry the full date: it agrees with the syslog time (to within a
    // second or two: ftpd and syslogd read the clock at different moments).
    let mut dated = 0;
    for ev in &events {
        let Some(msg) = ev.message.as_deref() else {
            continue;
        };
        if extra(ev, "program") == Some("ftpd")
            && let Some(at) = msg.rfind(" at ")
        {
            let ctime: Vec<&str> = msg[at + 4..].split_whitespace().collect();
            let [_, month, day, hms, year] = ctime[..] else {
                panic!("{msg}");
            };
            let n = |s: &str| s.parse::<u32>().unwrap();
            let logged = Timestamp::from_civil(
                i64::from(n(year)),
                month_from_abbrev(month.as_bytes()).unwrap(),
                n(day),
                n(&hms[..2]),
                n(&hms[3..5]),
                n(&hms[6..]),
                0,
            )
            .unwrap();
            assert!(
                (ev.ts.as_micros() - logged.as_micros()).abs() <= 2_000_000,
                "{} vs {msg}",
                ev.ts
            );
            dated += 1;
        }
    }
    // grep -c 'ftpd.*connection from' → 909 (plus `User unknown timed out … at …`: 1)
    assert_eq!(dated, 910);

    let auth = events.iter().filter(|e| e.kind == EventKind::Auth).count();
    // grep -c 'sshd(pam_unix)\|su(pam_unix)\|login(pam_unix)\|gdm(pam_unix)\|klogind.*Authentication failed from\|ANONYMOUS FTP LOGIN'
    // → 677 + 172 + 2 + 2 + 23 + 2
    assert_eq!(auth, 878);
    let outcomes = count(events.iter().filter_map(outcome));
    // grep -c 'authentication failure;\|klogind.*Authentication failed from' → 490 + 23
    assert_eq!(outcomes["failure"], 513);
    // grep -c 'check pass; user unknown' → 117
    assert_eq!(outcomes["invalid_user"], 117);
    // grep -c 'session opened' / 'session closed' → 123 / 123 (sshd 36, su 86, login 1)
    assert_eq!(outcomes["session_opened"], 123);
    assert_eq!(outcomes["session_closed"], 123);
    // grep -c 'ANONYMOUS FTP LOGIN' → 2
    assert_eq!(outcomes["success"], 2);
    assert_eq!(outcomes.values().sum::<usize>(), auth);

    // sshd brute force as PAM logged it: 489 failures
    // (grep -c 'sshd(pam_unix).*authentication failure'), 300 naming an address
    // (grep -c 'sshd(pam_unix).*authentication failure.*rhost=[0-9.]* '), the other 189
    // a host name kept in rhost.
    let sshd_fail: Vec<&Event> = with_outcome(&events, "failure")
        .filter(|e| extra(e, "pam_service") == Some("sshd"))
        .collect();
    assert_eq!(sshd_fail.len(), 489);
    assert_eq!(
        sshd_fail.iter().filter(|e| e.client_ip.is_some()).count(),
        300
    );
    assert_eq!(
        sshd_fail
            .iter()
            .filter(|e| extra(e, "rhost").is_some())
            .count(),
        189
    );
    // grep 'sshd(pam_unix).*authentication failure' Linux_2k.log | grep -c '  user=' → 372
    let with_user = sshd_fail.iter().filter(|e| e.user.is_some()).count();
    assert_eq!(with_user, 372);
    // grep 'sshd(pam_unix).*authentication failure' Linux_2k.log | grep -o 'rhost=[0-9.]* ' | sort -u | wc -l → 27
    let ips: HashSet<IpAddr> = sshd_fail.iter().filter_map(|e| e.client_ip).collect();
    assert_eq!(ips.len(), 27);
    // … | grep -o 'rhost=[^ ]*' | sort -u | wc -l → 47, so 20 host names.
    let names: HashSet<&str> = sshd_fail.iter().filter_map(|e| extra(e, "rhost")).collect();
    assert_eq!(names.len(), 20);

    // klogind: grep -c 'klogind.*Authentication failed from' → 23, all from one address.
    let klog: Vec<&Event> = with_outcome(&events, "failure")
        .filter(|e| extra(e, "program") == Some("klogind"))
        .collect();
    assert_eq!(klog.len(), 23);
    assert!(
        klog.iter()
            .all(|e| e.client_ip == Some("163.27.187.39".parse().unwrap()))
    );

    // ftpd connections keep their address although they are not authentication.
    let ftp = events
        .iter()
        .filter(|e| e.kind == EventKind::Syslog && e.client_ip.is_some())
        .count();
    assert_eq!(ftp, 909);
}

#[test]
fn elastic_auth_log() {
    let Some(d) = data_dir() else { return };
    // 2017: see the dataset README.
    let events = parse_all(&*parser(2017), &d.join("auth-logs/elastic_auth.log"));
    assert_eq!(events.len(), 7_121);
    assert_eq!(events[0].ts.to_string(), "2017-03-27T13:06:56Z");
    assert_eq!(events[7_120].ts.to_string(), "2017-04-20T14:14:29Z");
    assert!(
        events
            .iter()
            .all(|e| e.host.as_deref() == Some("ip-10-77-20-248"))
    );
    // Programs as the README counts them.
    let programs = count(events.iter().filter_map(|e| extra(e, "program")));
    assert_eq!(programs["sshd"], 4_095);
    assert_eq!(programs["CRON"], 1_264);
    assert_eq!(programs["sudo"], 557);
    assert_eq!(programs["su"], 45);

    let outcomes = count(events.iter().filter_map(outcome));
    // grep -c 'Failed password\|Failed publickey\|pam_unix(sshd:auth): authentication failure' → 713 + 4 + 343
    assert_eq!(outcomes["failure"], 1_060);
    // grep -c 'Accepted \|Successful su for\|su\[[0-9]*\]: + ' → 226 + 9 + 9
    assert_eq!(outcomes["success"], 244);
    // grep -c ']: Invalid user \|input_userauth_request: invalid user\|check pass; user unknown' → 178 + 178 + 331
    assert_eq!(outcomes["invalid_user"], 687);
    // grep -c 'PAM [0-9]* more authentication failure\|Too many authentication failures\|maximum authentication attempts exceeded' → 141 + 189 + 189
    assert_eq!(outcomes["too_many_failures"], 519);
    // grep -c 'Received disconnect from\|Disconnected from\|Connection closed by\|Connection reset by' → 307 + 307 + 303 + 8
    assert_eq!(outcomes["disconnect"], 925);
    // grep -c 'sshd.*Connection from' → 17
    assert_eq!(outcomes["connect"], 17);
    // grep -c 'Did not receive identification string\|Bad protocol version\|Unable to negotiate' → 14 + 18 + 4
    assert_eq!(outcomes["protocol_error"], 36);
    // grep -c 'pam_unix(sshd:session): session opened\|pam_unix(sudo:session): session opened\|pam_unix(su:session): session opened' → 226 + 186 + 9
    assert_eq!(outcomes["session_opened"], 421);
    // … session closed → 225 + 185 + 9
    assert_eq!(outcomes["session_closed"], 419);
    // grep -c 'sudo: *[a-z_]* : TTY=' → 186
    assert_eq!(outcomes["command"], 186);
    // CRON, systemd, useradd, chpasswd and the sshd lines with no authentication
    // fact (`PAM service(sshd) ignoring max retries` 136, `Starting session` 11,
    // `User child is on pid` 11, `Server listening` 10, `Received signal` 4,
    // `Close session` 2, su's `pam_systemd` 9) stay Syslog.
    let auth = events.iter().filter(|e| e.kind == EventKind::Auth).count();
    assert_eq!(auth, outcomes.values().sum::<usize>());
    assert_eq!(auth, 4_095 - 174 + 557 + 45 - 9);

    // Brute force: 713 failed passwords (grep -c 'Failed password'), all with an
    // address; 331 for users that do not exist (grep -c 'Failed password for invalid user').
    let failed: Vec<&Event> = with_outcome(&events, "failure")
        .filter(|e| extra(e, "auth_method") == Some("password"))
        .collect();
    assert_eq!(failed.len(), 713);
    assert!(failed.iter().all(|e| e.client_ip.is_some()));
    assert_eq!(
        failed
            .iter()
            .filter(|e| extra(e, "invalid_user") == Some("true"))
            .count(),
        331
    );
    // grep 'Failed password' elastic_auth.log | grep -oE 'from [0-9.]+ port' | sort -u | wc -l → 105
    let ips: HashSet<IpAddr> = failed.iter().filter_map(|e| e.client_ip).collect();
    assert_eq!(ips.len(), 105);
    // The README's user names in failed logins:
    // grep 'Failed password' elastic_auth.log | sed -E 's/.*Failed password for (invalid user )?(.*) from .*/\2/' | sort | uniq -c
    let users = count(failed.iter().map(|e| e.user.as_deref().unwrap_or("")));
    assert_eq!(users["root"], 211);
    assert_eq!(users["elastic_user_0"], 148);
    assert_eq!(users["admin"], 141);
    assert_eq!(users[""], 43);
    assert_eq!(users["ubnt"], 33);
    assert_eq!(users["pi"], 24);
    // The staged burst: grep -c 'Failed password.* from 24.151.103.17 ' → 157,
    // grep -c 'Accepted .* from 24.151.103.17 ' → 47.
    let from = |e: &Event| e.client_ip == Some("24.151.103.17".parse().unwrap());
    assert_eq!(failed.iter().filter(|e| from(e)).count(), 157);
    assert_eq!(
        with_outcome(&events, "success").filter(|e| from(e)).count(),
        47
    );
    // Accepted logins: 190 password + 36 publickey (grep -c 'Accepted password' / 'Accepted publickey').
    let methods = count(
        with_outcome(&events, "success")
            .filter(|e| extra(e, "program") == Some("sshd"))
            .filter_map(|e| extra(e, "auth_method")),
    );
    assert_eq!(methods["password"], 190);
    assert_eq!(methods["publickey"], 36);

    // Every address sshd logged for a client, as a set:
    // grep 'sshd\[' elastic_auth.log | grep -v 'Starting session\|Close session\|Server listening' \
    //   | sed 's/ on 10.77.20.248 port 22//' | grep -oE '[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+' | sort -u | wc -l → 202
    let clients: HashSet<IpAddr> = events.iter().filter_map(|e| e.client_ip).collect();
    assert_eq!(clients.len(), 202);

    // sudo: who ran what as whom.
    let cmd = with_outcome(&events, "command").next().unwrap();
    assert_eq!(cmd.user.as_deref(), Some("ubuntu"));
    assert_eq!(extra(cmd, "target_user"), Some("root"));
    assert!(extra(cmd, "command").is_some() && extra(cmd, "tty").is_some());
}

#[test]
fn sniff_host_logs() {
    let Some(d) = data_dir() else { return };
    for file in [
        "loghub/OpenSSH/OpenSSH_2k.log",
        "loghub/Linux/Linux_2k.log",
        "auth-logs/elastic_auth.log",
    ] {
        let lines = read_lines(&d.join(file));
        let sample: Vec<&[u8]> = lines.iter().take(50).map(|(_, l)| l.as_slice()).collect();
        assert_eq!(
            sniff(&sample),
            Some(FormatSpec::Syslog(SyslogOptions::default())),
            "{file}"
        );
    }
    // Thunderbird's lines start with an alert label and an epoch, not a syslog header.
    let lines = read_lines(&d.join("loghub/Thunderbird/Thunderbird_2k.log"));
    let sample: Vec<&[u8]> = lines.iter().take(50).map(|(_, l)| l.as_slice()).collect();
    assert_eq!(sniff(&sample), None);
}
