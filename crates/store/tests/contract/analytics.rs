//! The analytics contract: roll-ups by id watermark, exact counts over any period
//! (compared with what the fixture holds), chart series, top keys and live deltas.

use std::time::Duration;

use palisade_core::threat::Threat;
use palisade_core::verdict::Action;
use palisade_core::{Event, EventKind, Timestamp};
use palisade_store::{
    Count, CountQuery, Dim, DimFilter, RollupDelta, RollupRetention, Series, SeriesQuery,
    SharedStore, TopDimension, TopQuery, Width,
};

use crate::harness::{Db, contract, write};

contract!(
    counts_match_the_rows_over_any_period,
    late_rows_and_rows_past_the_watermark_count_once,
    retention_deletes_never_inflate_counts,
    threats_and_their_rules_roll_up,
    series_come_from_rollups_and_pending_rows,
    top_keys_use_closed_hours_and_rows,
    concurrent_rollups_add_each_row_once,
    live_deltas_add_up_and_are_pruned,
    series_older_than_the_kept_buckets_come_from_rows,
);

const S: i64 = 1_000_000;
const M: i64 = 60 * S;
const H: i64 = 60 * M;
/// An hour boundary (2023-11-14T22:00:00Z).
const BASE: i64 = 1_699_999_200 * S;

/// An HTTP event `at` µs after BASE.
fn http(at: i64, status: Option<u16>, ip: &str, path: &str) -> Event {
    Event {
        ts: Timestamp(BASE + at),
        kind: EventKind::Http,
        source: "web".into(),
        client_ip: Some(ip.parse().unwrap()),
        method: Some("GET".into()),
        path: Some(path.into()),
        status,
        ..Event::default()
    }
}

fn auth(at: i64) -> Event {
    Event {
        ts: Timestamp(BASE + at),
        kind: EventKind::Auth,
        source: "sshd".into(),
        ..Event::default()
    }
}

/// A spread of events over three hours: unaligned times, several statuses, an auth
/// event, events without a status.
fn fixture() -> Vec<Event> {
    let mut out = Vec::new();
    for i in 0..180i64 {
        let at = i * M + (i % 7) * 7 * S + 13;
        let status = match i % 5 {
            0 => Some(200),
            1 => Some(404),
            2 => Some(503),
            3 => None,
            _ => Some(200),
        };
        let ip = format!("10.0.0.{}", i % 4);
        out.push(http(at, status, &ip, &format!("/p{}", i % 3)));
        if i % 10 == 0 {
            out.push(auth(at + 30 * S));
        }
    }
    out
}

/// What a brute-force count over `fixture()` gives for `[from, to)` (µs after BASE).
fn expected(events: &[Event], from: i64, to: i64, keep: impl Fn(&Event) -> bool) -> u64 {
    events
        .iter()
        .filter(|e| e.ts.as_micros() >= BASE + from && e.ts.as_micros() < BASE + to && keep(e))
        .count() as u64
}

fn total(counts: &[Count]) -> u64 {
    counts.iter().map(|c| c.count).sum()
}

async fn count(
    s: &SharedStore,
    series: Series,
    from: i64,
    to: i64,
    filters: Vec<DimFilter>,
    group: Option<Dim>,
) -> Vec<Count> {
    s.count_exact(&CountQuery {
        series,
        from: Timestamp(BASE + from),
        to: Timestamp(BASE + to),
        filters,
        group,
        limit: None,
        offset: 0,
    })
    .await
    .unwrap()
}

async fn roll_all(s: &SharedStore) {
    for _ in 0..100 {
        if !s.roll_up(50, Timestamp::now()).await.unwrap().more {
            return;
        }
    }
    panic!("the roll-up never caught up");
}

/// Periods with every kind of edge: part-minutes, whole minutes, whole hours.
const PERIODS: &[(i64, i64)] = &[
    (0, 3 * H),
    (13, 3 * H - 1),
    (30 * S, 2 * H + 17 * M + 5 * S),
    (H, 2 * H),
    (59 * M + 59 * S, H + S),
    (-H, 5 * H),
    (2 * H + 3 * M, 2 * H + 3 * M + 1),
];

