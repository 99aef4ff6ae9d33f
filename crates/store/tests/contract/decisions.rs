//! The decision contract: bans and allow-list entries.

use palisade_core::Timestamp;
use palisade_core::decision::{
    Decision, DecisionKind, DecisionOrigin, DecisionScope, NewDecision, PutOutcome,
};
use palisade_store::{DecisionQuery, SharedStore, StoreError};

use crate::harness::{Db, T0, contract, net};

contract!(
    decisions_round_trip_and_extend_instead_of_duplicating,
    expired_decisions_are_replaced_and_marked,
    deleting_is_soft_and_only_for_decisions_in_force,
    decisions_are_filtered_and_paginated,
    changes_since_a_pull_are_listed_by_id,
    concurrent_puts_of_one_decision_keep_one_in_force,
);

const SEC: i64 = 1_000_000;

fn at(secs: i64) -> Timestamp {
    Timestamp(T0 + secs * SEC)
}

fn new(kind: DecisionKind, value: &str, expires: Option<i64>) -> NewDecision {
    NewDecision {
        kind,
        target: value.parse().unwrap(),
        origin: DecisionOrigin::Manual,
        scenario: format!("{} {value}", kind.as_str()),
        created_by: "alice".into(),
        threat_id: None,
        expires_at: expires.map(at),
    }
}

async fn put(s: &SharedStore, d: NewDecision, now: i64) -> (Decision, PutOutcome) {
    s.put_decision(&d, at(now)).await.unwrap()
}

async fn ids(s: &SharedStore, q: DecisionQuery) -> Vec<i64> {
    let page = s
        .query_decisions(&DecisionQuery { limit: 1000, ..q })
        .await
        .unwrap();
    assert!(page.next_cursor.is_none());
    page.items.iter().map(|d| d.id).collect()
}

fn sorted(mut v: Vec<i64>) -> Vec<i64> {
    v.sort_unstable();
    v
}

async fn decisions_round_trip_and_extend_instead_of_duplicating(db: Db) {
    let s = &db.store;
    let mut first = NewDecision {
        origin: DecisionOrigin::Scenario,
        scenario: "http-probing\0".into(),
        created_by: "scenario-engine".into(),
        threat_id: Some(42),
        ..new(DecisionKind::Ban, "2001:db8::dead:beef", Some(3600))
    };
    assert_eq!(s.decisions_fingerprint().await.unwrap(), (0, 0, 0));
    let (d, outcome) = put(s, first.clone(), 0).await;
    assert_eq!(outcome, PutOutcome::Created);
    let fingerprint = s.decisions_fingerprint().await.unwrap();
    assert_eq!(fingerprint, (d.id, at(0).as_micros(), 1));
    assert_eq!(d.kind, DecisionKind::Ban);
    assert_eq!(d.scope, DecisionScope::Ip);
    assert_eq!(d.value, "2001:db8::dead:beef");
    assert_eq!(d.net, first.target.net());
    assert_eq!(d.origin, DecisionOrigin::Scenario);
    assert_eq!(d.scenario, "http-probing\u{fffd}");
    assert_eq!(d.created_by, "scenario-engine");
    assert_eq!(d.threat_id, Some(42));
    assert_eq!((d.created_at, d.updated_at), (at(0), at(0)));
    assert_eq!(d.expires_at, Some(at(3600)));
    assert_eq!((d.deleted_at, d.deleted_by.as_deref()), (None, None));
    assert_eq!(s.get_decision(d.id).await.unwrap(), Some(d.clone()));
    assert_eq!(s.get_decision(d.id + 100).await.unwrap(), None);

    // The same ban again, shorter: nothing changes.
    first.expires_at = Some(at(1000));
    let (same, outcome) = put(s, first.clone(), 10).await;
    assert_eq!(outcome, PutOutcome::Unchanged);
    assert_eq!(same, d);
    assert_eq!(s.decisions_fingerprint().await.unwrap(), fingerprint);
    // Longer: the ban in force is extended, not duplicated.
    first.expires_at = Some(at(7200));
    let (longer, outcome) = put(s, first.clone(), 20).await;
    assert_eq!(outcome, PutOutcome::Extended);
    assert_eq!(longer.id, d.id);
    assert_eq!(longer.expires_at, Some(at(7200)));
    assert_ne!(s.decisions_fingerprint().await.unwrap(), fingerprint);
    assert_eq!((longer.created_at, longer.updated_at), (at(0), at(20)));
    // For good beats any time; then nothing beats it.
    first.expires_at = None;
    let (forever, outcome) = put(s, first.clone(), 30).await;
    assert_eq!((outcome, forever.expires_at), (PutOutcome::Extended, None));
    first.expires_at = Some(at(99_999));
    assert_eq!(put(s, first.clone(), 40).await.1, PutOutcome::Unchanged);
    // An allow-list entry on the same value is a decision of its own; a network
    // given with host bits is stored canonical.
    let (allow, outcome) = put(s, new(DecisionKind::Allow, "2001:db8::dead:beef", None), 50).await;
    assert_eq!(outcome, PutOutcome::Created);
    assert_ne!(allow.id, d.id);
    let (range, _) = put(s, new(DecisionKind::Ban, "198.51.100.77/24", Some(60)), 50).await;
    assert_eq!(
        (range.value.as_str(), range.scope),
        ("198.51.100.0/24", DecisionScope::Range)
    );
    let all = s.active_decisions(at(55), None).await.unwrap();
    assert_eq!(
        all.iter().map(|x| x.id).collect::<Vec<_>>(),
        vec![d.id, allow.id, range.id]
    );
}

