//! The alerts contract: grouping hits into alerts (open, update, reopen, absorb), the
//! lifecycle with its history, listing filters and pages, the notification plan and the
//! durable delivery queue, rules/channels specs, and the activity feed.

use palisade_core::Timestamp;
use palisade_core::severity::Severity;
use palisade_store::{
    ActivityQuery, AlertChangeKind, AlertHit, AlertQuery, AlertState, AlertTransition, Cursor,
    DataKind, DeliveryState, DeliveryUpdate, NewActivity, NewDelivery, SpecInput, SpecTable,
    StoreError, TransitionOutcome,
};

use crate::harness::{Db, T0, contract};

contract!(
    a_burst_is_one_alert_and_the_lifecycle_keeps_history,
    resolved_groups_reopen_within_the_window_and_open_anew_after,
    alerts_list_by_filters_and_pages,
    notifications_are_planned_queued_claimed_and_finished,
    specs_are_named_uniquely_and_activities_list_by_kind,
    retention_removes_closed_alerts_finished_deliveries_and_old_activities,
);

const SEC: i64 = 1_000_000;
const MIN: i64 = 60 * SEC;

fn at(us: i64) -> Timestamp {
    Timestamp(T0 + us)
}

fn hit(key: &str, when: i64, threats: &[i64]) -> AlertHit {
    AlertHit {
        rule_id: 1,
        rule_name: "web attacks".into(),
        group_key: key.into(),
        title: format!("Attacks from {key}"),
        severity: Severity::Warning,
        category: "sqli".into(),
        threat_ids: threats.to_vec(),
        first_seen: at(when),
        last_seen: at(when + SEC),
        at: at(when + 2 * SEC),
        window_us: 10 * MIN,
        group_wait_us: 30 * SEC,
        group_interval_us: 5 * MIN,
    }
}

fn transition(to: AlertState, when: i64, comment: Option<&str>) -> AlertTransition {
    AlertTransition {
        to,
        actor: "ana".into(),
        comment: comment.map(Into::into),
        at: at(when),
    }
}