async fn counts_match_the_rows_over_any_period(db: Db) {
    let s = &db.store;
    let events = fixture();
    write(s, events.clone()).await;
    roll_all(s).await;
    for &(from, to) in PERIODS {
        let all = count(s, Series::Events, from, to, vec![], None).await;
        assert_eq!(
            total(&all),
            expected(&events, from, to, |_| true),
            "{from}..{to}"
        );
        let by_class = count(
            s,
            Series::Events,
            from,
            to,
            vec![DimFilter::one_of(Dim::D1, &["http"])],
            Some(Dim::D3),
        )
        .await;
        for (class, lo) in [("2xx", 200), ("4xx", 400), ("5xx", 500)] {
            let got = by_class
                .iter()
                .find(|c| c.key == class)
                .map_or(0, |c| c.count);
            let want = expected(&events, from, to, |e| {
                e.status.is_some_and(|st| (lo..lo + 100).contains(&st))
            });
            assert_eq!(got, want, "{class} in {from}..{to}");
        }
        let no_status = by_class
            .iter()
            .find(|c| c.key.is_empty())
            .map_or(0, |c| c.count);
        assert_eq!(
            no_status,
            expected(&events, from, to, |e| e.kind == EventKind::Http
                && e.status.is_none())
        );
        // Grouped results come most first.
        assert!(by_class.windows(2).all(|w| w[0].count >= w[1].count));
    }
    // By status code, filtered to errors, limited.
    let errors = s
        .count_exact(&CountQuery {
            series: Series::Events,
            from: Timestamp(BASE),
            to: Timestamp(BASE + 3 * H),
            filters: vec![DimFilter::one_of(Dim::D3, &["4xx", "5xx"])],
            group: Some(Dim::D2),
            limit: Some(1),
            offset: 1,
        })
        .await
        .unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].key, "503");
    assert_eq!(errors[0].count, 36);
}

async fn late_rows_and_rows_past_the_watermark_count_once(db: Db) {
    let s = &db.store;
    let mut events = fixture();
    write(s, events.clone()).await;
    roll_all(s).await;
    // Not rolled up yet: counted from the rows past the watermark.
    let late = vec![
        http(5 * M + 1, Some(200), "10.9.9.9", "/late"),
        http(2 * H, Some(404), "10.9.9.9", "/late"),
    ];
    write(s, late.clone()).await;
    events.extend(late);
    for &(from, to) in PERIODS {
        let got = total(&count(s, Series::Events, from, to, vec![], None).await);
        assert_eq!(
            got,
            expected(&events, from, to, |_| true),
            "pending {from}..{to}"
        );
    }
    // Rolled up: the same numbers, each row once.
    roll_all(s).await;
    for &(from, to) in PERIODS {
        let got = total(&count(s, Series::Events, from, to, vec![], None).await);
        assert_eq!(
            got,
            expected(&events, from, to, |_| true),
            "rolled {from}..{to}"
        );
    }
    let status = s.rollup_status().await.unwrap();
    assert!(status.events_id >= events.len() as i64);
    // Rolling up again adds nothing.
    let again = s.roll_up(1000, Timestamp::now()).await.unwrap();
    assert_eq!((again.events, again.more), (0, false));
}

async fn retention_deletes_never_inflate_counts(db: Db) {
    let s = &db.store;
    let events = fixture();
    write(s, events.clone()).await;
    roll_all(s).await;
    // Retention deletes by time, oldest first, in the middle of a minute.
    let cut = H + 10 * M + 20 * S;
    db.exec_raw(&format!("DELETE FROM events WHERE ts < {}", BASE + cut))
        .await;
    let kept: Vec<Event> = events
        .iter()
        .filter(|e| e.ts.as_micros() >= BASE + cut)
        .cloned()
        .collect();
    for &(from, to) in PERIODS {
        let got = total(&count(s, Series::Events, from, to, vec![], None).await);
        assert_eq!(
            got,
            expected(&kept, from, to, |_| true),
            "after delete {from}..{to}"
        );
    }
    // The next pass notes the deletion; still exact.
    roll_all(s).await;
    for &(from, to) in PERIODS {
        let got = total(&count(s, Series::Events, from, to, vec![], None).await);
        assert_eq!(
            got,
            expected(&kept, from, to, |_| true),
            "after pass {from}..{to}"
        );
    }
    // An older log imported afterwards is counted too.
    let old = vec![http(-30 * M, Some(200), "10.1.1.1", "/old")];
    write(s, old.clone()).await;
    roll_all(s).await;
    let mut now_stored = kept.clone();
    now_stored.extend(old);
    for &(from, to) in PERIODS {
        let got = total(&count(s, Series::Events, from, to, vec![], None).await);
        assert_eq!(
            got,
            expected(&now_stored, from, to, |_| true),
            "old import {from}..{to}"
        );
    }
    // Everything deleted: nothing counted.
    db.exec_raw("DELETE FROM events").await;
    assert_eq!(
        total(&count(s, Series::Events, -H, 5 * H, vec![], None).await),
        0
    );
    roll_all(s).await;
    assert_eq!(
        total(&count(s, Series::Events, -H, 5 * H, vec![], None).await),
        0
    );
}

