//! The vulnerability contract: CVE records and their product index, assets and their
//! software, matches and their triage, feed sync positions.

use palisade_core::Timestamp;
use palisade_core::vuln::{
    Confidence, Configuration, CpeMatch, Cve, CveOrigin, CvssMetric, CvssSeverity, CvssVersion,
    Description, FoundMatch, Kev, MatchStatus, Node, Operator, Reference, Software, SoftwareSource,
    VersionBound,
};
use palisade_store::{AssetQuery, IndexedCve, MATCHER, MatchQuery, SharedStore};

use crate::harness::{Db, T0, contract};

contract!(
    cves_round_trip_every_field,
    cve_upserts_keep_the_newest_and_prefer_nvd,
    the_product_index_follows_the_record,
    uploads_replace_and_sightings_update_software,
    asset_listing_counts_and_prefix,
    matches_open_resolve_and_reopen,
    a_persons_status_stands_until_the_version_changes,
    matches_are_filtered_and_paginated,
    sync_state_round_trips,
);

const SEC: i64 = 1_000_000;

fn at(secs: i64) -> Timestamp {
    Timestamp(T0 + secs * SEC)
}

fn cve(id: &str, modified: i64, origin: CveOrigin, score: f64, product: &str) -> IndexedCve {
    IndexedCve {
        cve: Cve {
            id: id.into(),
            source_identifier: Some("security@apache.org".into()),
            published: at(0),
            modified: at(modified),
            status: Some("Analyzed".into()),
            descriptions: vec![
                Description {
                    lang: "en".into(),
                    value: "A flaw\0 in path normalisation.".into(),
                },
                Description {
                    lang: "es".into(),
                    value: "Un fallo.".into(),
                },
            ],
            metrics: vec![CvssMetric {
                version: CvssVersion::V31,
                source: "nvd@nist.gov".into(),
                primary: true,
                vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H".into(),
                base_score: score,
                severity: CvssSeverity::from_score(score),
            }],
            cwes: vec!["CWE-22".into()],
            references: vec![Reference {
                url: "https://httpd.apache.org/security/vulnerabilities_24.html".into(),
                source: Some("security@apache.org".into()),
                tags: vec!["Vendor Advisory".into()],
            }],
            kev: Some(Kev {
                added: "2021-11-03".into(),
                due: Some("2021-11-17".into()),
                required_action: Some("Apply updates per vendor instructions.".into()),
                name: Some("Apache HTTP Server Path Traversal Vulnerability".into()),
            }),
            configurations: vec![Configuration {
                operator: Operator::And,
                negate: false,
                nodes: vec![Node {
                    operator: Operator::Or,
                    negate: false,
                    matches: vec![CpeMatch {
                        vulnerable: true,
                        criteria: format!("cpe:2.3:a:vendor:{product}:*:*:*:*:*:*:*:*"),
                        start: Some(VersionBound {
                            version: "2.4.49".into(),
                            inclusive: true,
                        }),
                        end: Some(VersionBound {
                            version: "2.4.51".into(),
                            inclusive: false,
                        }),
                        match_id: Some("B201CFB2".into()),
                    }],
                }],
            }],
            origin,
        },
        products: vec![("vendor".into(), product.into())],
    }
}

fn sw(source: SoftwareSource, name: &str, version: &str) -> Software {
    Software {
        source,
        name: name.into(),
        version: version.into(),
        purl: None,
        cpe: None,
        distro: None,
    }
}

fn found(cve_id: &str, product: &str, version: &str, severity: CvssSeverity) -> FoundMatch {
    FoundMatch {
        cve_id: cve_id.into(),
        product: product.into(),
        software: "Apache".into(),
        version: version.into(),
        severity,
        score: Some(9.8),
        confidence: Confidence::High,
        kev: true,
    }
}

async fn cves_round_trip_every_field(db: Db) {
    let s = &db.store;
    let c = cve("CVE-2021-41773", 10, CveOrigin::Nvd, 9.8, "http_server");
    let out = s.upsert_cves(std::slice::from_ref(&c)).await.unwrap();
    assert_eq!((out.inserted, out.updated, out.unchanged), (1, 0, 0));
    let back = s.get_cve("CVE-2021-41773").await.unwrap().unwrap();
    // The record is kept as JSON, where a NUL is an escape: it comes back as it went in.
    assert_eq!(back, c.cve);
    assert!(s.get_cve("CVE-0000-0000").await.unwrap().is_none());
    let stats = s.cve_stats().await.unwrap();
    assert_eq!(stats.count, 1);
    assert_eq!(stats.latest_modified, Some(at(10)));
}

