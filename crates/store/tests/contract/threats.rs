//! The threat contract: threats, statistics, settings.

use std::net::IpAddr;

use palisade_core::Timestamp;
use palisade_core::severity::Severity;
use palisade_core::threat::{Evidence, Threat};
use palisade_core::verdict::Action;
use palisade_store::{Count, Cursor, SharedStore, ThreatQuery, ThreatStats};

use crate::harness::{Db, T0, contract};

contract!(
    threats_round_trip_every_field,
    threat_text_is_cleaned_and_capped,
    threats_are_filtered,
    threats_are_filtered_by_tag,
    threat_pages_walk_equal_timestamps_once,
    threat_stats_count_a_known_set,
    threats_are_counted_per_rule_over_all_time,
    settings_get_put_and_overwrite,
    a_large_batch_keeps_every_threat_its_id_and_its_rules,
);

const MIN: i64 = 60_000_000;

fn evidence(rule_id: u32) -> Evidence {
    Evidence {
        rule_id,
        location: "args".into(),
        part: "id".into(),
        decoded_value: "1' OR '1'='1".into(),
        matched: "' OR '".into(),
    }
}

fn threat(ts: i64, category: &str, severity: &str, rules: &[u32], ip: &str) -> Threat {
    Threat {
        tags: Vec::new(),
        ts: Timestamp(T0 + ts),
        category: category.into(),
        severity: severity.parse().unwrap(),
        score: 5,
        rule_ids: rules.to_vec(),
        client_ip: Some(ip.parse().unwrap()),
        method: Some("GET".into()),
        uri: Some("/".into()),
        source: "check".into(),
        event_id: None,
        decision: Action::Detect,
        evidence: rules.iter().map(|r| evidence(*r)).collect(),
    }
}

/// Inserts `threats` and returns their ids in insertion order (ids increase).
async fn insert(s: &SharedStore, threats: Vec<Threat>) -> Vec<i64> {
    let n = threats.len();
    assert_eq!(s.insert_threats(&threats).await.unwrap().len(), n);
    let page = s
        .query_threats(&ThreatQuery {
            limit: 1000,
            ..ThreatQuery::default()
        })
        .await
        .unwrap();
    let mut ids: Vec<i64> = page.items.iter().map(|t| t.id).collect();
    ids.sort_unstable();
    ids.split_off(ids.len() - n)
}

/// The ids matching `q`, in listing order (all pages).
async fn matching(s: &SharedStore, q: ThreatQuery) -> Vec<i64> {
    let page = s
        .query_threats(&ThreatQuery { limit: 1000, ..q })
        .await
        .unwrap();
    assert!(page.next_cursor.is_none());
    page.items.iter().map(|t| t.id).collect()
}

fn sorted(mut v: Vec<i64>) -> Vec<i64> {
    v.sort_unstable();
    v
}

fn c(key: &str, count: u64) -> Count {
    Count {
        key: key.into(),
        count,
    }
}