fn threat(at: i64, category: &str, severity: &str, decision: Action, rules: &[u32]) -> Threat {
    Threat {
        tags: Vec::new(),
        ts: Timestamp(BASE + at),
        category: category.into(),
        severity: severity.parse().unwrap(),
        score: 5,
        rule_ids: rules.to_vec(),
        client_ip: Some("10.0.0.1".parse().unwrap()),
        method: Some("GET".into()),
        uri: Some("/".into()),
        source: "check".into(),
        event_id: None,
        decision,
        evidence: Vec::new(),
    }
}

async fn threats_and_their_rules_roll_up(db: Db) {
    let s = &db.store;
    let threats = [
        threat(10 * S, "sqli", "critical", Action::Block, &[942100, 942200]),
        threat(M + 5, "sqli", "error", Action::Detect, &[942100]),
        threat(
            H + 7 * M,
            "xss",
            "warning",
            Action::Ban,
            &[941100, u32::MAX],
        ),
        threat(2 * H + 1, "lfi", "critical", Action::Allow, &[930100]),
    ];
    s.insert_threats(&threats[..2]).await.unwrap();
    roll_all(s).await;
    s.insert_threats(&threats[2..]).await.unwrap();
    let cats = count(s, Series::Threats, 0, 3 * H, vec![], Some(Dim::D1)).await;
    assert_eq!(
        cats,
        vec![
            Count {
                key: "sqli".into(),
                count: 2
            },
            Count {
                key: "lfi".into(),
                count: 1
            },
            Count {
                key: "xss".into(),
                count: 1
            },
        ]
    );
    roll_all(s).await;
    let blocked = count(
        s,
        Series::Threats,
        5 * S,
        3 * H,
        vec![DimFilter::one_of(Dim::D3, &["block", "ban"])],
        None,
    )
    .await;
    assert_eq!(total(&blocked), 2);
    let severe = count(s, Series::Threats, 0, 3 * H, vec![], Some(Dim::D2)).await;
    assert_eq!(
        severe[0],
        Count {
            key: "critical".into(),
            count: 2
        }
    );
    let rules = count(s, Series::Rules, 0, 3 * H, vec![], Some(Dim::D1)).await;
    assert_eq!(
        rules[0],
        Count {
            key: "942100".into(),
            count: 2
        }
    );
    assert!(
        rules.contains(&Count {
            key: u32::MAX.to_string(),
            count: 1
        }),
        "{rules:?}"
    );
    assert_eq!(total(&rules), 6);
    // A later period sees only its part.
    let late = count(s, Series::Rules, H, 3 * H, vec![], None).await;
    assert_eq!(total(&late), 3);
}

async fn series_come_from_rollups_and_pending_rows(db: Db) {
    let s = &db.store;
    let events = fixture();
    write(s, events[..100].to_vec()).await;
    roll_all(s).await;
    write(s, events[100..].to_vec()).await;
    let hourly = s
        .rollup_series(&SeriesQuery {
            series: Series::Events,
            width: Width::Hour,
            from: Timestamp(BASE + 5),
            to: Timestamp(BASE + 3 * H),
            filters: vec![],
            group: Some(Dim::D1),
        })
        .await
        .unwrap();
    for h in 0..3 {
        for kind in ["http", "auth"] {
            let got = hourly
                .iter()
                .find(|p| p.bucket == Timestamp(BASE + h * H) && p.key == kind)
                .map_or(0, |p| p.value);
            let want = expected(&events, h * H, (h + 1) * H, |e| e.kind.as_str() == kind);
            assert_eq!(got, want, "hour {h} {kind}");
        }
    }
    assert!(hourly.windows(2).all(|w| w[0].bucket <= w[1].bucket));
    let minutes = s
        .rollup_series(&SeriesQuery {
            series: Series::Events,
            width: Width::Minute,
            from: Timestamp(BASE + H),
            to: Timestamp(BASE + H + 10 * M),
            filters: vec![DimFilter::one_of(Dim::D3, &["5xx"])],
            group: None,
        })
        .await
        .unwrap();
    let sum: u64 = minutes.iter().map(|p| p.value).sum();
    assert_eq!(
        sum,
        expected(&events, H, H + 10 * M, |e| e.status == Some(503))
    );
    assert!(minutes.iter().all(|p| p.key.is_empty()));
}