async fn cve_upserts_keep_the_newest_and_prefer_nvd(db: Db) {
    let s = &db.store;
    s.upsert_cves(&[cve("CVE-1", 10, CveOrigin::Nvd, 5.0, "p")])
        .await
        .unwrap();
    // Older: kept out. Same age: replaces (a re-import is idempotent). Newer: replaces.
    let out = s
        .upsert_cves(&[
            cve("CVE-1", 5, CveOrigin::Nvd, 1.0, "p"),
            cve("CVE-1", 10, CveOrigin::Nvd, 6.0, "p"),
        ])
        .await
        .unwrap();
    assert_eq!((out.inserted, out.updated, out.unchanged), (0, 1, 1));
    let score = |c: Option<Cve>| c.unwrap().score();
    assert_eq!(score(s.get_cve("CVE-1").await.unwrap()), Some(6.0));
    // A CIRCL record never replaces an NVD one, even a newer one.
    let out = s
        .upsert_cves(&[cve("CVE-1", 99, CveOrigin::Circl, 2.0, "p")])
        .await
        .unwrap();
    assert_eq!(out.unchanged, 1);
    assert_eq!(score(s.get_cve("CVE-1").await.unwrap()), Some(6.0));
    // An NVD record replaces a CIRCL one, even an older one.
    s.upsert_cves(&[cve("CVE-2", 50, CveOrigin::Circl, 2.0, "p")])
        .await
        .unwrap();
    let out = s
        .upsert_cves(&[cve("CVE-2", 1, CveOrigin::Nvd, 7.0, "p")])
        .await
        .unwrap();
    assert_eq!(out.updated, 1);
    let c2 = s.get_cve("CVE-2").await.unwrap().unwrap();
    assert_eq!((c2.origin, c2.score()), (CveOrigin::Nvd, Some(7.0)));
    assert_eq!(s.cve_stats().await.unwrap().count, 2);
}

async fn the_product_index_follows_the_record(db: Db) {
    let s = &db.store;
    s.upsert_cves(&[
        cve("CVE-B", 1, CveOrigin::Nvd, 5.0, "http_server"),
        cve("CVE-A", 1, CveOrigin::Nvd, 5.0, "http_server"),
        cve("CVE-C", 1, CveOrigin::Nvd, 5.0, "tomcat"),
    ])
    .await
    .unwrap();
    let ids = |v: Vec<Cve>| v.into_iter().map(|c| c.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.cves_for_product("http_server").await.unwrap()),
        ["CVE-A", "CVE-B"]
    );
    assert_eq!(ids(s.cves_for_product("tomcat").await.unwrap()), ["CVE-C"]);
    assert!(s.cves_for_product("nginx").await.unwrap().is_empty());
    // A newer version of CVE-B names another product: the index moves with it.
    s.upsert_cves(&[cve("CVE-B", 2, CveOrigin::Nvd, 5.0, "nginx")])
        .await
        .unwrap();
    assert_eq!(
        ids(s.cves_for_product("http_server").await.unwrap()),
        ["CVE-A"]
    );
    assert_eq!(ids(s.cves_for_product("nginx").await.unwrap()), ["CVE-B"]);
}