async fn expired_decisions_are_replaced_and_marked(db: Db) {
    let s = &db.store;
    let (old, _) = put(s, new(DecisionKind::Ban, "192.0.2.1", Some(10)), 0).await;
    let (fresh, outcome) = put(s, new(DecisionKind::Ban, "192.0.2.1", Some(100)), 20).await;
    assert_eq!(outcome, PutOutcome::Created);
    assert_ne!(fresh.id, old.id);
    let old = s.get_decision(old.id).await.unwrap().unwrap();
    assert_eq!(old.deleted_at, Some(at(10)));
    assert_eq!(old.deleted_by.as_deref(), Some("expiry"));
    assert_eq!(old.updated_at, at(0), "expiry does not count as a change");

    put(s, new(DecisionKind::Ban, "192.0.2.2", Some(30)), 0).await;
    put(s, new(DecisionKind::Ban, "192.0.2.3", Some(40)), 0).await;
    put(s, new(DecisionKind::Allow, "192.0.2.4", None), 0).await;
    assert_eq!(s.expire_decisions(at(35)).await.unwrap(), 1);
    assert_eq!(s.expire_decisions(at(35)).await.unwrap(), 0);
    let live = s.active_decisions(at(35), None).await.unwrap();
    let values: Vec<&str> = live.iter().map(|d| d.value.as_str()).collect();
    assert_eq!(values, vec!["192.0.2.1", "192.0.2.3", "192.0.2.4"]);
    // Decided by time even before the expiry job marks it.
    let live = s
        .active_decisions(at(45), Some(DecisionKind::Ban))
        .await
        .unwrap();
    assert_eq!(
        live.iter().map(|d| d.id).collect::<Vec<_>>(),
        vec![fresh.id]
    );
    let allows = s
        .active_decisions(at(45), Some(DecisionKind::Allow))
        .await
        .unwrap();
    assert_eq!(allows.len(), 1);
}