async fn a_burst_is_one_alert_and_the_lifecycle_keeps_history(db: Db) {
    let s = &db.store;
    let first = s
        .record_alert_hits(&[hit("ip=203.0.113.7", 0, &[1, 2, 3])])
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].kind, AlertChangeKind::Opened);
    let id = first[0].alert.id;
    assert_eq!(first[0].alert.count, 3);
    assert_eq!(first[0].alert.next_notify_at, Some(at(2 * SEC + 30 * SEC)));
    let mut second = hit("ip=203.0.113.7", MIN, &[4, 5]);
    second.severity = Severity::Critical;
    let changes = s.record_alert_hits(&[second]).await.unwrap();
    assert_eq!(changes[0].kind, AlertChangeKind::Updated);
    let a = &changes[0].alert;
    assert_eq!((a.id, a.count, a.state), (id, 5, AlertState::Active));
    assert_eq!((a.first_seen, a.last_seen), (at(0), at(MIN + SEC)));
    assert_eq!(a.severity, Severity::Critical);
    assert_eq!(
        s.alert_threat_ids(id, 10).await.unwrap(),
        vec![5, 4, 3, 2, 1]
    );
    assert_eq!(s.alert_threat_ids(id, 2).await.unwrap(), vec![5, 4]);

    let ack = s
        .transition_alert(
            id,
            &transition(AlertState::Acknowledged, 2 * MIN, Some("on it")),
        )
        .await
        .unwrap();
    let TransitionOutcome::Done(a) = ack else {
        panic!("acknowledge refused: {ack:?}")
    };
    assert_eq!(a.state, AlertState::Acknowledged);
    assert_eq!(a.state_by.as_deref(), Some("ana"));
    assert_eq!(a.state_comment.as_deref(), Some("on it"));
    assert_eq!(a.next_notify_at, None);
    assert_eq!(
        s.transition_alert(id, &transition(AlertState::Acknowledged, 3 * MIN, None))
            .await
            .unwrap(),
        TransitionOutcome::NotAllowed(AlertState::Acknowledged)
    );
    assert_eq!(
        s.transition_alert(999_999, &transition(AlertState::Resolved, 3 * MIN, None))
            .await
            .unwrap(),
        TransitionOutcome::NotFound
    );
    let done = s
        .transition_alert(
            id,
            &transition(AlertState::Resolved, 4 * MIN, Some("fixed")),
        )
        .await
        .unwrap();
    assert!(matches!(done, TransitionOutcome::Done(ref a) if a.state == AlertState::Resolved));
    let history = s.alert_history(id).await.unwrap();
    let steps: Vec<(&str, Option<AlertState>, AlertState, Option<&str>)> = history
        .iter()
        .map(|h| {
            (
                h.action.as_str(),
                h.from_state,
                h.to_state,
                h.comment.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        vec![
            ("opened", None, AlertState::Active, None),
            (
                "acknowledged",
                Some(AlertState::Active),
                AlertState::Acknowledged,
                Some("on it")
            ),
            (
                "resolved",
                Some(AlertState::Acknowledged),
                AlertState::Resolved,
                Some("fixed")
            ),
        ]
    );
    assert_eq!(history[1].actor.as_deref(), Some("ana"));
    assert_eq!(history[0].actor, None);
}

async fn resolved_groups_reopen_within_the_window_and_open_anew_after(db: Db) {
    let s = &db.store;
    let id = s.record_alert_hits(&[hit("k", 0, &[1])]).await.unwrap()[0]
        .alert
        .id;
    s.transition_alert(id, &transition(AlertState::Resolved, MIN, None))
        .await
        .unwrap();
    let again = s
        .record_alert_hits(&[hit("k", 5 * MIN, &[2])])
        .await
        .unwrap();
    assert_eq!(again[0].kind, AlertChangeKind::Reopened);
    assert_eq!(again[0].alert.id, id);
    assert_eq!(again[0].alert.state, AlertState::Active);
    assert_eq!(again[0].alert.count, 2);
    assert_eq!(again[0].alert.state_by, None);
    let actions: Vec<String> = s
        .alert_history(id)
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.action)
        .collect();
    assert_eq!(actions, ["opened", "resolved", "reopened"]);
    // Dismissed: absorbed silently within the window, a new alert after it.
    s.transition_alert(id, &transition(AlertState::Dismissed, 6 * MIN, None))
        .await
        .unwrap();
    let absorbed = s
        .record_alert_hits(&[hit("k", 7 * MIN, &[3])])
        .await
        .unwrap();
    assert_eq!(absorbed[0].kind, AlertChangeKind::Absorbed);
    assert_eq!(absorbed[0].alert.state, AlertState::Dismissed);
    assert_eq!(absorbed[0].alert.next_notify_at, None);
    let fresh = s
        .record_alert_hits(&[hit("k", 60 * MIN, &[4])])
        .await
        .unwrap();
    assert_eq!(fresh[0].kind, AlertChangeKind::Opened);
    assert_ne!(fresh[0].alert.id, id);
    // Two groups in one batch: two alerts.
    let two = s
        .record_alert_hits(&[hit("a", 0, &[10]), hit("b", 0, &[11]), hit("a", SEC, &[12])])
        .await
        .unwrap();
    assert_eq!(two[0].alert.id, two[2].alert.id);
    assert_ne!(two[0].alert.id, two[1].alert.id);
    assert_eq!(two[2].alert.count, 2);
}