async fn uploads_replace_and_sightings_update_software(db: Db) {
    let s = &db.store;
    let up = SoftwareSource::Dpkg;
    let w = s
        .put_software(
            "web-1",
            up,
            &[sw(up, "openssl", "3.0.11-1"), sw(up, "nginx", "1.22.1-9")],
            true,
            at(1),
        )
        .await
        .unwrap();
    assert!(w.changed);
    // The same upload again changes nothing and keeps first_seen.
    let w2 = s
        .put_software(
            "web-1",
            up,
            &[sw(up, "nginx", "1.22.1-9"), sw(up, "openssl", "3.0.11-1")],
            true,
            at(2),
        )
        .await
        .unwrap();
    assert_eq!(w2.asset_id, w.asset_id);
    assert!(!w2.changed);
    let list = s.asset_software(w.asset_id).await.unwrap();
    assert_eq!(list.len(), 2);
    assert!(
        list.iter()
            .all(|i| i.first_seen == at(1) && i.last_seen == at(2))
    );
    // A smaller upload removes what it no longer lists; other sources are untouched.
    let http = SoftwareSource::Http;
    s.put_software("web-1", http, &[sw(http, "Apache", "2.4.49")], false, at(3))
        .await
        .unwrap();
    let w3 = s
        .put_software("web-1", up, &[sw(up, "openssl", "3.0.11-1")], true, at(4))
        .await
        .unwrap();
    assert!(w3.changed);
    let names: Vec<String> = s
        .asset_software(w.asset_id)
        .await
        .unwrap()
        .into_iter()
        .map(|i| format!("{}:{}", i.software.source.as_str(), i.software.name))
        .collect();
    assert_eq!(names, ["dpkg:openssl", "http:Apache"]);
    // Sightings: the same version again is no change; a new version replaces it.
    let again = s
        .put_software("web-1", http, &[sw(http, "Apache", "2.4.49")], false, at(5))
        .await
        .unwrap();
    assert!(!again.changed);
    let newer = s
        .put_software("web-1", http, &[sw(http, "Apache", "2.4.51")], false, at(6))
        .await
        .unwrap();
    assert!(newer.changed);
    let apache = s
        .asset_software(w.asset_id)
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.software.source == http)
        .unwrap();
    assert_eq!(apache.software.version, "2.4.51");
    assert_eq!(apache.first_seen, at(6));
    // One package in two versions (an SBOM of node_modules) is two entries.
    let cdx = SoftwareSource::Cyclonedx;
    s.put_software(
        "app",
        cdx,
        &[sw(cdx, "lodash", "2.4.2"), sw(cdx, "lodash", "4.17.21")],
        true,
        at(7),
    )
    .await
    .unwrap();
    let app = s.get_asset("app").await.unwrap().unwrap();
    assert_eq!(app.software, 2);
    let asset = s.get_asset("web-1").await.unwrap().unwrap();
    assert_eq!((asset.first_seen, asset.last_seen), (at(1), at(6)));
}