async fn top_keys_use_closed_hours_and_rows(db: Db) {
    let s = &db.store;
    let events = fixture();
    write(s, events.clone()).await;
    roll_all(s).await;
    // Long after: every hour of the fixture is closed.
    let later = Timestamp(BASE + 10 * H);
    let done = s
        .refresh_top(later, Duration::from_secs(60), 2, 100)
        .await
        .unwrap();
    assert_eq!(done, 3);
    // One more row in hour 1 after its list was made: that hour is counted from rows.
    let extra = http(H + 30 * M, Some(200), "10.0.0.3", "/p0");
    write(s, vec![extra.clone()]).await;
    let mut all = events.clone();
    all.push(extra);
    let page = s
        .top_keys(&TopQuery {
            dimension: TopDimension::ClientIp,
            from: Timestamp(BASE + 7),
            to: Timestamp(BASE + 3 * H),
            limit: 10,
            offset: 0,
        })
        .await
        .unwrap();
    // Four addresses, but lists keep two per hour: the hours read from the lists are
    // cut, and said so.
    assert!(page.truncated_hours > 0, "{page:?}");
    // With every key kept, the counts are exact: hours 0 and 2 marked for a refresh by
    // hand, hour 1 by the roll-up of the extra row.
    db.exec_raw(&format!(
        "INSERT INTO analytics_dirty_hours (hour, touched_at) VALUES ({}, 0), ({}, 0)",
        BASE,
        BASE + 2 * H
    ))
    .await;
    roll_all(s).await;
    let expected_ip = |ip: &str| {
        expected(&all, 7, 3 * H, |e| {
            e.client_ip.map(|a| a.to_string()).as_deref() == Some(ip)
        })
    };
    s.refresh_top(later, Duration::from_secs(60), 100, 100)
        .await
        .unwrap();
    let page = s
        .top_keys(&TopQuery {
            dimension: TopDimension::ClientIp,
            from: Timestamp(BASE + 7),
            to: Timestamp(BASE + 3 * H),
            limit: 2,
            offset: 0,
        })
        .await
        .unwrap();
    assert_eq!(page.truncated_hours, 0);
    assert!(page.more);
    assert_eq!(page.items.len(), 2);
    for item in &page.items {
        assert_eq!(item.count, expected_ip(&item.key), "{}", item.key);
    }
    let rest = s
        .top_keys(&TopQuery {
            dimension: TopDimension::ClientIp,
            from: Timestamp(BASE + 7),
            to: Timestamp(BASE + 3 * H),
            limit: 10,
            offset: 2,
        })
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 2);
    assert!(!rest.more);
    for item in &rest.items {
        assert_eq!(item.count, expected_ip(&item.key), "{}", item.key);
    }
    assert!(page.items[1].count >= rest.items[0].count);
    // Paths of HTTP events.
    let paths = s
        .top_keys(&TopQuery {
            dimension: TopDimension::Path,
            from: Timestamp(BASE),
            to: Timestamp(BASE + 3 * H),
            limit: 10,
            offset: 0,
        })
        .await
        .unwrap();
    assert_eq!(paths.items.len(), 3);
    let p0 = expected(&all, 0, 3 * H, |e| e.path.as_deref() == Some("/p0"));
    assert_eq!(
        paths.items[0],
        Count {
            key: "/p0".into(),
            count: p0
        }
    );
}

async fn concurrent_rollups_add_each_row_once(db: Db) {
    let s = db.store.clone();
    let events = fixture();
    let writer = {
        let s = s.clone();
        let events = events.clone();
        tokio::spawn(async move {
            for chunk in events.chunks(7) {
                write(&s, chunk.to_vec()).await;
            }
        })
    };
    let rollers: Vec<_> = (0..3)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                for _ in 0..40 {
                    s.roll_up(5, Timestamp::now()).await.unwrap();
                }
            })
        })
        .collect();
    writer.await.unwrap();
    for r in rollers {
        r.await.unwrap();
    }
    roll_all(&s).await;
    // Whole hours come from the hour buckets only: each row there once.
    for &(from, to) in PERIODS {
        let got = total(&count(&s, Series::Events, from, to, vec![], None).await);
        assert_eq!(got, expected(&events, from, to, |_| true), "{from}..{to}");
    }
}