async fn alerts_list_by_filters_and_pages(db: Db) {
    let s = &db.store;
    for i in 0..5 {
        let mut h = hit(&format!("g{i}"), i * MIN, &[i]);
        if i % 2 == 0 {
            h.category = "xss".into();
            h.severity = Severity::Error;
        }
        s.record_alert_hits(&[h]).await.unwrap();
    }
    let all = s
        .query_alerts(&AlertQuery {
            limit: 2,
            ..AlertQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(all.items.len(), 2);
    assert_eq!(all.items[0].group_key, "g4");
    let cursor = Cursor::decode(all.next_cursor.as_deref().unwrap());
    let next = s
        .query_alerts(&AlertQuery {
            limit: 10,
            cursor,
            ..AlertQuery::default()
        })
        .await
        .unwrap();
    let keys: Vec<&str> = next.items.iter().map(|a| a.group_key.as_str()).collect();
    assert_eq!(keys, ["g2", "g1", "g0"]);
    assert!(next.next_cursor.is_none());
    let xss = s
        .query_alerts(&AlertQuery {
            category: Some("xss".into()),
            severity: Some(Severity::Error),
            limit: 10,
            ..AlertQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(xss.items.len(), 3);
    let window = s
        .query_alerts(&AlertQuery {
            from: Some(at(MIN)),
            to: Some(at(3 * MIN)),
            limit: 10,
            ..AlertQuery::default()
        })
        .await
        .unwrap();
    let keys: Vec<&str> = window.items.iter().map(|a| a.group_key.as_str()).collect();
    assert_eq!(keys, ["g2", "g1"]);
    let id = xss.items[0].id;
    s.transition_alert(id, &transition(AlertState::Dismissed, 10 * MIN, None))
        .await
        .unwrap();
    let dismissed = s
        .query_alerts(&AlertQuery {
            state: Some(AlertState::Dismissed),
            limit: 10,
            ..AlertQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(dismissed.items.len(), 1);
    assert_eq!(dismissed.items[0].id, id);
}

fn delivery(channel: i64, id: &str) -> NewDelivery {
    NewDelivery {
        channel_id: channel,
        message_id: id.into(),
        event: "firing".into(),
        payload: "{\"a\":1}".into(),
    }
}

async fn notifications_are_planned_queued_claimed_and_finished(db: Db) {
    let s = &db.store;
    let alert = s.record_alert_hits(&[hit("k", 0, &[1])]).await.unwrap()[0]
        .alert
        .clone();
    let due_at = alert.next_notify_at.unwrap();
    assert!(
        s.due_alert_notifications(at(SEC), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let due = s.due_alert_notifications(due_at, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    // A stale plan is refused; the current one queues.
    assert!(
        !s.enqueue_alert_notifications(alert.id, at(1), None, due_at, &[delivery(7, "m0")])
            .await
            .unwrap()
    );
    let repeat = due_at.add_micros(240 * MIN);
    assert!(
        s.enqueue_alert_notifications(
            alert.id,
            due_at,
            Some(repeat),
            due_at,
            &[delivery(7, "m1"), delivery(8, "m2")]
        )
        .await
        .unwrap()
    );
    let a = s.get_alert(alert.id).await.unwrap().unwrap();
    assert_eq!(
        (a.notified_at, a.next_notify_at),
        (Some(due_at), Some(repeat))
    );
    // An update after a notification waits for the group interval.
    let upd = s.record_alert_hits(&[hit("k", MIN, &[2])]).await.unwrap();
    assert_eq!(
        upd[0].alert.next_notify_at,
        Some(due_at.add_micros(5 * MIN))
    );

    let lease = due_at.add_micros(MIN);
    let claimed = s.claim_deliveries(due_at, lease, 10, &[]).await.unwrap();
    assert_eq!(claimed.len(), 2);
    assert!(
        claimed
            .iter()
            .all(|d| d.attempts == 1 && d.next_at == lease)
    );
    assert_eq!(claimed[0].payload, "{\"a\":1}");
    assert!(
        s.claim_deliveries(due_at, lease, 10, &[])
            .await
            .unwrap()
            .is_empty()
    );
    let (ok, retry) = (&claimed[0], &claimed[1]);
    s.finish_delivery(
        ok.id,
        &DeliveryUpdate {
            state: DeliveryState::Delivered,
            next_at: due_at,
            at: due_at,
            status: Some(200),
            error: None,
        },
    )
    .await
    .unwrap();
    let later = due_at.add_micros(5 * SEC);
    s.finish_delivery(
        retry.id,
        &DeliveryUpdate {
            state: DeliveryState::Pending,
            next_at: later,
            at: due_at,
            status: Some(503),
            error: Some("unavailable".into()),
        },
    )
    .await
    .unwrap();
    // A resting channel's notifications are not claimed, and no attempt is counted.
    assert!(
        s.claim_deliveries(later, later.add_micros(MIN), 10, &[retry.channel_id, 99])
            .await
            .unwrap()
            .is_empty()
    );
    let again = s
        .claim_deliveries(later, later.add_micros(MIN), 10, &[])
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].id, again[0].attempts), (retry.id, 2));
    let log = s.alert_deliveries(alert.id).await.unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].state, DeliveryState::Delivered);
    assert_eq!(log[0].delivered_at, Some(due_at));
    assert_eq!(log[1].last_status, Some(503));
    assert_eq!(log[1].last_error.as_deref(), Some("unavailable"));
    // A test notification outside any alert.
    let test = s.enqueue_delivery(&delivery(7, "t1"), later).await.unwrap();
    let got = s.get_delivery(test).await.unwrap().unwrap();
    assert_eq!((got.alert_id, got.state), (None, DeliveryState::Pending));
    // Resolving a notified alert plans one last notification.
    let TransitionOutcome::Done(r) = s
        .transition_alert(alert.id, &transition(AlertState::Resolved, 20 * MIN, None))
        .await
        .unwrap()
    else {
        panic!("resolve refused")
    };
    assert_eq!(r.next_notify_at, Some(at(20 * MIN)));
}

async fn specs_are_named_uniquely_and_activities_list_by_kind(db: Db) {
    let s = &db.store;
    let spec = |name: &str| SpecInput {
        name: name.into(),
        kind: "webhook".into(),
        enabled: true,
        spec: serde_json::json!({"url": "http://127.0.0.1:9/hook", "n": [1, 2]}),
    };
    let a = s
        .insert_spec(SpecTable::Channels, &spec("ops"))
        .await
        .unwrap();
    let b = s
        .insert_spec(SpecTable::Channels, &spec("sec"))
        .await
        .unwrap();
    assert!(matches!(
        s.insert_spec(SpecTable::Channels, &spec("ops")).await,
        Err(StoreError::Conflict(_))
    ));
    // Names are per table.
    s.insert_spec(SpecTable::Rules, &spec("ops")).await.unwrap();
    assert!(matches!(
        s.update_spec(SpecTable::Channels, b.id, &spec("ops")).await,
        Err(StoreError::Conflict(_))
    ));
    let mut changed = spec("ops2");
    changed.enabled = false;
    let up = s
        .update_spec(SpecTable::Channels, a.id, &changed)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(up.input, changed);
    assert!(
        s.update_spec(SpecTable::Channels, 999_999, &changed)
            .await
            .unwrap()
            .is_none()
    );
    let names: Vec<String> = s
        .list_specs(SpecTable::Channels)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.input.name)
        .collect();
    assert_eq!(names, ["ops2", "sec"]);
    assert!(s.delete_spec(SpecTable::Channels, a.id).await.unwrap());
    assert!(!s.delete_spec(SpecTable::Channels, a.id).await.unwrap());
    assert!(
        s.get_spec(SpecTable::Channels, a.id)
            .await
            .unwrap()
            .is_none()
    );

    for (i, kind) in ["alert.opened", "job.failed", "alert.resolved"]
        .iter()
        .enumerate()
    {
        let stored = s
            .insert_activity(&NewActivity {
                at: at(i as i64 * SEC),
                kind: (*kind).into(),
                actor: (i == 2).then(|| "ana".into()),
                summary: format!("{kind} happened"),
                detail: serde_json::json!({"i": i}),
            })
            .await
            .unwrap();
        assert_eq!(stored.kind, *kind);
    }
    let alerts = s
        .query_activities(&ActivityQuery {
            kind_prefix: Some("alert.".into()),
            limit: 10,
            ..ActivityQuery::default()
        })
        .await
        .unwrap();
    let kinds: Vec<&str> = alerts.items.iter().map(|a| a.kind.as_str()).collect();
    assert_eq!(kinds, ["alert.resolved", "alert.opened"]);
    assert_eq!(alerts.items[0].actor.as_deref(), Some("ana"));
    assert_eq!(alerts.items[0].detail, serde_json::json!({"i": 2}));
    let page = s
        .query_activities(&ActivityQuery {
            limit: 2,
            ..ActivityQuery::default()
        })
        .await
        .unwrap();
    let rest = s
        .query_activities(&ActivityQuery {
            limit: 2,
            cursor: Cursor::decode(page.next_cursor.as_deref().unwrap()),
            ..ActivityQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert_eq!(rest.items[0].kind, "alert.opened");
}

async fn retention_removes_closed_alerts_finished_deliveries_and_old_activities(db: Db) {
    let s = &db.store;
    let mut ids = Vec::new();
    for (n, key) in ["resolved", "dismissed", "active", "recent"]
        .iter()
        .enumerate()
    {
        let c = s
            .record_alert_hits(&[hit(key, 0, &[n as i64 + 1])])
            .await
            .unwrap();
        ids.push(c[0].alert.id);
    }
    let close = |to, when| transition(to, when, None);
    for (id, t) in [
        (ids[0], close(AlertState::Resolved, MIN)),
        (ids[1], close(AlertState::Dismissed, 2 * MIN)),
        (ids[3], close(AlertState::Resolved, 100 * MIN)),
    ] {
        assert!(matches!(
            s.transition_alert(id, &t).await.unwrap(),
            TransitionOutcome::Done(_)
        ));
    }
    let mut queued = Vec::new();
    for (n, when) in [0, 0, 0, 100 * MIN].iter().enumerate() {
        queued.push(
            s.enqueue_delivery(&delivery(7, &format!("r{n}")), at(*when))
                .await
                .unwrap(),
        );
    }
    let finished = |state| DeliveryUpdate {
        state,
        next_at: at(MIN),
        at: at(MIN),
        status: Some(200),
        error: None,
    };
    s.finish_delivery(queued[0], &finished(DeliveryState::Delivered))
        .await
        .unwrap();
    s.finish_delivery(queued[1], &finished(DeliveryState::Failed))
        .await
        .unwrap();
    s.finish_delivery(queued[3], &finished(DeliveryState::Delivered))
        .await
        .unwrap();
    for when in [0, 100 * MIN] {
        s.insert_activity(&NewActivity {
            at: at(when),
            kind: "alert.opened".into(),
            actor: None,
            summary: "x".into(),
            detail: serde_json::json!({}),
        })
        .await
        .unwrap();
    }

    let cut = at(50 * MIN);
    // Closed before the cut: gone with their threat links and history, one per batch.
    assert_eq!(
        s.delete_older_than(DataKind::Alerts, cut, 1).await.unwrap(),
        1
    );
    assert_eq!(
        s.delete_older_than(DataKind::Alerts, cut, 10)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.delete_older_than(DataKind::Alerts, cut, 10)
            .await
            .unwrap(),
        0
    );
    for gone in &ids[..2] {
        assert!(s.get_alert(*gone).await.unwrap().is_none());
        assert!(s.alert_history(*gone).await.unwrap().is_empty());
        assert!(s.alert_threat_ids(*gone, 10).await.unwrap().is_empty());
    }
    // Open (however old) and recently closed alerts stay.
    for kept in [ids[2], ids[3]] {
        assert!(s.get_alert(kept).await.unwrap().is_some());
        assert!(!s.alert_history(kept).await.unwrap().is_empty());
    }
    // Delivered and given-up notifications before the cut go; a pending one stays.
    assert_eq!(
        s.delete_older_than(DataKind::AlertDeliveries, cut, 10)
            .await
            .unwrap(),
        2
    );
    assert!(s.get_delivery(queued[0]).await.unwrap().is_none());
    assert!(s.get_delivery(queued[1]).await.unwrap().is_none());
    assert!(s.get_delivery(queued[2]).await.unwrap().is_some());
    assert!(s.get_delivery(queued[3]).await.unwrap().is_some());
    assert_eq!(
        s.delete_older_than(DataKind::Activities, cut, 10)
            .await
            .unwrap(),
        1
    );
    let left = s
        .query_activities(&ActivityQuery {
            limit: 10,
            ..ActivityQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(left.items.len(), 1);
    assert_eq!(left.items[0].at, at(100 * MIN));
}