async fn deleting_is_soft_and_only_for_decisions_in_force(db: Db) {
    let s = &db.store;
    let (d, _) = put(s, new(DecisionKind::Ban, "203.0.113.9", None), 0).await;
    let (short, _) = put(s, new(DecisionKind::Ban, "203.0.113.10", Some(5)), 0).await;
    let gone = s
        .delete_decision(d.id, at(7), "bob")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(gone.id, d.id);
    assert_eq!(gone.deleted_at, Some(at(7)));
    assert_eq!(gone.deleted_by.as_deref(), Some("bob"));
    assert_eq!(gone.updated_at, at(7));
    assert_eq!(s.get_decision(d.id).await.unwrap(), Some(gone));
    assert!(
        s.delete_decision(d.id, at(8), "bob")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.delete_decision(d.id + 100, at(8), "bob")
            .await
            .unwrap()
            .is_none()
    );
    // Already expired: nothing to delete.
    assert!(
        s.delete_decision(short.id, at(8), "bob")
            .await
            .unwrap()
            .is_none()
    );
    assert!(s.active_decisions(at(8), None).await.unwrap().is_empty());
    // The address can be banned again.
    let (again, outcome) = put(s, new(DecisionKind::Ban, "203.0.113.9", None), 9).await;
    assert_eq!(outcome, PutOutcome::Created);
    assert_ne!(again.id, d.id);
}

