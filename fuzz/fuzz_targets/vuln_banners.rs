//! Any text as a `Server` header, an SSH banner and a syslog line: never panics, and
//! every piece of software found has a bounded name and version.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_vuln::observe::banner::{http_header, ssh_banner, syslog_line};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (program, message) = text.split_once('\n').unwrap_or(("sshd", &text));
    let found = http_header(&text)
        .into_iter()
        .chain(ssh_banner(&text))
        .chain(syslog_line(Some(program), message))
        .chain(syslog_line(None, message));
    for s in found {
        assert!(s.name.len() <= 256 && s.version.len() <= 128);
    }
});
