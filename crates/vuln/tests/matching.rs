//! Matching through the store, on SQLite and PostgreSQL: uploads, sightings, runs over
//! every asset, threats for new critical matches, and reports in three formats.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use palisade_core::Timestamp;
use palisade_core::threat::Threat;
use palisade_core::vuln::{Confidence, CvssSeverity, MatchStatus, VulnMatch};
use palisade_store::{MatchQuery, SharedStore, Store};
use palisade_vuln::observe::{Observation, record};
use palisade_vuln::report::{self, Format, ReportKind, ReportRequest};
use palisade_vuln::{TaskContext, ThreatSink};

fn data(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path)
}

async fn sqlite() -> (SharedStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = palisade_store::sqlite::SqliteStore::open(&dir.path().join("p.db")).unwrap();
    store.migrate().await.unwrap();
    (Arc::new(store), dir)
}

/// A fresh PostgreSQL schema (dropped when the guard goes).
struct PgSchema {
    base: String,
    schema: String,
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let (base, schema) = (self.base.clone(), self.schema.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok((c, conn)) = tokio_postgres::connect(&base, tokio_postgres::NoTls).await {
                    tokio::spawn(conn);
                    let _ = c
                        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
                        .await;
                }
            });
        })
        .join();
    }
}

async fn postgres() -> (SharedStore, PgSchema) {
    let base = std::env::var("PALISADE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let (c, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL must be reachable for these tests");
    tokio::spawn(conn);
    let schema = format!(
        "vuln_{}_{}",
        std::process::id(),
        Timestamp::now().as_micros()
    );
    c.batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    let url = format!("{base}?options=-c%20search_path%3D{schema}");
    let store = palisade_store::postgres::PgStore::connect_lazy(&url).unwrap();
    store.migrate().await.unwrap();
    (Arc::new(store), PgSchema { base, schema })
}

async fn with_cves(store: &SharedStore) {
    let files: Vec<PathBuf> = (0..3)
        .map(|i| data(&format!("nvd/nvdcve-2.0-page-{i:03}.json")))
        .collect();
    palisade_vuln::import_files(store, &files, &TaskContext::silent())
        .await
        .unwrap();
}

fn sink() -> (ThreatSink, Arc<Mutex<Vec<Threat>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    (Arc::new(move |t: Threat| g.lock().unwrap().push(t)), got)
}

async fn matches(store: &SharedStore, asset: &str) -> Vec<VulnMatch> {
    store
        .query_matches(&MatchQuery {
            asset: Some(asset.into()),
            limit: 1000,
            ..MatchQuery::default()
        })
        .await
        .unwrap()
        .items
}

fn find<'a>(list: &'a [VulnMatch], cve: &str) -> Option<&'a VulnMatch> {
    list.iter().find(|m| m.cve_id == cve)
}