async fn decisions_are_filtered_and_paginated(db: Db) {
    let s = &db.store;
    let mut made = Vec::new();
    for (i, (kind, value, origin, expires)) in [
        (
            DecisionKind::Ban,
            "10.0.0.0/8",
            DecisionOrigin::Manual,
            None,
        ),
        (
            DecisionKind::Ban,
            "10.1.2.3",
            DecisionOrigin::Scenario,
            Some(100),
        ),
        (
            DecisionKind::Allow,
            "10.1.2.0/24",
            DecisionOrigin::Manual,
            None,
        ),
        (
            DecisionKind::Ban,
            "192.0.2.8",
            DecisionOrigin::Waf,
            Some(10),
        ),
        (
            DecisionKind::Ban,
            "2001:db8::/48",
            DecisionOrigin::Scenario,
            None,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let mut n = new(kind, value, expires);
        n.origin = origin;
        if origin == DecisionOrigin::Scenario {
            n.scenario = "ssh-bf".into();
        }
        // Two share a creation time, to walk equal keys.
        made.push(put(s, n, (i as i64).min(3)).await.0.id);
    }
    let q = |f: fn(&mut DecisionQuery)| {
        let mut q = DecisionQuery {
            now: at(50),
            ..DecisionQuery::default()
        };
        f(&mut q);
        q
    };
    let all = ids(s, q(|_| {})).await;
    assert_eq!(sorted(all.clone()), made);
    assert_eq!(all[0], made[4], "newest first");
    assert_eq!(
        sorted(ids(s, q(|q| q.kind = Some(DecisionKind::Allow))).await),
        vec![made[2]]
    );
    assert_eq!(
        sorted(ids(s, q(|q| q.scope = Some(DecisionScope::Ip))).await),
        vec![made[1], made[3]]
    );
    assert_eq!(
        sorted(ids(s, q(|q| q.origin = Some(DecisionOrigin::Scenario))).await),
        vec![made[1], made[4]]
    );
    assert_eq!(
        sorted(ids(s, q(|q| q.scenario = Some("ssh-bf".into()))).await),
        vec![made[1], made[4]]
    );
    // One address: the decision on it and every range containing it.
    assert_eq!(
        sorted(ids(s, q(|q| q.overlaps = net("10.1.2.3"))).await),
        vec![made[0], made[1], made[2]]
    );
    assert_eq!(
        sorted(ids(s, q(|q| q.overlaps = net("10.1.2.0/23"))).await),
        vec![made[0], made[1], made[2]]
    );
    assert_eq!(
        sorted(ids(s, q(|q| q.overlaps = net("2001:db8::1"))).await),
        vec![made[4]]
    );
    assert!(ids(s, q(|q| q.overlaps = net("11.0.0.1"))).await.is_empty());
    // In force at `now` (the WAF ban expired at 10), and the rest.
    let active = sorted(ids(s, q(|q| q.active = Some(true))).await);
    assert_eq!(active, vec![made[0], made[1], made[2], made[4]]);
    assert_eq!(ids(s, q(|q| q.active = Some(false))).await, vec![made[3]]);
    s.delete_decision(made[0], at(60), "bob").await.unwrap();
    let mut later = q(|q| q.active = Some(false));
    later.now = at(61);
    assert_eq!(sorted(ids(s, later).await), vec![made[0], made[3]]);
    // Combined.
    assert_eq!(
        ids(
            s,
            q(|q| {
                q.kind = Some(DecisionKind::Ban);
                q.overlaps = net("10.1.2.3");
                q.origin = Some(DecisionOrigin::Scenario);
            })
        )
        .await,
        vec![made[1]]
    );
    // Pages of two walk every decision once, newest first.
    let mut walked = Vec::new();
    let mut cursor = None;
    loop {
        let page = s
            .query_decisions(&DecisionQuery {
                cursor,
                limit: 2,
                now: at(50),
                ..DecisionQuery::default()
            })
            .await
            .unwrap();
        walked.extend(page.items.iter().map(|d| d.id));
        match page.next_cursor {
            Some(c) => cursor = palisade_store::Cursor::decode(&c),
            None => break,
        }
    }
    assert_eq!(walked, all);
}

async fn changes_since_a_pull_are_listed_by_id(db: Db) {
    let s = &db.store;
    let (before, _) = put(s, new(DecisionKind::Ban, "192.0.2.1", None), 0).await;
    let (expiring, _) = put(s, new(DecisionKind::Ban, "192.0.2.2", Some(25)), 0).await;
    let (extended, _) = put(s, new(DecisionKind::Ban, "192.0.2.3", Some(100)), 0).await;
    let (deleted, _) = put(s, new(DecisionKind::Ban, "192.0.2.4", None), 0).await;
    // A bouncer pulled at 10. Then:
    let (created, _) = put(s, new(DecisionKind::Ban, "192.0.2.5", None), 15).await;
    let (allow, _) = put(s, new(DecisionKind::Allow, "192.0.2.6", None), 16).await;
    put(s, new(DecisionKind::Ban, "192.0.2.3", Some(200)), 17).await;
    s.delete_decision(deleted.id, at(18), "bob").await.unwrap();
    let changes = s.decision_changes(at(10), at(30), 0, 100).await.unwrap();
    let got: Vec<i64> = changes.iter().map(|d| d.id).collect();
    assert_eq!(
        got,
        vec![expiring.id, extended.id, deleted.id, created.id, allow.id]
    );
    assert!(!got.contains(&before.id));
    // The expired one is reported once the window reaches its expiry.
    let got: Vec<i64> = s
        .decision_changes(at(10), at(20), 0, 100)
        .await
        .unwrap()
        .iter()
        .map(|d| d.id)
        .collect();
    assert!(!got.contains(&expiring.id));
    // Paging by id.
    let first = s.decision_changes(at(10), at(30), 0, 2).await.unwrap();
    assert_eq!(first.len(), 2);
    let rest = s
        .decision_changes(at(10), at(30), first[1].id, 100)
        .await
        .unwrap();
    assert_eq!(rest.len(), 3);
    // Marking expiry changes nothing a bouncer sees twice.
    s.expire_decisions(at(30)).await.unwrap();
    let again = s.decision_changes(at(26), at(31), 0, 100).await.unwrap();
    assert!(again.is_empty(), "{again:?}");
}

async fn concurrent_puts_of_one_decision_keep_one_in_force(db: Db) {
    let s = &db.store;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let d = new(DecisionKind::Ban, "198.51.100.1", Some(100 + i));
            loop {
                match s.put_decision(&d, at(0)).await {
                    Ok(r) => return r,
                    Err(StoreError::Conflict(_)) => continue,
                    Err(e) => panic!("{e}"),
                }
            }
        }));
    }
    let mut created = 0;
    for t in tasks {
        if t.await.unwrap().1 == PutOutcome::Created {
            created += 1;
        }
    }
    assert_eq!(created, 1);
    let live = s.active_decisions(at(1), None).await.unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].expires_at, Some(at(107)));
}
