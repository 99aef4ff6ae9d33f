//! `palisade ingest FILE.pcap` as a user runs it: the capture is recognised by its magic
//! (also gzipped), its flows are stored, and the flow scenarios judge them: a generated
//! SYN scan raises `network-vertical-portscan`, ordinary web connections raise nothing,
//! and an HTTP request inside a capture meets the signature rules; a DNS tunnel and a
//! beaconing host raise their scenarios, each threat linked to its flows, while ordinary
//! DNS lookups do not.

use std::ffi::OsStr;
use std::io::Write;
use std::process::Output;

use palisade_flows::reader::{PcapWriter, tcp_frame, udp_frame};

mod common;

fn ingest(data: &std::path::Path, file: &std::path::Path) -> String {
    let o: Output = common::palisade(data, [OsStr::new("ingest"), file.as_os_str()])
        .output()
        .expect("run palisade");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `ports` SYNs from one scanner to one host, each refused.
fn scan(ports: u16) -> Vec<u8> {
    let mut w = PcapWriter::new(Vec::new(), 1).expect("header");
    let t0 = 1_700_000_000_000_000i64;
    for (i, port) in (1..=ports).enumerate() {
        let t = t0 + i as i64 * 2_000;
        w.packet(
            t,
            &tcp_frame([192, 0, 2, 7], [192, 0, 2, 9], 61_000, port, 0x02, b""),
        )
        .expect("write");
        w.packet(
            t + 100,
            &tcp_frame([192, 0, 2, 9], [192, 0, 2, 7], port, 61_000, 0x14, b""),
        )
        .expect("write");
    }
    w.finish().expect("flush")
}

/// `n` complete HTTP connections from one client to one server, each asking `/`.
fn browsing(n: u16) -> Vec<u8> {
    browsing_to(n, "/")
}

/// `n` complete HTTP connections, each asking `target`.
fn browsing_to(n: u16, target: &str) -> Vec<u8> {
    let request = format!("GET {target} HTTP/1.1\r\nHost: a\r\n\r\n");
    let mut w = PcapWriter::new(Vec::new(), 1).expect("header");
    let mut t = 1_700_000_000_000_000i64;
    let (c, s) = ([192, 0, 2, 20], [192, 0, 2, 80]);
    for i in 0..n {
        let cp = 50_000 + i;
        for (up, flags, payload) in [
            (true, 0x02, &b""[..]),
            (false, 0x12, &b""[..]),
            (true, 0x18, request.as_bytes()),
            (false, 0x18, &b"HTTP/1.1 200 OK\r\n\r\n"[..]),
            (true, 0x11, &b""[..]),
            (false, 0x11, &b""[..]),
            (true, 0x10, &b""[..]),
        ] {
            let f = if up {
                tcp_frame(c, s, cp, 80, flags, payload)
            } else {
                tcp_frame(s, c, 80, cp, flags, payload)
            };
            w.packet(t, &f).expect("write");
            t += 500;
        }
    }
    w.finish().expect("flush")
}

#[test]
fn a_scan_capture_raises_a_port_scan_and_browsing_does_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scan_file = dir.path().join("scan.pcap.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&scan_file).expect("create"),
        flate2::Compression::fast(),
    );
    gz.write_all(&scan(40)).expect("gzip");
    gz.finish().expect("gzip");
    let out = ingest(&dir.path().join("a"), &scan_file);
    assert!(out.contains("capture, 80 packets, 40 flows"), "{out}");
    assert!(out.contains("network-vertical-portscan 1"), "{out}");

    let web = dir.path().join("web.pcap");
    std::fs::write(&web, browsing(40)).expect("write");
    let out = ingest(&dir.path().join("b"), &web);
    assert!(out.contains("capture, 280 packets, 40 flows"), "{out}");
    assert!(
        out.contains("0 signature threats, 0 scenario alerts"),
        "{out}"
    );
}

#[test]
fn http_requests_inside_a_capture_meet_the_signature_rules() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("sqli.pcap");
    std::fs::write(
        &file,
        browsing_to(
            1,
            "/item?id=1%27%20UNION%20SELECT%20username,password%20FROM%20users--",
        ),
    )
    .expect("write");
    let out = ingest(&dir.path().join("a"), &file);
    assert!(out.contains("capture, 7 packets, 1 flows"), "{out}");
    assert!(out.contains("1 signature threats"), "{out}");
}

