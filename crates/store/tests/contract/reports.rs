//! The report contract: stored reports and the security summary queries.

use palisade_core::Timestamp;
use palisade_core::decision::{DecisionKind, DecisionOrigin, NewDecision};
use palisade_core::threat::Threat;
use palisade_core::verdict::Action;
use palisade_store::{Count, Cursor, NewReport};

use crate::harness::{Db, T0, contract};

contract!(
    reports_round_trip_and_list_newest_first,
    top_sources_and_decision_counts_cover_the_period,
);

const SEC: i64 = 1_000_000;

fn at(secs: i64) -> Timestamp {
    Timestamp(T0 + secs * SEC)
}

async fn reports_round_trip_and_list_newest_first(db: Db) {
    let s = &db.store;
    let mut ids = Vec::new();
    for i in 0..3 {
        let meta = s
            .insert_report(
                &NewReport {
                    kind: "vulnerabilities".into(),
                    from: at(0),
                    to: at(100),
                    created_by: "alice\0".into(),
                    doc: format!(r#"{{"n":{i}}}"#),
                },
                at(i),
            )
            .await
            .unwrap();
        assert_eq!(meta.created_by, "alice\u{fffd}");
        ids.push(meta.id);
    }
    let got = s.get_report(ids[1]).await.unwrap().unwrap();
    assert_eq!(got.doc, r#"{"n":1}"#);
    assert_eq!(got.meta.kind, "vulnerabilities");
    assert_eq!(
        (got.meta.from, got.meta.to, got.meta.created_at),
        (at(0), at(100), at(1))
    );
    assert!(s.get_report(999_999).await.unwrap().is_none());
    let page = s.query_reports(None, 2).await.unwrap();
    assert_eq!(
        page.items.iter().map(|m| m.id).collect::<Vec<_>>(),
        [ids[2], ids[1]]
    );
    let rest = s
        .query_reports(Cursor::decode(page.next_cursor.as_deref().unwrap()), 2)
        .await
        .unwrap();
    assert_eq!(
        rest.items.iter().map(|m| m.id).collect::<Vec<_>>(),
        [ids[0]]
    );
    assert!(rest.next_cursor.is_none());
}

fn threat(ts: i64, ip: Option<&str>) -> Threat {
    Threat {
        tags: Vec::new(),
        ts: at(ts),
        category: "sqli".into(),
        severity: "critical".parse().unwrap(),
        score: 5,
        rule_ids: vec![],
        client_ip: ip.map(|i| i.parse().unwrap()),
        method: None,
        uri: None,
        source: "check".into(),
        event_id: None,
        decision: Action::Detect,
        evidence: vec![],
    }
}

async fn top_sources_and_decision_counts_cover_the_period(db: Db) {
    let s = &db.store;
    s.insert_threats(&[
        threat(1, Some("10.0.0.2")),
        threat(2, Some("10.0.0.1")),
        threat(3, Some("10.0.0.2")),
        threat(4, Some("2001:db8::1")),
        threat(5, None),
        threat(50, Some("10.0.0.9")),
    ])
    .await
    .unwrap();
    let top = s.top_threat_sources(at(0), at(10), 10).await.unwrap();
    let c = |k: &str, n: u64| Count {
        key: k.into(),
        count: n,
    };
    assert_eq!(
        top,
        [c("10.0.0.2", 2), c("10.0.0.1", 1), c("2001:db8::1", 1)]
    );
    assert_eq!(
        s.top_threat_sources(at(0), at(10), 1).await.unwrap().len(),
        1
    );
    for (i, (kind, origin, value)) in [
        (DecisionKind::Ban, DecisionOrigin::Scenario, "10.0.0.1"),
        (DecisionKind::Ban, DecisionOrigin::Scenario, "10.0.0.2"),
        (DecisionKind::Ban, DecisionOrigin::Manual, "10.0.0.3"),
        (DecisionKind::Allow, DecisionOrigin::Manual, "10.0.0.4"),
    ]
    .into_iter()
    .enumerate()
    {
        s.put_decision(
            &NewDecision {
                kind,
                target: value.parse().unwrap(),
                origin,
                scenario: "x".into(),
                created_by: "alice".into(),
                threat_id: None,
                expires_at: None,
            },
            at(i as i64),
        )
        .await
        .unwrap();
    }
    let counts = s.decision_counts(at(0), at(10)).await.unwrap();
    assert_eq!(
        counts,
        [
            c("ban/scenario", 2),
            c("allow/manual", 1),
            c("ban/manual", 1)
        ]
    );
    assert!(s.decision_counts(at(10), at(20)).await.unwrap().is_empty());
}