async fn asset_listing_counts_and_prefix(db: Db) {
    let s = &db.store;
    let http = SoftwareSource::Http;
    let mut ids = Vec::new();
    for (i, name) in ["web-1", "web-2", "db-1"].iter().enumerate() {
        let w = s
            .put_software(
                name,
                http,
                &[sw(http, "nginx", "1.20.0")],
                false,
                at(i as i64),
            )
            .await
            .unwrap();
        ids.push(w.asset_id);
    }
    s.sync_matches(
        ids[0],
        &[
            found("CVE-1", "f5:nginx", "1.20.0", CvssSeverity::High),
            found("CVE-2", "f5:nginx", "1.20.0", CvssSeverity::High),
            found("CVE-3", "f5:nginx", "1.20.0", CvssSeverity::Critical),
        ],
        at(10),
    )
    .await
    .unwrap();
    let web1 = s.get_asset("web-1").await.unwrap().unwrap();
    assert_eq!(web1.software, 1);
    let open: Vec<(CvssSeverity, u64)> = web1.open.iter().map(|c| (c.severity, c.count)).collect();
    assert_eq!(open, [(CvssSeverity::Critical, 1), (CvssSeverity::High, 2)]);
    let page = s
        .query_assets(&AssetQuery {
            limit: 2,
            ..AssetQuery::default()
        })
        .await
        .unwrap();
    let names: Vec<&str> = page.items.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["db-1", "web-2"]);
    let next = palisade_store::Cursor::decode(page.next_cursor.as_deref().unwrap());
    let rest = s
        .query_assets(&AssetQuery {
            cursor: next,
            limit: 2,
            ..AssetQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert_eq!(rest.items[0].name, "web-1");
    assert_eq!(rest.items[0].open.len(), 2);
    assert!(rest.next_cursor.is_none());
    let web = s
        .query_assets(&AssetQuery {
            name_prefix: Some("web".into()),
            limit: 10,
            ..AssetQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(web.items.len(), 2);
    assert!(s.get_asset("nope").await.unwrap().is_none());
}

async fn asset_id(s: &SharedStore, name: &str) -> i64 {
    let http = SoftwareSource::Http;
    s.put_software(name, http, &[sw(http, "Apache", "2.4.49")], false, at(0))
        .await
        .unwrap()
        .asset_id
}

async fn matches_open_resolve_and_reopen(db: Db) {
    let s = &db.store;
    let a = asset_id(s, "web").await;
    let m1 = found(
        "CVE-2021-41773",
        "apache:http_server",
        "2.4.49",
        CvssSeverity::High,
    );
    let m2 = found(
        "CVE-2021-42013",
        "apache:http_server",
        "2.4.49",
        CvssSeverity::Critical,
    );
    let first = s
        .sync_matches(a, &[m1.clone(), m2.clone(), m1.clone()], at(1))
        .await
        .unwrap();
    assert_eq!(first.opened.len(), 2, "duplicates count once");
    assert_eq!((first.kept, first.resolved), (0, 0));
    let opened = first
        .opened
        .iter()
        .find(|m| m.cve_id == "CVE-2021-42013")
        .unwrap();
    assert_eq!(opened.asset, "web");
    assert_eq!(opened.status, MatchStatus::Open);
    assert_eq!(opened.severity, CvssSeverity::Critical);
    assert_eq!(opened.confidence, Confidence::High);
    assert!(opened.kev);
    assert_eq!((opened.first_seen, opened.last_seen), (at(1), at(1)));
    // Found again: kept, last_seen moves, nothing opens.
    let again = s
        .sync_matches(a, &[m1.clone(), m2.clone()], at(2))
        .await
        .unwrap();
    assert!(again.opened.is_empty());
    assert_eq!((again.kept, again.resolved), (2, 0));
    // m2 gone: the matcher marks it fixed.
    let gone = s
        .sync_matches(a, std::slice::from_ref(&m1), at(3))
        .await
        .unwrap();
    assert_eq!((gone.kept, gone.resolved), (1, 1));
    let fixed = s.get_match(opened.id).await.unwrap().unwrap();
    assert_eq!(fixed.status, MatchStatus::Fixed);
    assert_eq!(fixed.status_by.as_deref(), Some(MATCHER));
    assert_eq!(fixed.status_at, Some(at(3)));
    assert_eq!(fixed.last_seen, at(2));
    // Back again (a downgrade): reopened, and reported as opened.
    let back = s.sync_matches(a, &[m1, m2], at(4)).await.unwrap();
    assert_eq!(back.opened.len(), 1);
    assert_eq!(back.opened[0].id, opened.id);
    assert_eq!(back.opened[0].status, MatchStatus::Open);
    assert_eq!(back.opened[0].first_seen, at(1));
    // Nothing found at all: every open match is fixed.
    let none = s.sync_matches(a, &[], at(5)).await.unwrap();
    assert_eq!(none.resolved, 2);
}

async fn a_persons_status_stands_until_the_version_changes(db: Db) {
    let s = &db.store;
    let a = asset_id(s, "web").await;
    let m = found(
        "CVE-2024-6387",
        "openbsd:openssh",
        "9.2p1",
        CvssSeverity::High,
    );
    let id = s
        .sync_matches(a, std::slice::from_ref(&m), at(1))
        .await
        .unwrap()
        .opened[0]
        .id;
    let set = s
        .set_match_status(
            id,
            MatchStatus::Fixed,
            Some("DSA-5724-1 backport\0"),
            "alice",
            at(2),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(set.status, MatchStatus::Fixed);
    assert_eq!(
        set.status_comment.as_deref(),
        Some("DSA-5724-1 backport\u{fffd}")
    );
    assert_eq!(set.status_by.as_deref(), Some("alice"));
    // Same version found again: alice's word stands.
    let same = s
        .sync_matches(a, std::slice::from_ref(&m), at(3))
        .await
        .unwrap();
    assert!(same.opened.is_empty());
    assert_eq!(
        s.get_match(id).await.unwrap().unwrap().status,
        MatchStatus::Fixed
    );
    // Another version that is still affected: open again.
    let mut newer = m.clone();
    newer.version = "9.3p1".into();
    let reopened = s.sync_matches(a, &[newer], at(4)).await.unwrap();
    assert_eq!(reopened.opened.len(), 1);
    assert_eq!(reopened.opened[0].version, "9.3p1");
    // Accepted stays accepted, and is not resolved by the matcher when gone.
    s.set_match_status(id, MatchStatus::Accepted, None, "bob", at(5))
        .await
        .unwrap();
    let gone = s.sync_matches(a, &[], at(6)).await.unwrap();
    assert_eq!(gone.resolved, 0);
    assert_eq!(
        s.get_match(id).await.unwrap().unwrap().status,
        MatchStatus::Accepted
    );
    assert!(
        s.set_match_status(999_999, MatchStatus::Open, None, "x", at(7))
            .await
            .unwrap()
            .is_none()
    );
}

async fn matches_are_filtered_and_paginated(db: Db) {
    let s = &db.store;
    let web = asset_id(s, "web").await;
    let db1 = asset_id(s, "db").await;
    let sev = [
        CvssSeverity::Critical,
        CvssSeverity::High,
        CvssSeverity::Medium,
    ];
    for i in 0..9 {
        let m = found(
            &format!("CVE-{i}"),
            "apache:http_server",
            "2.4.49",
            sev[i % 3],
        );
        let asset = if i < 6 { web } else { db1 };
        // Each in its own run (so that first_seen differs), keeping the earlier ones.
        let mut all: Vec<FoundMatch> = (0..=i)
            .filter(|j| (*j < 6) == (i < 6))
            .map(|j| {
                found(
                    &format!("CVE-{j}"),
                    "apache:http_server",
                    "2.4.49",
                    sev[j % 3],
                )
            })
            .collect();
        all.push(m);
        s.sync_matches(asset, &all, at(i as i64)).await.unwrap();
    }
    let list = |q: MatchQuery| async move {
        let page = s
            .query_matches(&MatchQuery { limit: 1000, ..q })
            .await
            .unwrap();
        page.items.into_iter().map(|m| m.cve_id).collect::<Vec<_>>()
    };
    assert_eq!(list(MatchQuery::default()).await.len(), 9);
    assert_eq!(
        list(MatchQuery {
            asset: Some("db".into()),
            ..MatchQuery::default()
        })
        .await,
        ["CVE-8", "CVE-7", "CVE-6"]
    );
    assert_eq!(
        list(MatchQuery {
            severity: Some(CvssSeverity::Critical),
            ..MatchQuery::default()
        })
        .await,
        ["CVE-6", "CVE-3", "CVE-0"]
    );
    assert_eq!(
        list(MatchQuery {
            cve: Some("CVE-4".into()),
            ..MatchQuery::default()
        })
        .await,
        ["CVE-4"]
    );
    let first_id = s
        .query_matches(&MatchQuery {
            cve: Some("CVE-1".into()),
            limit: 1,
            ..MatchQuery::default()
        })
        .await
        .unwrap()
        .items[0]
        .id;
    s.set_match_status(
        first_id,
        MatchStatus::Accepted,
        Some("internal only"),
        "alice",
        at(20),
    )
    .await
    .unwrap();
    assert_eq!(
        list(MatchQuery {
            status: Some(MatchStatus::Accepted),
            ..MatchQuery::default()
        })
        .await,
        ["CVE-1"]
    );
    assert_eq!(
        list(MatchQuery {
            asset: Some("web".into()),
            seen_to: Some(at(2)),
            ..MatchQuery::default()
        })
        .await,
        ["CVE-1", "CVE-0"]
    );
    assert!(
        list(MatchQuery {
            asset: Some("nope".into()),
            ..MatchQuery::default()
        })
        .await
        .is_empty()
    );
    // Pages of 4 walk all 9 once, newest first.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = s
            .query_matches(&MatchQuery {
                cursor,
                limit: 4,
                ..MatchQuery::default()
            })
            .await
            .unwrap();
        seen.extend(page.items.iter().map(|m| m.cve_id.clone()));
        match page.next_cursor {
            Some(c) => cursor = palisade_store::Cursor::decode(&c),
            None => break,
        }
    }
    assert_eq!(
        seen,
        (0..9).rev().map(|i| format!("CVE-{i}")).collect::<Vec<_>>()
    );
}

async fn sync_state_round_trips(db: Db) {
    let s = &db.store;
    assert!(s.sync_state("nvd").await.unwrap().is_none());
    s.put_sync_state("nvd", r#"{"next":50}"#, at(1))
        .await
        .unwrap();
    s.put_sync_state("nvd", r#"{"next":100}"#, at(2))
        .await
        .unwrap();
    s.put_sync_state("circl", "x", at(2)).await.unwrap();
    assert_eq!(
        s.sync_state("nvd").await.unwrap().as_deref(),
        Some(r#"{"next":100}"#)
    );
}