async fn live_deltas_add_up_and_are_pruned(db: Db) {
    let s = &db.store;
    let d = |outcome: &str, value| RollupDelta {
        series: Series::Requests,
        dims: ["check".into(), String::new(), outcome.into()],
        value,
    };
    let at = Timestamp(BASE + 2 * H + 5 * M + 3);
    s.add_rollups(at, &[d("allow", 10), d("block", 2), d("ban", 0)])
        .await
        .unwrap();
    s.add_rollups(at, &[d("allow", 5)]).await.unwrap();
    s.add_rollups(Timestamp(BASE + 2 * H + 6 * M), &[d("block", 1)])
        .await
        .unwrap();
    let by_outcome = count(s, Series::Requests, 2 * H, 3 * H, vec![], Some(Dim::D3)).await;
    assert_eq!(
        by_outcome,
        vec![
            Count {
                key: "allow".into(),
                count: 15
            },
            Count {
                key: "block".into(),
                count: 3
            },
        ]
    );
    let hourly = s
        .rollup_series(&SeriesQuery {
            series: Series::Requests,
            width: Width::Hour,
            from: Timestamp(BASE),
            to: Timestamp(BASE + 3 * H),
            filters: vec![DimFilter::one_of(Dim::D3, &["block", "ban"])],
            group: None,
        })
        .await
        .unwrap();
    assert_eq!(hourly.len(), 1);
    assert_eq!(
        (hourly[0].bucket, hourly[0].value),
        (Timestamp(BASE + 2 * H), 3)
    );
    // Minute buckets before 2h06 go; hour buckets stay.
    let n = s
        .prune_rollups(RollupRetention {
            minutes_from: Timestamp(BASE + 2 * H + 6 * M),
            hours_from: Timestamp(BASE),
        })
        .await
        .unwrap();
    assert!(n >= 2, "{n}");
    let minutes = s
        .rollup_series(&SeriesQuery {
            series: Series::Requests,
            width: Width::Minute,
            from: Timestamp(BASE),
            to: Timestamp(BASE + 3 * H),
            filters: vec![],
            group: None,
        })
        .await
        .unwrap();
    assert_eq!(minutes.len(), 1);
    assert_eq!(minutes[0].value, 1);
    // Stored series stay exact after their minute buckets are pruned (rows instead).
    let events = fixture();
    write(s, events.clone()).await;
    roll_all(s).await;
    s.prune_rollups(RollupRetention {
        minutes_from: Timestamp(BASE + 3 * H),
        hours_from: Timestamp(BASE + H),
    })
    .await
    .unwrap();
    for &(from, to) in PERIODS {
        let got = total(&count(s, Series::Events, from, to, vec![], None).await);
        assert_eq!(
            got,
            expected(&events, from, to, |_| true),
            "pruned {from}..{to}"
        );
    }
}

/// Charts of a period older than the roll-ups kept (an imported old log) are drawn from
/// the rows, and equal the rows; buckets still kept come from the roll-ups, never both.
async fn series_older_than_the_kept_buckets_come_from_rows(db: Db) {
    let s = &db.store;
    let events = fixture();
    write(s, events.clone()).await;
    roll_all(s).await;
    let hourly = |filters: Vec<DimFilter>| async move {
        s.rollup_series(&SeriesQuery {
            series: Series::Events,
            width: Width::Hour,
            from: Timestamp(BASE),
            to: Timestamp(BASE + 3 * H),
            filters,
            group: None,
        })
        .await
        .unwrap()
    };
    let check = |points: Vec<palisade_store::SeriesPoint>, what: &str| {
        for h in 0..3 {
            let got = points
                .iter()
                .filter(|p| p.bucket == Timestamp(BASE + h * H))
                .map(|p| p.value)
                .sum::<u64>();
            assert_eq!(
                got,
                expected(&events, h * H, (h + 1) * H, |_| true),
                "{what}: hour {h}"
            );
        }
    };
    check(hourly(vec![]).await, "all kept");
    // The first hour's buckets go: it is counted from the rows, the others from the
    // roll-ups.
    s.prune_rollups(RollupRetention {
        minutes_from: Timestamp(BASE + 3 * H),
        hours_from: Timestamp(BASE + H),
    })
    .await
    .unwrap();
    check(hourly(vec![]).await, "first hour pruned");
    // Everything goes.
    s.prune_rollups(RollupRetention {
        minutes_from: Timestamp(BASE + 4 * H),
        hours_from: Timestamp(BASE + 4 * H),
    })
    .await
    .unwrap();
    check(hourly(vec![]).await, "all pruned");
    let minutes = s
        .rollup_series(&SeriesQuery {
            series: Series::Events,
            width: Width::Minute,
            from: Timestamp(BASE + H),
            to: Timestamp(BASE + H + 10 * M),
            filters: vec![DimFilter::one_of(Dim::D3, &["5xx"])],
            group: None,
        })
        .await
        .unwrap();
    let sum: u64 = minutes.iter().map(|p| p.value).sum();
    assert_eq!(
        sum,
        expected(&events, H, H + 10 * M, |e| e.status == Some(503))
    );
}
