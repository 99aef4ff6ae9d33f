//! Every parser on damaged real input: the recorded pages, records and inventories cut
//! at many points and with bytes flipped (a deterministic stand-in for the fuzz targets
//! in `fuzz/`, run with every test). Nothing may panic; damaged JSON must be refused.

use std::path::PathBuf;

use palisade_vuln::inventory;
use palisade_vuln::observe::banner::{http_header, ssh_banner, syslog_line};

fn data(path: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(path),
    )
    .unwrap()
}

/// Cuts and flips, deterministically.
fn damaged(sample: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let n = sample.len();
    for k in 1..=24 {
        out.push(sample[..n * k / 25].to_vec());
    }
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    for _ in 0..24 {
        let mut s = sample.to_vec();
        for _ in 0..8 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let i = (seed as usize) % n.max(1);
            if let Some(b) = s.get_mut(i) {
                *b = (seed >> 32) as u8;
            }
        }
        out.push(s);
    }
    out
}

#[test]
fn damaged_feed_pages_and_records_are_refused_or_read_never_a_panic() {
    let page = data("nvd/nvdcve-2.0-page-002.json");
    for d in damaged(&page) {
        if d.len() < page.len() {
            assert!(
                palisade_vuln::nvd::parse_page(&d).is_err(),
                "a cut page is refused"
            );
        } else {
            let _ = palisade_vuln::nvd::parse_page(&d);
        }
    }
    for file in [
        "circl/api_cve_CVE-2023-5568.json",
        "circl/api_cve_CVE-2020-17106.json",
    ] {
        for d in damaged(&data(file)) {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&d) {
                let _ = palisade_vuln::circl::parse_record(&v);
            }
        }
    }
}

#[test]
fn damaged_inventories_never_panic() {
    for file in [
        "sbom/laravel-7.12.0.cdx-1.4.json",
        "sbom/spdx-examples_example11_sbom.spdx.json",
        "sbom/dpkg-query.tsv",
        "sbom/euleros-2.8-aarch64.rpm-qa.txt",
        "sbom/mariner-2.0.container-manifest-2.txt",
    ] {
        for d in damaged(&data(file)) {
            if let Ok(inv) = inventory::parse(&d, None, 100_000) {
                for item in &inv.items {
                    let _ = palisade_vuln::identify::identify(item);
                }
            }
        }
    }
}

#[test]
fn damaged_banners_never_panic() {
    for sample in [
        "Apache/2.4.41 (Ubuntu) OpenSSL/1.1.1f PHP/7.4.3 Jetty(9.4.43.v20210629)",
        "SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.1",
        "debug1: sshd version OpenSSH_9.2p1, OpenSSL 3.0.11 19 Sep 2023",
    ] {
        for d in damaged(sample.as_bytes()) {
            let t = String::from_utf8_lossy(&d);
            let _ = http_header(&t);
            let _ = ssh_banner(&t);
            let _ = syslog_line(Some("sshd"), &t);
            let _ = syslog_line(None, &t);
        }
    }
}
