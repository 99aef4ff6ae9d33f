//! Correctness evidence: expected against found for product/version pairs across
//! Apache httpd, nginx, OpenSSH, OpenSSL, log4j, Tomcat, PHP and WordPress (and
//! GlobalProtect for AND configurations), evaluated against the real NVD records in
//! `tests/data/nvd` through the same identification and applicability code the
//! service runs.
//!
//! The table in `docs/VULNERABILITIES.md` is generated from these cases and their
//! results: this test fails when the document is out of date
//! (`PALISADE_UPDATE_DOCS=1 cargo test -p palisade-vuln --test correctness` rewrites it).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use palisade_core::vuln::{Confidence, Software, SoftwareSource};
use palisade_vuln::applicability::{CompiledCve, Inventory, findings};
use palisade_vuln::nvd::parse_page;

fn data(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path)
}

fn records() -> HashMap<String, CompiledCve> {
    let mut out = HashMap::new();
    for page in 0..3 {
        let body = std::fs::read(data(&format!("nvd/nvdcve-2.0-page-{page:03}.json"))).unwrap();
        for cve in parse_page(&body).unwrap().cves {
            out.insert(cve.id.clone(), CompiledCve::new(Arc::new(cve)));
        }
    }
    out
}

/// How a piece of software reached Palisade in a case.
#[derive(Clone, Copy)]
enum Given {
    /// A `Server` / `X-Powered-By` header value.
    Header(&'static str),
    /// An SSH banner.
    Banner(&'static str),
    /// A `dpkg -l` package: name, version.
    Dpkg(&'static str, &'static str),
    /// An `rpm -qa` line.
    Rpm(&'static str),
    /// An SBOM component with a purl.
    Purl(&'static str),
    /// An SBOM component with a name and version only.
    Component(&'static str, &'static str),
}

impl Given {
    fn software(self) -> Vec<Software> {
        let sw = |source, name: &str, version: &str, purl: Option<&str>| Software {
            source,
            name: name.into(),
            version: version.into(),
            purl: purl.map(str::to_owned),
            cpe: None,
            distro: None,
        };
        match self {
            Given::Header(v) => palisade_vuln::observe::banner::http_header(v),
            Given::Banner(v) => palisade_vuln::observe::banner::ssh_banner(v),
            Given::Dpkg(n, v) => vec![Software {
                distro: Some("debian".into()),
                ..sw(SoftwareSource::Dpkg, n, v, None)
            }],
            Given::Rpm(line) => {
                palisade_vuln::inventory::parse(line.as_bytes(), None, 10)
                    .unwrap()
                    .items
            }
            Given::Purl(p) => {
                let purl = palisade_vuln::purl::Purl::parse(p).unwrap();
                vec![sw(
                    SoftwareSource::Cyclonedx,
                    &purl.name,
                    purl.version.as_deref().unwrap_or_default(),
                    Some(p),
                )]
            }
            Given::Component(n, v) => vec![sw(SoftwareSource::Cyclonedx, n, v, None)],
        }
    }

    fn describe(self) -> String {
        match self {
            Given::Header(v) => format!("header `{v}`"),
            Given::Banner(v) => format!("banner `{v}`"),
            Given::Dpkg(n, v) => format!("dpkg `{n} {v}`"),
            Given::Rpm(l) => format!("rpm `{l}`"),
            Given::Purl(p) => format!("`{p}`"),
            Given::Component(n, v) => format!("SBOM `{n} {v}`"),
        }
    }
}

/// A platform the asset runs on, for AND configurations.
#[derive(Clone, Copy, PartialEq, Eq)]
enum On {
    Unknown,
    Windows,
    Linux,
    MacOs,
}

impl On {
    fn software(self) -> Option<Software> {
        let cpe = match self {
            On::Unknown => return None,
            On::Windows => "cpe:2.3:o:microsoft:windows:*:*:*:*:*:*:*:*",
            On::Linux => "cpe:2.3:o:linux:linux_kernel:*:*:*:*:*:*:*:*",
            On::MacOs => "cpe:2.3:o:apple:macos:*:*:*:*:*:*:*:*",
        };
        Some(Software {
            source: SoftwareSource::Cyclonedx,
            name: "os".into(),
            version: String::new(),
            purl: None,
            cpe: Some(cpe.into()),
            distro: None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            On::Unknown => "",
            On::Windows => " on Windows",
            On::Linux => " on Linux",
            On::MacOs => " on macOS",
        }
    }
}

struct Case {
    family: &'static str,
    given: Given,
    on: On,
    cve: &'static str,
    expect: Option<Confidence>,
    why: &'static str,
}

const HIGH: Option<Confidence> = Some(Confidence::High);
const MEDIUM: Option<Confidence> = Some(Confidence::Medium);
const DISTRO: Option<Confidence> = Some(Confidence::NeedsDistroAdvisory);
const NO: Option<Confidence> = None;

fn case(
    family: &'static str,
    given: Given,
    cve: &'static str,
    expect: Option<Confidence>,
    why: &'static str,
) -> Case {
    Case {
        family,
        given,
        on: On::Unknown,
        cve,
        expect,
        why,
    }
}

fn cases() -> Vec<Case> {
    use Given::*;
    let on = |mut c: Case, platform: On| {
        c.on = platform;
        c
    };
    vec![
        // Apache httpd: CVE-2021-41773 is 2.4.49 only; CVE-2021-42013 is 2.4.49 and 2.4.50.
        case(
            "Apache httpd",
            Header("Apache/2.4.49 (Unix)"),
            "CVE-2021-41773",
            HIGH,
            "exact version 2.4.49",
        ),
        case(
            "Apache httpd",
            Header("Apache/2.4.50 (Unix)"),
            "CVE-2021-41773",
            NO,
            "2.4.50 is not 2.4.49",
        ),
        case(
            "Apache httpd",
            Header("Apache/2.4.48"),
            "CVE-2021-41773",
            NO,
            "older than the one affected version",
        ),
        case(
            "Apache httpd",
            Header("Apache/2.4.50"),
            "CVE-2021-42013",
            HIGH,
            "exact version 2.4.50",
        ),
        case(
            "Apache httpd",
            Header("Apache/2.4.51"),
            "CVE-2021-42013",
            NO,
            "2.4.51 is fixed",
        ),
        case(
            "Apache httpd",
            Header("Apache/2.4.51"),
            "CVE-2021-41773",
            NO,
            "2.4.51 is fixed",
        ),
        case(
            "Apache httpd",
            Dpkg("apache2", "2.4.49-1"),
            "CVE-2021-41773",
            DISTRO,
            "Debian package: upstream 2.4.49, fix may be backported",
        ),
        // nginx: CVE-2021-23017 is f5:nginx [0.6.18, 1.20.1) and openresty < 1.19.3.2.
        case(
            "nginx",
            Header("nginx/1.20.0"),
            "CVE-2021-23017",
            HIGH,
            "inside [0.6.18, 1.20.1)",
        ),
        case(
            "nginx",
            Header("nginx/1.20.1"),
            "CVE-2021-23017",
            NO,
            "excluded end 1.20.1",
        ),
        case(
            "nginx",
            Header("nginx/0.6.18"),
            "CVE-2021-23017",
            HIGH,
            "included start 0.6.18",
        ),
        case(
            "nginx",
            Header("nginx/0.6.17"),
            "CVE-2021-23017",
            NO,
            "before the included start",
        ),
        case(
            "nginx",
            Header("openresty/1.19.3.1"),
            "CVE-2021-23017",
            HIGH,
            "OpenResty < 1.19.3.2 (four-part version)",
        ),
        case(
            "nginx",
            Header("openresty/1.19.3.2"),
            "CVE-2021-23017",
            NO,
            "excluded end 1.19.3.2",
        ),
        // OpenSSH: CVE-2024-6387 is < 4.4, 4.4:-, 8.5:p1, [8.6, 9.8), 9.8:-;
        // CVE-2023-38408 is < 9.3, 9.3:-, 9.3:p1.
        case(
            "OpenSSH",
            Banner("SSH-2.0-OpenSSH_8.5p1"),
            "CVE-2024-6387",
            HIGH,
            "CPE update field: 8.5:p1",
        ),
        case(
            "OpenSSH",
            Banner("SSH-2.0-OpenSSH_8.4p1"),
            "CVE-2024-6387",
            NO,
            "between the ranges (8.4p1 < 8.5p1)",
        ),
        case(
            "OpenSSH",
            Banner("SSH-2.0-OpenSSH_9.7p1"),
            "CVE-2024-6387",
            HIGH,
            "inside [8.6, 9.8)",
        ),
        case(
            "OpenSSH",
            Banner("SSH-2.0-OpenSSH_9.8p1"),
            "CVE-2024-6387",
            NO,
            "9.8p1 is after the excluded end 9.8 and is not 9.8:-",
        ),
        case(
            "OpenSSH",
            Banner("SSH-2.0-OpenSSH_4.3p2"),
            "CVE-2024-6387",
            HIGH,
            "before the excluded end 4.4",
        ),
        case(
            "OpenSSH",
            Banner("SSH-2.0-OpenSSH_4.4p1"),
            "CVE-2024-6387",
            NO,
            "4.4p1 is neither < 4.4 nor 4.4:-",
        ),
        case(
            "OpenSSH",
            Banner("SSH-2.0-OpenSSH_9.3p1"),
            "CVE-2023-38408",
            HIGH,
            "CPE update field: 9.3:p1",
        ),
        case(
            "OpenSSH",
            Banner("SSH-2.0-OpenSSH_9.3p2"),
            "CVE-2023-38408",
            NO,
            "9.3p2 is fixed",
        ),
        case(
            "OpenSSH",
            Banner("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u2"),
            "CVE-2024-6387",
            DISTRO,
            "Debian build: Debian backported the fix (DSA-5724-1)",
        ),
        case(
            "OpenSSH",
            Dpkg("openssh-server", "1:9.2p1-2+deb12u3"),
            "CVE-2024-6387",
            DISTRO,
            "epoch and revision removed; distro advisory decides",
        ),
        // OpenSSL: CVE-2014-0160 (Heartbleed) is [1.0.1, 1.0.1g).
        case(
            "OpenSSL",
            Header("OpenSSL/1.0.1f"),
            "CVE-2014-0160",
            HIGH,
            "letter release before the excluded end 1.0.1g",
        ),
        case(
            "OpenSSL",
            Header("OpenSSL/1.0.1g"),
            "CVE-2014-0160",
            NO,
            "excluded end 1.0.1g",
        ),
        case(
            "OpenSSL",
            Header("OpenSSL/1.0.1"),
            "CVE-2014-0160",
            HIGH,
            "included start 1.0.1",
        ),
        case(
            "OpenSSL",
            Header("OpenSSL/1.0.0t"),
            "CVE-2014-0160",
            NO,
            "older branch",
        ),
        case(
            "OpenSSL",
            Header("OpenSSL/1.0.2"),
            "CVE-2014-0160",
            NO,
            "newer branch",
        ),
        case(
            "OpenSSL",
            Rpm("openssl-1.0.1e-30.el6_6.5.x86_64"),
            "CVE-2014-0160",
            DISTRO,
            "RHEL 6 package 1.0.1e carries the backported fix",
        ),
        // log4j: CVE-2021-44228 is [2.0.1, 2.3.1), [2.4.0, 2.12.2), [2.13.0, 2.15.0) and
        // 2.0 with -, beta9, rc1, rc2; CVE-2021-45046 ends at 2.12.2 and 2.16.0.
        case(
            "log4j",
            Purl("pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"),
            "CVE-2021-44228",
            HIGH,
            "inside [2.13.0, 2.15.0)",
        ),
        case(
            "log4j",
            Purl("pkg:maven/org.apache.logging.log4j/log4j-core@2.17.1"),
            "CVE-2021-44228",
            NO,
            "2.17.1 is fixed",
        ),
        case(
            "log4j",
            Purl("pkg:maven/org.apache.logging.log4j/log4j-core@2.15.0"),
            "CVE-2021-44228",
            NO,
            "excluded end 2.15.0",
        ),
        case(
            "log4j",
            Purl("pkg:maven/org.apache.logging.log4j/log4j-core@2.15.0"),
            "CVE-2021-45046",
            HIGH,
            "inside [2.13.0, 2.16.0)",
        ),
        case(
            "log4j",
            Purl("pkg:maven/org.apache.logging.log4j/log4j-core@2.16.0"),
            "CVE-2021-45046",
            NO,
            "excluded end 2.16.0",
        ),
        case(
            "log4j",
            Purl("pkg:maven/org.apache.logging.log4j/log4j-core@2.0-beta9"),
            "CVE-2021-44228",
            HIGH,
            "CPE update field: 2.0:beta9",
        ),
        case(
            "log4j",
            Purl("pkg:maven/org.apache.logging.log4j/log4j-core@2.0-beta8"),
            "CVE-2021-44228",
            NO,
            "no criterion for beta8",
        ),
        case(
            "log4j",
            Purl("pkg:maven/org.apache.logging.log4j/log4j-core@2.3.1"),
            "CVE-2021-44228",
            NO,
            "excluded end 2.3.1 (the Java 6 fix)",
        ),
        case(
            "log4j",
            Purl("pkg:maven/org.apache.logging.log4j/log4j-core@2.12.1"),
            "CVE-2021-44228",
            HIGH,
            "inside [2.4.0, 2.12.2)",
        ),
        case(
            "log4j",
            Purl("pkg:maven/org.apache.logging.log4j/log4j-core@2.12.2"),
            "CVE-2021-44228",
            NO,
            "excluded end 2.12.2",
        ),
        // Tomcat: CVE-2025-24813 is [9.0.1, 9.0.99), [10.1.1, 10.1.35), [11.0.1, 11.0.3)
        // and the 9.0.0, 10.1.0 and 11.0.0 milestones.
        case(
            "Tomcat",
            Purl("pkg:maven/org.apache.tomcat.embed/tomcat-embed-core@9.0.98"),
            "CVE-2025-24813",
            HIGH,
            "inside [9.0.1, 9.0.99)",
        ),
        case(
            "Tomcat",
            Purl("pkg:maven/org.apache.tomcat.embed/tomcat-embed-core@9.0.99"),
            "CVE-2025-24813",
            NO,
            "excluded end 9.0.99",
        ),
        case(
            "Tomcat",
            Component("tomcat", "10.1.34"),
            "CVE-2025-24813",
            HIGH,
            "inside [10.1.1, 10.1.35)",
        ),
        case(
            "Tomcat",
            Component("tomcat", "10.1.35"),
            "CVE-2025-24813",
            NO,
            "excluded end 10.1.35",
        ),
        case(
            "Tomcat",
            Component("tomcat", "9.0.0.M1"),
            "CVE-2025-24813",
            HIGH,
            "milestone: 9.0.0:milestone1",
        ),
        case(
            "Tomcat",
            Component("tomcat", "10.1.0"),
            "CVE-2025-24813",
            NO,
            "10.1.0 GA: ranges start at 10.1.1, only its milestones are listed",
        ),
        // PHP: CVE-2024-4577 is [8.1.0, 8.1.29), [8.2.0, 8.2.20), [8.3.0, 8.3.8).
        case(
            "PHP",
            Header("PHP/8.1.28"),
            "CVE-2024-4577",
            HIGH,
            "inside [8.1.0, 8.1.29)",
        ),
        case(
            "PHP",
            Header("PHP/8.1.29"),
            "CVE-2024-4577",
            NO,
            "excluded end 8.1.29",
        ),
        case(
            "PHP",
            Header("PHP/8.2.0"),
            "CVE-2024-4577",
            HIGH,
            "included start 8.2.0",
        ),
        case(
            "PHP",
            Header("PHP/8.3.8"),
            "CVE-2024-4577",
            NO,
            "excluded end 8.3.8",
        ),
        case(
            "PHP",
            Header("PHP/7.4.33"),
            "CVE-2024-4577",
            NO,
            "branch not affected",
        ),
        case(
            "PHP",
            Header("PHP/8.1.2-1ubuntu2.14"),
            "CVE-2024-4577",
            DISTRO,
            "Ubuntu build named in the version",
        ),
        // WordPress: CVE-2022-21661 is one range per branch, [3.7, 3.7.37) … [5.8, 5.8.3).
        case(
            "WordPress",
            Component("wordpress", "5.8.2"),
            "CVE-2022-21661",
            HIGH,
            "inside [5.8, 5.8.3)",
        ),
        case(
            "WordPress",
            Component("wordpress", "5.8.3"),
            "CVE-2022-21661",
            NO,
            "excluded end 5.8.3",
        ),
        case(
            "WordPress",
            Component("wordpress", "3.7.36"),
            "CVE-2022-21661",
            HIGH,
            "inside [3.7, 3.7.37)",
        ),
        case(
            "WordPress",
            Component("wordpress", "3.7.37"),
            "CVE-2022-21661",
            NO,
            "excluded end 3.7.37",
        ),
        case(
            "WordPress",
            Component("wordpress", "5.9"),
            "CVE-2022-21661",
            NO,
            "5.9 was released fixed",
        ),
        // AND configurations: GlobalProtect (application) running on an OS (platform).
        on(
            case(
                "GlobalProtect",
                Component("globalprotect", "5.2.4"),
                "CVE-2022-0017",
                HIGH,
                "AND: app range and Windows platform",
            ),
            On::Windows,
        ),
        on(
            case(
                "GlobalProtect",
                Component("globalprotect", "5.2.4"),
                "CVE-2022-0017",
                NO,
                "AND: the platform is known and not Windows",
            ),
            On::Linux,
        ),
        case(
            "GlobalProtect",
            Component("globalprotect", "5.2.4"),
            "CVE-2022-0017",
            MEDIUM,
            "AND: platform unknown, so the condition cannot be checked",
        ),
        on(
            case(
                "GlobalProtect",
                Component("globalprotect", "5.2.5"),
                "CVE-2022-0017",
                NO,
                "excluded end 5.2.5",
            ),
            On::Windows,
        ),
        on(
            case(
                "GlobalProtect",
                Component("globalprotect", "5.3.1"),
                "CVE-2022-0019",
                HIGH,
                "AND: range and Linux platform",
            ),
            On::Linux,
        ),
        on(
            case(
                "GlobalProtect",
                Component("globalprotect", "5.2.7"),
                "CVE-2022-0019",
                HIGH,
                "included end 5.2.7",
            ),
            On::Linux,
        ),
        on(
            case(
                "GlobalProtect",
                Component("globalprotect", "5.2.8"),
                "CVE-2022-0019",
                NO,
                "after the included end 5.2.7",
            ),
            On::Linux,
        ),
        on(
            case(
                "GlobalProtect",
                Component("globalprotect", "5.2.8"),
                "CVE-2022-0018",
                HIGH,
                "AND with an OR of two platforms (Windows or macOS)",
            ),
            On::MacOs,
        ),
    ]
}

fn found(records: &HashMap<String, CompiledCve>, c: &Case) -> Option<Confidence> {
    let cve = records
        .get(c.cve)
        .unwrap_or_else(|| panic!("{} is not in the test data", c.cve));
    let mut software = c.given.software();
    assert!(
        !software.is_empty(),
        "{} names no software",
        c.given.describe()
    );
    software.extend(c.on.software());
    let inv = Inventory::new(software);
    let f = findings(cve, &inv);
    assert!(f.len() <= 1, "one product per case: {f:?}");
    f.first().map(|m| m.confidence)
}

fn label(c: Option<Confidence>) -> &'static str {
    match c {
        None => "no match",
        Some(Confidence::High) => "match",
        Some(Confidence::Medium) => "match (medium: platform unknown)",
        Some(Confidence::NeedsDistroAdvisory) => "match (needs distro advisory)",
    }
}

const START: &str =
    "<!-- correctness-table:start (generated by crates/vuln/tests/correctness.rs) -->";
const END: &str = "<!-- correctness-table:end -->";

#[test]
fn expected_matches_are_found_and_the_documented_table_is_current() {
    let records = records();
    let cases = cases();
    assert!(cases.len() >= 30);
    let mut table = String::from(
        "| # | Product | Software as given | CVE | Rule exercised | Expected | Found |\n\
         | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    let mut wrong = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let got = found(&records, c);
        if got != c.expect {
            wrong.push(format!(
                "{} {}{} {}: expected {}, found {}",
                c.family,
                c.given.describe(),
                c.on.name(),
                c.cve,
                label(c.expect),
                label(got)
            ));
        }
        table.push_str(&format!(
            "| {} | {} | {}{} | {} | {} | {} | {} |\n",
            i + 1,
            c.family,
            c.given.describe(),
            c.on.name(),
            c.cve,
            c.why,
            label(c.expect),
            label(got)
        ));
    }
    assert!(wrong.is_empty(), "wrong results:\n{}", wrong.join("\n"));
    let families: std::collections::HashSet<&str> = cases.iter().map(|c| c.family).collect();
    for f in [
        "Apache httpd",
        "nginx",
        "OpenSSH",
        "OpenSSL",
        "log4j",
        "Tomcat",
        "PHP",
        "WordPress",
    ] {
        assert!(families.contains(f), "{f} has no case");
    }

    let doc_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/VULNERABILITIES.md");
    let doc = std::fs::read_to_string(&doc_path).unwrap_or_default();
    let block = format!("{START}\n{table}{END}");
    let current = match (doc.find(START), doc.find(END)) {
        (Some(s), Some(e)) if e > s => &doc[s..e + END.len()],
        _ => "",
    };
    if current != block {
        if std::env::var("PALISADE_UPDATE_DOCS").is_ok_and(|v| v == "1") {
            let updated = match (doc.find(START), doc.find(END)) {
                (Some(s), Some(e)) if e > s => {
                    format!("{}{}{}", &doc[..s], block, &doc[e + END.len()..])
                }
                _ => format!("{doc}\n{block}\n"),
            };
            std::fs::write(&doc_path, updated).unwrap();
        } else {
            panic!(
                "docs/VULNERABILITIES.md does not hold the current table; run \
                 PALISADE_UPDATE_DOCS=1 cargo test -p palisade-vuln --test correctness"
            );
        }
    }
}

#[test]
fn the_recorded_pages_parse_completely() {
    let records = records();
    assert_eq!(records.len(), 145);
    let c = &records["CVE-2021-44228"].cve;
    assert_eq!(c.severity(), palisade_core::vuln::CvssSeverity::Critical);
    assert!(c.kev.is_some());
    assert_eq!(
        records
            .values()
            .filter(|c| c.cve.configurations.is_empty())
            .count(),
        17
    );
    let kev = records.values().filter(|c| c.cve.kev.is_some()).count();
    assert_eq!(kev, 15);
}