/// A DNS query for `name` of type `qtype`, and its answer (an empty one).
fn dns(id: u16, name: &str, qtype: u16, response: bool) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend(if response { [0x81, 0x80] } else { [0x01, 0x00] });
    m.extend([0, 1, 0, 0, 0, 0, 0, 0]);
    for l in name.split('.') {
        m.push(l.len() as u8);
        m.extend(l.as_bytes());
    }
    m.push(0);
    m.extend(qtype.to_be_bytes());
    m.extend([0, 1]);
    m
}

/// `n` DNS queries and answers over one source port, for names from `name(i)`.
fn dns_flow(n: u16, qtype: u16, name: impl Fn(u16) -> String) -> Vec<u8> {
    let mut w = PcapWriter::new(Vec::new(), 1).expect("header");
    let (c, r) = ([192, 0, 2, 20], [192, 0, 2, 53]);
    let mut t = 1_700_000_000_000_000i64;
    for i in 0..n {
        let q = name(i);
        w.packet(t, &udp_frame(c, r, 44_639, 53, &dns(i, &q, qtype, false)))
            .expect("write");
        w.packet(
            t + 300,
            &udp_frame(r, c, 53, 44_639, &dns(i, &q, qtype, true)),
        )
        .expect("write");
        t += 100_000;
    }
    w.finish().expect("flush")
}

#[test]
fn a_dns_tunnel_raises_its_threat_linked_to_the_flow_and_lookups_do_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    // iodine-like: NULL queries whose first label is 45 characters of encoded data.
    let tunnel = dir.path().join("tunnel.pcap");
    std::fs::write(
        &tunnel,
        dns_flow(40, 10, |i| {
            let data: String = (0..45u16)
                .map(|k| {
                    let x = (i.wrapping_mul(7919) ^ k.wrapping_mul(10_007)).wrapping_mul(31) % 32;
                    b"abcdefghijklmnopqrstuvwxyz234567"[usize::from(x)] as char
                })
                .collect();
            format!("{data}.t.pirate.sea")
        }),
    )
    .expect("write");
    let out = ingest(&dir.path().join("a"), &tunnel);
    assert!(out.contains("capture, 80 packets, 1 flows"), "{out}");
    assert!(out.contains("network-dns-tunnel 1"), "{out}");
    assert!(out.contains("1 threat-flow links"), "{out}");

    let lookups = dir.path().join("lookups.pcap");
    let names = [
        "www.wikipedia.org",
        "upload.wikimedia.org",
        "example.com",
        "mail.example.org",
    ];
    std::fs::write(
        &lookups,
        dns_flow(40, 1, |i| names[usize::from(i) % names.len()].to_string()),
    )
    .expect("write");
    let out = ingest(&dir.path().join("b"), &lookups);
    assert!(
        out.contains("0 signature threats, 0 scenario alerts"),
        "{out}"
    );
}

#[test]
fn regular_check_ins_raise_beaconing_and_the_threat_points_at_a_flow() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("beacon.pcap");
    let mut w = PcapWriter::new(Vec::new(), 1).expect("header");
    let (c, s) = ([192, 0, 2, 20], [198, 51, 100, 7]);
    let jitter_ms = [
        0i64, 900, -700, 400, -1200, 300, 800, -500, 100, -300, 600, -900,
    ];
    for (i, j) in jitter_ms.iter().enumerate() {
        let mut t = 1_700_000_000_000_000 + i as i64 * 60_000_000 + j * 1_000;
        let cp = 50_000 + i as u16;
        for (up, flags) in [
            (true, 0x02),
            (false, 0x12),
            (true, 0x11),
            (false, 0x11),
            (true, 0x10),
        ] {
            let f = if up {
                tcp_frame(c, s, cp, 443, flags, b"")
            } else {
                tcp_frame(s, c, 443, cp, flags, b"")
            };
            w.packet(t, &f).expect("write");
            t += 20_000;
        }
    }
    std::fs::write(&file, w.finish().expect("flush")).expect("write");
    let out = ingest(&dir.path().join("a"), &file);
    assert!(out.contains("capture, 60 packets, 12 flows"), "{out}");
    assert!(out.contains("network-beaconing 1"), "{out}");
    assert!(out.contains("1 threat-flow links"), "{out}");
}