async fn uploads_are_matched_and_replaced(store: SharedStore) {
    with_cves(&store).await;
    let body = std::fs::read(data("sbom/dpkg-query.tsv")).unwrap();
    let (threats, raised) = sink();
    let up =
        palisade_vuln::upload_inventory(&store, "debian-12", &body, None, 100_000, Some(&threats))
            .await
            .unwrap();
    assert_eq!(up.format, "dpkg");
    assert_eq!(up.items, 743, "742 packages and the Debian 12 platform");
    assert!(up.changed);
    let list = matches(&store, "debian-12").await;
    let regresshion = find(&list, "CVE-2024-6387").expect("openssh 9.2p1 is in NVD's range");
    assert_eq!(regresshion.product, "openbsd:openssh");
    assert_eq!(regresshion.confidence, Confidence::NeedsDistroAdvisory);
    assert!(find(&list, "CVE-2023-4863").is_some(), "libwebp 1.2.4");
    assert!(
        list.iter()
            .all(|m| m.confidence == Confidence::NeedsDistroAdvisory)
    );
    assert!(list.iter().all(|m| m.status == MatchStatus::Open));
    // The critical one (CVE-2023-38408, openssh < 9.3) raised a threat.
    let raised_now = raised.lock().unwrap().clone();
    assert_eq!(
        raised_now.len(),
        list.iter()
            .filter(|m| m.severity == CvssSeverity::Critical)
            .count()
    );
    assert!(
        raised_now
            .iter()
            .any(|t| t.evidence[0].matched.starts_with("CVE-2023-38408"))
    );
    assert!(
        raised_now
            .iter()
            .all(|t| t.category == "vulnerability" && t.evidence[0].part == "debian-12")
    );

    // The same list again: nothing changes, nothing new is raised.
    let again =
        palisade_vuln::upload_inventory(&store, "debian-12", &body, None, 100_000, Some(&threats))
            .await
            .unwrap();
    assert!(!again.changed);
    assert_eq!((again.opened, again.resolved), (0, 0));
    assert_eq!(raised.lock().unwrap().len(), raised_now.len());

    // OpenSSH upgraded to 9.8p1: both OpenSSH matches close as fixed.
    let text = String::from_utf8(body).unwrap();
    let upgraded: String = text
        .lines()
        .map(|l| {
            if l.starts_with("openssh-") {
                let f: Vec<&str> = l.split('\t').collect();
                format!("{}\t1:9.8p1-1\t{}\t{}\n", f[0], f[2], f[3])
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let up = palisade_vuln::upload_inventory(
        &store,
        "debian-12",
        upgraded.as_bytes(),
        None,
        100_000,
        None,
    )
    .await
    .unwrap();
    assert!(up.changed);
    assert_eq!(up.resolved, 2);
    let list = matches(&store, "debian-12").await;
    let fixed = find(&list, "CVE-2024-6387").unwrap();
    assert_eq!(fixed.status, MatchStatus::Fixed);
    assert_eq!(fixed.status_by.as_deref(), Some("matcher"));
    assert_eq!(
        find(&list, "CVE-2023-4863").unwrap().status,
        MatchStatus::Open
    );

    // Too many items is refused before anything is stored.
    let err =
        palisade_vuln::upload_inventory(&store, "big", &upgraded.into_bytes(), None, 10, None)
            .await
            .unwrap_err();
    assert!(err.to_string().contains("more than 10"), "{err}");
    assert!(store.get_asset("big").await.unwrap().is_none());
}

async fn software_seen_in_traffic_is_matched_and_follows_upgrades(store: SharedStore) {
    with_cves(&store).await;
    let (threats, raised) = sink();
    let seen = |server: &str| Observation::Http {
        asset: "shop:8080".into(),
        server: Some(server.into()),
        powered_by: Some("PHP/8.1.28".into()),
    };
    assert!(
        record(&store, &seen("Apache/2.4.49 (Unix)"), Some(&threats))
            .await
            .unwrap()
    );
    let list = matches(&store, "shop:8080").await;
    let path_traversal = find(&list, "CVE-2021-41773").expect("the Server header's Apache");
    assert_eq!(path_traversal.software, "Apache");
    assert_eq!(path_traversal.version, "2.4.49");
    assert_eq!(path_traversal.confidence, Confidence::High);
    assert!(path_traversal.kev);
    assert!(find(&list, "CVE-2021-42013").is_some());
    assert!(find(&list, "CVE-2024-4577").is_some(), "X-Powered-By's PHP");
    let cves: Vec<String> = raised
        .lock()
        .unwrap()
        .iter()
        .map(|t| t.evidence[0].matched.clone())
        .collect();
    assert!(
        cves.iter().any(|c| c.starts_with("CVE-2021-42013")),
        "{cves:?}"
    );
    assert!(
        cves.iter().any(|c| c.starts_with("CVE-2024-4577")),
        "{cves:?}"
    );
    assert!(
        !cves.iter().any(|c| c.starts_with("CVE-2021-41773")),
        "7.5 is not critical"
    );
    // Seen again unchanged: no matching, nothing raised.
    let before = raised.lock().unwrap().len();
    assert!(
        !record(&store, &seen("Apache/2.4.49 (Unix)"), Some(&threats))
            .await
            .unwrap()
    );
    assert_eq!(raised.lock().unwrap().len(), before);
    // Upgraded: the Apache matches close.
    assert!(
        record(&store, &seen("Apache/2.4.51 (Unix)"), Some(&threats))
            .await
            .unwrap()
    );
    let list = matches(&store, "shop:8080").await;
    assert_eq!(
        find(&list, "CVE-2021-41773").unwrap().status,
        MatchStatus::Fixed
    );
    assert_eq!(
        find(&list, "CVE-2021-42013").unwrap().status,
        MatchStatus::Fixed
    );
    assert_eq!(
        find(&list, "CVE-2024-4577").unwrap().status,
        MatchStatus::Open
    );
    // A syslog line from another host.
    let items = palisade_vuln::observe::banner::syslog_line(
        Some("sshd"),
        "debug1: sshd version OpenSSH_9.3p1, OpenSSL 1.0.1f 6 Jan 2014",
    );
    assert!(
        record(
            &store,
            &Observation::Items {
                asset: "bastion".into(),
                items
            },
            None
        )
        .await
        .unwrap()
    );
    let list = matches(&store, "bastion").await;
    assert!(find(&list, "CVE-2023-38408").is_some());
    assert!(find(&list, "CVE-2014-0160").is_some());
}

async fn a_run_matches_assets_known_before_the_cves(store: SharedStore) {
    let cdx = br#"{"bomFormat": "CycloneDX", "specVersion": "1.4", "components": [
        {"type": "library", "name": "log4j-core", "version": "2.14.1",
         "purl": "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"},
        {"type": "library", "name": "log4j-api", "version": "2.14.1",
         "purl": "pkg:maven/org.apache.logging.log4j/log4j-api@2.14.1"}]}"#;
    let up = palisade_vuln::upload_inventory(&store, "billing", cdx, None, 1000, None)
        .await
        .unwrap();
    assert_eq!(
        (up.format.as_str(), up.items, up.opened),
        ("cyclonedx", 2, 0)
    );
    with_cves(&store).await;
    let (threats, raised) = sink();
    let progress = Mutex::new(Vec::new());
    let report = |p: u8, m: &str| progress.lock().unwrap().push((p, m.to_owned()));
    let never = || false;
    let s = palisade_vuln::run_matching(&store, Some(&threats), &TaskContext::new(&report, &never))
        .await
        .unwrap();
    assert_eq!(s.assets, 1);
    let list = matches(&store, "billing").await;
    let ids: Vec<&str> = list.iter().map(|m| m.cve_id.as_str()).collect();
    assert!(
        ids.contains(&"CVE-2021-44228") && ids.contains(&"CVE-2021-45046"),
        "{ids:?}"
    );
    let log4shell = find(&list, "CVE-2021-44228").unwrap();
    assert_eq!(
        log4shell.software, "log4j-core",
        "log4j-api is not the vulnerable jar"
    );
    assert_eq!(s.threats, 2);
    assert_eq!(raised.lock().unwrap().len(), 2);
    assert_eq!(progress.lock().unwrap().last().map(|p| p.0), Some(100));
    // A second run opens nothing new.
    let again = palisade_vuln::run_matching(&store, Some(&threats), &TaskContext::silent())
        .await
        .unwrap();
    assert_eq!((again.opened, again.kept), (0, list.len() as u64));
    // Reports: vulnerabilities per asset and severity, in three formats.
    let now = Timestamp::now();
    let meta = palisade_vuln::generate_report(
        &store,
        &ReportRequest {
            kind: ReportKind::Vulnerabilities,
            from: now.add_micros(-3_600_000_000),
            to: now.add_micros(60_000_000),
            created_by: "alice".into(),
        },
        &TaskContext::silent(),
    )
    .await
    .unwrap();
    let stored = store.get_report(meta.id).await.unwrap().unwrap();
    let doc: report::ReportDoc = serde_json::from_str(&stored.doc).unwrap();
    let v = doc.vulnerabilities.unwrap();
    assert_eq!(v.total, list.len() as u64);
    assert_eq!(v.assets.len(), 1);
    assert_eq!(
        v.assets[0].matches[0].severity,
        CvssSeverity::Critical,
        "most severe first"
    );
    let csv = report::render(meta.id, &stored.doc, Format::Csv).unwrap();
    assert_eq!(csv.lines().count(), 1 + list.len());
    assert!(csv.starts_with("asset,cve,severity,"));
    assert!(csv.contains(
        "billing,CVE-2021-44228,critical,10.0,open,high,yes,apache:log4j,log4j-core,2.14.1,"
    ));
    let html = report::render(meta.id, &stored.doc, Format::Html).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("CVE-2021-44228") && html.contains("billing"));
    for external in ["<script", "<link", "src=", "@import", "url("] {
        assert!(
            !html.contains(external),
            "the page loads nothing: {external}"
        );
    }
    // The security summary.
    store
        .insert_threats(&[palisade_vuln::matching::threat_of(log4shell)])
        .await
        .unwrap();
    let meta = palisade_vuln::generate_report(
        &store,
        &ReportRequest {
            kind: ReportKind::Security,
            from: now.add_micros(-3_600_000_000),
            to: now.add_micros(3_600_000_000),
            created_by: "alice".into(),
        },
        &TaskContext::silent(),
    )
    .await
    .unwrap();
    let stored = store.get_report(meta.id).await.unwrap().unwrap();
    let doc: report::ReportDoc = serde_json::from_str(&stored.doc).unwrap();
    let s = doc.security.unwrap();
    assert_eq!(s.threats, 1);
    assert_eq!(s.by_category[0].key, "vulnerability");
    assert!(s.alerts.is_none());
    let csv = report::render(meta.id, &stored.doc, Format::Csv).unwrap();
    assert!(csv.contains("threats,total,1\r\n"));
    assert!(csv.contains("category,vulnerability,1\r\n"));
}

macro_rules! both {
    ($($name:ident),*) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let (store, _dir) = super::sqlite().await;
                    super::$name(store).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let (store, _guard) = super::postgres().await;
                    super::$name(store).await;
                }
            }
        )*
    };
}

both!(
    uploads_are_matched_and_replaced,
    software_seen_in_traffic_is_matched_and_follows_upgrades,
    a_run_matches_assets_known_before_the_cves
);