async fn threats_round_trip_every_field(db: Db) {
    let s = &db.store;
    assert!(s.insert_threats(&[]).await.unwrap().is_empty());
    let ip: IpAddr = "2001:db8::dead:beef".parse().unwrap();
    let t = Threat {
        tags: vec![
            "application-multi".into(),
            "attack-sqli".into(),
            "paranoia-level/1".into(),
            "OWASP_CRS/WEB_ATTACK/SQL_INJECTION".into(),
            "capec/1000/152/248/66".into(),
        ],
        ts: Timestamp(T0 + 123_456),
        category: "sqli".into(),
        severity: Severity::Critical,
        score: 23,
        rule_ids: vec![942_100, 941_100, 942_100, u32::MAX],
        client_ip: Some(ip),
        method: Some("POST".into()),
        uri: Some("/login?user=admin'--&x=é".into()),
        source: "proxy".into(),
        event_id: Some(42),
        decision: Action::Block,
        evidence: vec![
            evidence(942_100),
            Evidence {
                rule_id: 941_100,
                location: "header".into(),
                part: "User-Agent".into(),
                decoded_value: "<script>\"x\"</script>\n".into(),
                matched: "<script>".into(),
            },
        ],
    };
    let bare = Threat {
        client_ip: None,
        method: None,
        uri: None,
        event_id: None,
        rule_ids: vec![],
        evidence: vec![],
        ..threat(1, "scanner", "notice", &[], "192.0.2.1")
    };
    let ids = insert(s, vec![t.clone(), bare.clone()]).await;
    let got = s.get_threat(ids[0]).await.unwrap().unwrap();
    assert_eq!(got.id, ids[0]);
    assert_eq!(got.threat, t);
    let got = s.get_threat(ids[1]).await.unwrap().unwrap();
    assert_eq!(got.threat, bare);
    assert!(s.get_threat(ids[1] + 1000).await.unwrap().is_none());
    // A repeated rule id is one match for the rule filter, not two rows.
    let by_rule = matching(
        s,
        ThreatQuery {
            rule_id: Some(942_100),
            ..ThreatQuery::default()
        },
    )
    .await;
    assert_eq!(by_rule, vec![ids[0]]);
    let by_big = matching(
        s,
        ThreatQuery {
            rule_id: Some(u32::MAX),
            ..ThreatQuery::default()
        },
    )
    .await;
    assert_eq!(by_big, vec![ids[0]]);
    // The listing gives the same thing as the single read.
    let page = s
        .query_threats(&ThreatQuery {
            limit: 10,
            ..ThreatQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.items[0].threat, t);
}

async fn threat_text_is_cleaned_and_capped(db: Db) {
    let s = &db.store;
    let t = Threat {
        category: "sq\0li".into(),
        uri: Some(format!("/\0{}", "é".repeat(3000))),
        method: Some("G\0T".into()),
        source: "in\0gest".into(),
        ..threat(1, "x", "warning", &[1], "192.0.2.1")
    };
    let ids = insert(s, vec![t]).await;
    let got = s.get_threat(ids[0]).await.unwrap().unwrap().threat;
    assert_eq!(got.category, "sq\u{fffd}li");
    assert_eq!(got.method.as_deref(), Some("G\u{fffd}T"));
    assert_eq!(got.source, "in\u{fffd}gest");
    let uri = got.uri.unwrap();
    assert_eq!(uri.chars().count(), 2048);
    assert!(uri.starts_with("/\u{fffd}é"));
    let found = matching(
        s,
        ThreatQuery {
            category: Some("sq\0li".into()),
            ..ThreatQuery::default()
        },
    )
    .await;
    assert_eq!(found, ids);
}

async fn threats_are_filtered_by_tag(db: Db) {
    let s = &db.store;
    let tagged = |ts: i64, tags: &[&str]| Threat {
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        ..threat(ts, "sqli", "critical", &[942_100], "10.0.0.1")
    };
    let ids = insert(
        s,
        vec![
            tagged(
                1,
                &[
                    "attack-sqli",
                    "paranoia-level/1",
                    "OWASP_CRS/WEB_ATTACK/SQL_INJECTION",
                ],
            ),
            tagged(2, &["attack-xss", "paranoia-level/2", "OWASPXCRS"]),
            tagged(3, &[]),
        ],
    )
    .await;
    let by = |tag: &str| ThreatQuery {
        tag: Some(tag.into()),
        ..ThreatQuery::default()
    };
    assert_eq!(matching(s, by("attack-sqli")).await, vec![ids[0]]);
    assert_eq!(matching(s, by("paranoia-level/2")).await, vec![ids[1]]);
    // Whole tags only, case-insensitive, and LIKE's `_` is a plain character.
    assert_eq!(
        matching(s, by("owasp_crs/web_attack/sql_injection")).await,
        vec![ids[0]]
    );
    assert!(matching(s, by("attack")).await.is_empty());
    assert!(matching(s, by("paranoia-level/%")).await.is_empty());
    assert!(matching(s, by("OWASP_CRS")).await.is_empty());
    assert_eq!(
        s.get_threat(ids[2]).await.unwrap().unwrap().threat.tags,
        Vec::<String>::new()
    );
}

async fn threats_are_filtered(db: Db) {
    let s = &db.store;
    let ids = insert(
        s,
        vec![
            threat(10, "sqli", "critical", &[942_100], "10.0.0.1"),
            threat(20, "xss", "error", &[941_100], "10.0.0.200"),
            threat(30, "sqli", "error", &[942_100, 942_200], "10.0.1.1"),
            threat(40, "lfi", "warning", &[930_100], "2001:db8::1"),
            threat(50, "sqli", "critical", &[942_200], "2001:db8:0:1::1"),
        ],
    )
    .await;
    let all = matching(s, ThreatQuery::default()).await;
    assert_eq!(all, vec![ids[4], ids[3], ids[2], ids[1], ids[0]]);
    let q = |f: fn(&mut ThreatQuery)| {
        let mut q = ThreatQuery::default();
        f(&mut q);
        q
    };
    let cases: Vec<(ThreatQuery, Vec<i64>)> = vec![
        (
            q(|q| q.from = Some(Timestamp(T0 + 20))),
            vec![ids[4], ids[3], ids[2], ids[1]],
        ),
        (q(|q| q.to = Some(Timestamp(T0 + 20))), vec![ids[0]]),
        (
            q(|q| {
                q.from = Some(Timestamp(T0 + 20));
                q.to = Some(Timestamp(T0 + 40));
            }),
            vec![ids[2], ids[1]],
        ),
        (
            q(|q| q.category = Some("sqli".into())),
            vec![ids[4], ids[2], ids[0]],
        ),
        (q(|q| q.category = Some("SQLI".into())), vec![]),
        (
            q(|q| q.severity = Some("error".into())),
            vec![ids[2], ids[1]],
        ),
        (
            q(|q| q.client = "10.0.0.0/24".parse().ok()),
            vec![ids[1], ids[0]],
        ),
        (
            q(|q| q.client = "10.0.0.0/16".parse().ok()),
            vec![ids[2], ids[1], ids[0]],
        ),
        (q(|q| q.client = "10.0.1.1".parse().ok()), vec![ids[2]]),
        (q(|q| q.client = "2001:db8::/64".parse().ok()), vec![ids[3]]),
        (
            q(|q| q.client = "2001:db8::/32".parse().ok()),
            vec![ids[4], ids[3]],
        ),
        (q(|q| q.rule_id = Some(942_100)), vec![ids[2], ids[0]]),
        (q(|q| q.rule_id = Some(942_200)), vec![ids[4], ids[2]]),
        (q(|q| q.rule_id = Some(1)), vec![]),
        (
            q(|q| {
                q.category = Some("sqli".into());
                q.severity = Some("critical".into());
                q.rule_id = Some(942_200);
            }),
            vec![ids[4]],
        ),
        (
            q(|q| {
                q.rule_id = Some(942_100);
                q.client = "10.0.0.0/24".parse().ok();
                q.from = Some(Timestamp(T0));
            }),
            vec![ids[0]],
        ),
    ];
    for (i, (query, want)) in cases.into_iter().enumerate() {
        assert_eq!(matching(s, query).await, want, "case {i}");
    }
}

async fn threat_pages_walk_equal_timestamps_once(db: Db) {
    let s = &db.store;
    let mut threats = Vec::new();
    for i in 0..7 {
        threats.push(threat(100, "sqli", "error", &[1], "192.0.2.1"));
        threats.push(threat(i, "xss", "error", &[2], "192.0.2.2"));
    }
    let ids = insert(s, threats).await;
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = s
            .query_threats(&ThreatQuery {
                cursor,
                limit: 3,
                ..ThreatQuery::default()
            })
            .await
            .unwrap();
        assert!(page.items.len() <= 3);
        seen.extend(page.items.iter().map(|t| (t.threat.ts.as_micros(), t.id)));
        pages += 1;
        match page.next_cursor {
            Some(next) => cursor = Some(Cursor::decode(&next).unwrap()),
            None => break,
        }
    }
    assert_eq!(pages, 5);
    assert_eq!(seen.len(), 14);
    assert!(seen.windows(2).all(|w| w[0] > w[1]), "{seen:?}");
    let got: Vec<i64> = seen.iter().map(|(_, id)| *id).collect();
    assert_eq!(sorted(got), sorted(ids));
    // A filtered walk of only the equal timestamps.
    let first = s
        .query_threats(&ThreatQuery {
            category: Some("sqli".into()),
            limit: 4,
            ..ThreatQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(first.items.len(), 4);
    let rest = s
        .query_threats(&ThreatQuery {
            category: Some("sqli".into()),
            cursor: first.next_cursor.as_deref().and_then(Cursor::decode),
            limit: 4,
            ..ThreatQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 3);
    assert!(rest.next_cursor.is_none());
    assert!(first.items.last().unwrap().id > rest.items[0].id);
}

async fn threat_stats_count_a_known_set(db: Db) {
    let s = &db.store;
    // T0 is 2023-11-14T22:13:20Z, so T0 and T0 + 59 s fall in different minutes.
    let mut ingest = threat(2 * MIN + 5, "xss", "error", &[941_100], "10.0.0.2");
    ingest.source = "ingest".into();
    let mut proxy = threat(2 * MIN + 6, "sqli", "critical", &[942_100], "10.0.0.3");
    proxy.source = "proxy".into();
    insert(
        s,
        vec![
            threat(
                0,
                "sqli",
                "critical",
                &[942_100, 942_200, 942_100],
                "10.0.0.1",
            ),
            threat(1, "sqli", "error", &[942_100], "10.0.0.1"),
            threat(MIN - 1, "xss", "critical", &[941_100, 942_100], "10.0.0.1"),
            ingest,
            proxy,
            threat(2 * MIN + 7, "lfi", "warning", &[930_100], "10.0.0.4"),
            // Outside the period, on both sides.
            threat(-1, "rce", "critical", &[932_100], "10.0.0.9"),
            threat(10 * MIN, "rce", "critical", &[932_100], "10.0.0.9"),
        ],
    )
    .await;
    let stats = s
        .threat_stats(Timestamp(T0), Timestamp(T0 + 10 * MIN), 60)
        .await
        .unwrap();
    let want = ThreatStats {
        total: 6,
        by_category: vec![c("sqli", 3), c("xss", 2), c("lfi", 1)],
        by_severity: vec![c("critical", 3), c("error", 2), c("warning", 1)],
        by_rule: vec![
            c("942100", 4),
            c("941100", 2),
            c("930100", 1),
            c("942200", 1),
        ],
        by_source: vec![c("check", 4), c("ingest", 1), c("proxy", 1)],
        buckets: vec![
            c("2023-11-14T22:13:00Z", 2),
            c("2023-11-14T22:14:00Z", 1),
            c("2023-11-14T22:15:00Z", 3),
        ],
    };
    assert_eq!(stats, want);
    // A bucket below a minute counts as a minute; wider buckets merge.
    let tiny = s
        .threat_stats(Timestamp(T0), Timestamp(T0 + 10 * MIN), 1)
        .await
        .unwrap();
    assert_eq!(tiny, want);
    let hourly = s
        .threat_stats(Timestamp(T0), Timestamp(T0 + 10 * MIN), 3600)
        .await
        .unwrap();
    assert_eq!(hourly.buckets, vec![c("2023-11-14T22:00:00Z", 6)]);
    // An empty period.
    let empty = s
        .threat_stats(Timestamp(T0 + 20 * MIN), Timestamp(T0 + 30 * MIN), 60)
        .await
        .unwrap();
    assert_eq!(
        empty,
        ThreatStats {
            total: 0,
            by_category: vec![],
            by_severity: vec![],
            by_rule: vec![],
            by_source: vec![],
            buckets: vec![],
        }
    );
}

async fn threats_are_counted_per_rule_over_all_time(db: Db) {
    let s = &db.store;
    insert(
        s,
        vec![
            threat(0, "sqli", "critical", &[942_100, 942_200], "10.0.0.1"),
            threat(1, "sqli", "error", &[942_100], "10.0.0.1"),
            threat(
                -5 * MIN,
                "behaviour",
                "warning",
                &[4_000_000_003],
                "10.0.0.2",
            ),
        ],
    )
    .await;
    let counts = s
        .count_threats_by_rule(&[942_100, 942_200, 4_000_000_003, 1])
        .await
        .unwrap();
    assert_eq!(
        counts,
        vec![c("942100", 2), c("942200", 1), c("4000000003", 1)],
        "ids with no threat are left out; ids above i32::MAX round-trip"
    );
}

async fn settings_get_put_and_overwrite(db: Db) {
    let s = &db.store;
    assert_eq!(s.setting("detection.mode").await.unwrap(), None);
    s.put_setting("detection.mode", "detect").await.unwrap();
    s.put_setting("detection.threshold", "5").await.unwrap();
    assert_eq!(
        s.setting("detection.mode").await.unwrap().as_deref(),
        Some("detect")
    );
    s.put_setting("detection.mode", "block").await.unwrap();
    assert_eq!(
        s.setting("detection.mode").await.unwrap().as_deref(),
        Some("block")
    );
    assert_eq!(
        s.setting("detection.threshold").await.unwrap().as_deref(),
        Some("5")
    );
    assert_eq!(s.setting("detection.Mode").await.unwrap(), None);
    s.put_setting("empty", "").await.unwrap();
    assert_eq!(s.setting("empty").await.unwrap().as_deref(), Some(""));
}

/// The recorder hands the store up to thousands of threats at once, which the backends
/// insert many rows per statement: every threat comes back under the id returned for
/// it, in order, with its own fields and rule rows, whatever the batch's size (here two
/// full chunks and a remainder, and rule rows that span chunks).
async fn a_large_batch_keeps_every_threat_its_id_and_its_rules(db: Db) {
    let s = &db.store;
    let first = insert(s, vec![threat(0, "sqli", "critical", &[1], "10.0.0.1")]).await;
    let threats: Vec<Threat> = (0..150u32)
        .map(|i| {
            let rules: Vec<u32> = match i % 3 {
                0 => vec![942_100],
                1 => vec![941_100, 942_100, 941_100],
                _ => vec![],
            };
            Threat {
                event_id: Some(i64::from(i) * 7),
                uri: Some(format!("/item/{i}")),
                ..threat(i64::from(i) * MIN, "sqli", "error", &rules, "10.0.0.2")
            }
        })
        .collect();
    let ids = s.insert_threats(&threats).await.unwrap();
    assert_eq!(ids.len(), threats.len());
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");
    assert!(ids[0] > first[0]);
    for (id, t) in ids.iter().zip(&threats) {
        let got = s.get_threat(*id).await.unwrap().unwrap();
        assert_eq!(&got.threat, t, "threat {id}");
    }
    let with_rule = |rule| {
        matching(
            s,
            ThreatQuery {
                rule_id: Some(rule),
                ..ThreatQuery::default()
            },
        )
    };
    let want_942: Vec<i64> = ids
        .iter()
        .zip(0..)
        .filter(|(_, i)| i % 3 != 2)
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(sorted(with_rule(942_100).await), sorted(want_942));
    let want_941: Vec<i64> = ids
        .iter()
        .zip(0..)
        .filter(|(_, i)| i % 3 == 1)
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(sorted(with_rule(941_100).await), want_941);
    assert_eq!(
        s.count_threats_by_rule(&[941_100, 942_100, 1])
            .await
            .unwrap(),
        vec![c("941100", 50), c("942100", 100), c("1", 1)]
    );
}
