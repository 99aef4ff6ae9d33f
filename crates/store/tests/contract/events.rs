//! Events: every field round-trips, every filter of the API, keyset pagination and
//! page-size limits.

use std::net::IpAddr;

use palisade_core::{Event, EventKind, Timestamp};
use palisade_store::{Cursor, EventQuery, IngestBatch, SharedStore, StatusFilter};

use crate::harness::{Db, T0, contract, ev, every_page, net, write};

contract!(
    round_trips_every_field,
    filters_time_range,
    filters_client_network,
    a_network_reads_its_rows_in_time_order,
    a_time_walk_reads_the_table_highest_id_first,
    filters_method_status_host_source_kind,
    filters_path_prefix,
    path_prefix_with_any_method_and_status,
    filters_text_search,
    combined_filters,
    pagination_walks_every_row_once,
    limit_boundaries,
);

fn http(ts: i64, ip: &str, method: &str, path: &str, status: u16) -> Event {
    Event {
        client_ip: Some(ip.parse().unwrap()),
        method: Some(method.into()),
        path: Some(path.into()),
        status: Some(status),
        host: Some("example.org".into()),
        ..ev(ts)
    }
}

/// Every matching event (walking all pages), as offsets from T0, newest first.
async fn matching(store: &SharedStore, q: EventQuery) -> Vec<i64> {
    let mut q = EventQuery { limit: 7, ..q };
    let mut out = Vec::new();
    loop {
        let page = store.query_events(&q).await.unwrap();
        out.extend(page.items.iter().map(|e| e.event.ts.as_micros() - T0));
        match page.next_cursor {
            Some(c) => q.cursor = Some(Cursor::decode(&c).unwrap()),
            None => return out,
        }
    }
}

async fn round_trips_every_field(db: Db) {
    let s = &db.store;
    let full = Event {
        ts: Timestamp(T0 + 123_456),
        kind: EventKind::ErrorLog,
        source: "nginx-error".into(),
        client_ip: Some("2001:db8::1:2".parse().unwrap()),
        host: Some("Host.Example".into()),
        method: Some("PROPFIND".into()),
        path: Some("/caf\u{e9}/a%20b".into()),
        query: Some("x=1&y=\u{1f600}".into()),
        protocol: Some("HTTP/2.0".into()),
        status: Some(65535),
        bytes: Some(u64::from(u32::MAX) * 4),
        referer: Some("https://ref.example/".into()),
        user_agent: Some("curl/8.0".into()),
        user: Some("alice".into()),
        duration_us: Some(1_234_567),
        message: Some("line one\nline \"two\"\t\\".into()),
        verdict: Some(palisade_core::verdict::Action::Block),
        extra: vec![
            ("upstream".into(), "10.0.0.1:80".into()),
            ("empty".into(), String::new()),
            ("upstream".into(), "dup key kept".into()),
        ],
    };
    let minimal = Event {
        ts: Timestamp(-5),
        kind: EventKind::Syslog,
        source: "syslog".into(),
        ..Event::default()
    };
    let v4 = Event {
        client_ip: Some("192.0.2.7".parse().unwrap()),
        kind: EventKind::Auth,
        ..ev(2)
    };
    let with_nul = Event {
        message: Some("a\0b".into()),
        ..ev(3)
    };
    let before = Timestamp::now();
    let out = s
        .write_batch(IngestBatch {
            events: vec![full.clone(), minimal.clone(), v4.clone(), with_nul],
            ..IngestBatch::default()
        })
        .await
        .unwrap();
    let after = Timestamp::now();
    assert_eq!((out.events, out.dead_letters, out.duplicate), (4, 0, false));
    assert_eq!(s.count_events().await.unwrap(), 4);

    let page = s
        .query_events(&EventQuery {
            limit: 10,
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.items.len(), 4);
    assert_eq!(page.next_cursor, None);
    let got: Vec<&Event> = page.items.iter().map(|e| &e.event).collect();
    // Newest first: full (T0+123456), nul (T0+3), v4 (T0+2), minimal (-5).
    assert_eq!(got[0], &full);
    assert_eq!(got[2], &v4);
    assert_eq!(got[3], &minimal);
    assert_eq!(got[1].message.as_deref(), Some("a\u{fffd}b"));
    for item in &page.items {
        assert!(before <= item.received_at && item.received_at <= after);
        let one = s.get_event(item.id).await.unwrap().unwrap();
        assert_eq!(&one, item);
    }
    let max_id = page.items.iter().map(|e| e.id).max().unwrap();
    assert_eq!(s.get_event(max_id + 1000).await.unwrap(), None);
    assert_eq!(s.get_event(-1).await.unwrap(), None);
}

async fn filters_time_range(db: Db) {
    let s = &db.store;
    write(s, (0..10).map(|i| ev(i * 10)).collect()).await;
    let q = |from: Option<i64>, to: Option<i64>| EventQuery {
        from: from.map(|f| Timestamp(T0 + f)),
        to: to.map(|t| Timestamp(T0 + t)),
        ..EventQuery::default()
    };
    assert_eq!(matching(s, q(Some(20), Some(50))).await, vec![40, 30, 20]);
    assert_eq!(matching(s, q(Some(85), None)).await, vec![90]);
    assert_eq!(matching(s, q(None, Some(10))).await, vec![0]);
    assert_eq!(matching(s, q(Some(50), Some(50))).await, Vec::<i64>::new());
    assert_eq!(matching(s, q(None, None)).await.len(), 10);
}

async fn filters_client_network(db: Db) {
    let s = &db.store;
    write(
        s,
        vec![
            http(1, "10.1.2.3", "GET", "/", 200),
            http(2, "10.1.2.255", "GET", "/", 200),
            http(3, "10.1.3.0", "GET", "/", 200),
            http(4, "2001:db8::1", "GET", "/", 200),
            http(5, "2001:db8:ffff::9", "GET", "/", 200),
            http(6, "2001:db9::1", "GET", "/", 200),
            http(7, "::a01:203", "GET", "/", 200), // v6 sharing 10.1.2.3's low bits
            ev(8),                                 // no address at all
        ],
    )
    .await;
    let q = |n: &str| EventQuery {
        client: net(n),
        ..EventQuery::default()
    };
    assert_eq!(matching(s, q("10.1.2.0/24")).await, vec![2, 1]);
    assert_eq!(matching(s, q("10.0.0.0/8")).await, vec![3, 2, 1]);
    assert_eq!(matching(s, q("10.1.2.3")).await, vec![1]);
    assert_eq!(matching(s, q("2001:db8::/32")).await, vec![5, 4]);
    assert_eq!(matching(s, q("2001:db8::1")).await, vec![4]);
    assert_eq!(matching(s, q("0.0.0.0/0")).await, vec![3, 2, 1]);
    assert_eq!(matching(s, q("::/0")).await, vec![7, 6, 5, 4, 3, 2, 1]);
    let ip: IpAddr = "10.1.2.3".parse().unwrap();
    let page = s.query_events(&q("10.1.2.3/32")).await;
    assert_eq!(page.unwrap().items[0].event.client_ip, Some(ip));
}

/// A network of many rows (more than the SQLite store fetches at once when the network
/// drives: it sorts the network's ids by time, then reads the rows a slice at a time),
/// written out of time order, with equal timestamps and filters matching two rows in
/// three: every page is what a full sort gives, whatever the page size (from 300 on,
/// the network is a quarter of the rows and drives in SQLite; below, a walk does).
async fn a_network_reads_its_rows_in_time_order(db: Db) {
    let s = &db.store;
    let mut events = Vec::new();
    let mut expected = Vec::new();
    for i in 0..1_200_i64 {
        // Ids rise while times go back and forth; every time occurs twice.
        let ts = (i * 7_919) % 600;
        let status = if i % 3 == 0 { 404 } else { 200 };
        let ip = format!("10.9.{}.{}", (i / 250) % 2, i % 250);
        events.push(http(ts, &ip, "GET", "/n", status));
        if status == 200 {
            expected.push((ts, i));
        }
        // Outside the network, matching every other filter.
        for k in 0..3 {
            events.push(http(ts, &format!("10.8.0.{k}"), "GET", "/n", 200));
        }
    }
    // One row of the network with another method: filtered out.
    events.push(http(5, "10.9.0.3", "POST", "/n", 200));
    write(s, events).await;
    // Newest first, the later-written (higher id) first among equal times.
    expected.sort_by(|a, b| b.cmp(a));
    let want: Vec<i64> = expected.iter().map(|(ts, _)| *ts).collect();
    for limit in [1, 7, 100, 300, 400, 1_000] {
        let q = EventQuery {
            client: net("10.9.0.0/23"),
            status: Some(StatusFilter::Exact(200)),
            method: Some("GET".into()),
            limit,
            ..EventQuery::default()
        };
        let got = every_page(s, &q, limit).await;
        let times: Vec<i64> = got.iter().map(|(ts, _)| *ts).collect();
        assert_eq!(times, want, "limit {limit}");
        // Strictly newest first: equal times in falling id order, no row twice.
        assert!(got.windows(2).all(|w| w[0] > w[1]), "limit {limit}");
    }
}

/// A query that walks the time index newest first with no window and no cursor: the
/// SQLite store reads the table highest id first and proves the page on the time index
/// (the ids follow the time), or walks the index when they do not. Events written in
/// time order, then a backfill of older ones, then late ones among the first ones'
/// times (equal times too); 3xx only in the first part (the proof passes), 4xx in all
/// three (it fails): every first page and every page after it is what a full sort
/// gives, whatever the page size.
async fn a_time_walk_reads_the_table_highest_id_first(db: Db) {
    let s = &db.store;
    let mut events = Vec::new();
    // (ts, written at, status)
    let mut rows = Vec::new();
    let mut push = |events: &mut Vec<Event>, ts: i64, status: u16| {
        rows.push((ts, events.len(), status));
        events.push(http(ts, "10.7.0.1", "GET", "/w", status));
    };
    for i in 0..1_500_i64 {
        let status = match i {
            _ if i % 10 == 5 => 302,
            _ if i % 4 == 0 => 404,
            _ => 200,
        };
        push(&mut events, 10_000 + i, status);
    }
    for i in 0..800_i64 {
        push(
            &mut events,
            (i * 3) % 2_000,
            if i % 3 == 0 { 404 } else { 200 },
        );
    }
    for i in 0..600_i64 {
        push(
            &mut events,
            10_000 + (i * 7) % 1_500,
            if i % 2 == 0 { 500 } else { 404 },
        );
    }
    write(s, events).await;
    for (class, code) in [(4, 404), (5, 500), (2, 200), (3, 302)] {
        let mut want: Vec<(i64, usize)> = rows
            .iter()
            .filter(|(_, _, status)| *status == code)
            .map(|(ts, at, _)| (*ts, *at))
            .collect();
        // Newest first, the later-written (higher id) first among equal times.
        want.sort_by(|a, b| b.cmp(a));
        let want: Vec<i64> = want.iter().map(|(ts, _)| *ts).collect();
        for limit in [1, 7, 100, 300, 1_000] {
            let q = EventQuery {
                status: StatusFilter::parse(&format!("{class}xx")),
                limit,
                ..EventQuery::default()
            };
            let got = every_page(s, &q, limit).await;
            let times: Vec<i64> = got.iter().map(|(ts, _)| *ts).collect();
            assert_eq!(times, want, "{class}xx limit {limit}");
            assert!(
                got.windows(2).all(|w| w[0] > w[1]),
                "{class}xx limit {limit}"
            );
        }
    }
}

async fn filters_method_status_host_source_kind(db: Db) {
    let s = &db.store;
    let mut events = vec![
        http(1, "10.0.0.1", "GET", "/a", 200),
        http(2, "10.0.0.1", "get", "/a", 404),
        http(3, "10.0.0.1", "POST", "/a", 499),
        http(4, "10.0.0.1", "GET", "/a", 500),
        http(5, "10.0.0.1", "GET", "/a", 400),
    ];
    events[1].host = Some("other.org".into());
    events[2].source = "push".into();
    events[3].kind = EventKind::Flow;
    events.push(Event {
        kind: EventKind::Auth,
        ..ev(6)
    });
    write(s, events).await;
    let all = EventQuery::default;
    let m = |v: &str| EventQuery {
        method: Some(v.into()),
        ..all()
    };
    assert_eq!(matching(s, m("GET")).await, vec![5, 4, 1]);
    assert_eq!(matching(s, m("get")).await, vec![2]);
    assert_eq!(matching(s, m("DELETE")).await, Vec::<i64>::new());
    let st = |f: &str| EventQuery {
        status: StatusFilter::parse(f),
        ..all()
    };
    assert_eq!(matching(s, st("404")).await, vec![2]);
    assert_eq!(matching(s, st("4xx")).await, vec![5, 3, 2]);
    assert_eq!(matching(s, st("5xx")).await, vec![4]);
    assert_eq!(matching(s, st("2xx")).await, vec![1]);
    assert_eq!(matching(s, st("3xx")).await, Vec::<i64>::new());
    let h = EventQuery {
        host: Some("other.org".into()),
        ..all()
    };
    assert_eq!(matching(s, h).await, vec![2]);
    let h = EventQuery {
        host: Some("EXAMPLE.org".into()),
        ..all()
    };
    assert_eq!(matching(s, h).await, Vec::<i64>::new());
    let src = EventQuery {
        source: Some("push".into()),
        ..all()
    };
    assert_eq!(matching(s, src).await, vec![3]);
    let k = |kind| EventQuery {
        kind: Some(kind),
        ..all()
    };
    assert_eq!(matching(s, k(EventKind::Flow)).await, vec![4]);
    assert_eq!(matching(s, k(EventKind::Auth)).await, vec![6]);
    assert_eq!(matching(s, k(EventKind::Http)).await, vec![5, 3, 2, 1]);
    assert_eq!(matching(s, k(EventKind::Syslog)).await, Vec::<i64>::new());
}

async fn filters_path_prefix(db: Db) {
    let s = &db.store;
    let paths = [
        "/api/users",             // 1
        "/api",                   // 2
        "/apix",                  // 3
        "/ap",                    // 4
        "/p%20x",                 // 5
        "/p%",                    // 6
        "/pa",                    // 7
        "/p_q",                   // 8
        "/pXq",                   // 9
        "/caf\u{e9}/menu",        // 10
        "/cafe/menu",             // 11
        "/caf\u{ea}",             // 12: the byte-wise successor of the prefix below
        "/x\u{10ffff}",           // 13
        "/x\u{10ffff}\u{10ffff}", // 14
        "/y",                     // 15
        "/API/users",             // 16
    ];
    let mut events: Vec<Event> = paths
        .iter()
        .zip(1..)
        .map(|(p, i)| http(i, "10.0.0.1", "GET", p, 200))
        .collect();
    events.push(ev(17)); // no path
    write(s, events).await;
    let p = |prefix: &str| EventQuery {
        path_prefix: Some(prefix.into()),
        ..EventQuery::default()
    };
    assert_eq!(matching(s, p("/api")).await, vec![3, 2, 1]);
    assert_eq!(matching(s, p("/api/")).await, vec![1]);
    assert_eq!(matching(s, p("/API")).await, vec![16]);
    assert_eq!(matching(s, p("/p%")).await, vec![6, 5]);
    assert_eq!(matching(s, p("/p_")).await, vec![8]);
    assert_eq!(matching(s, p("/caf\u{e9}")).await, vec![10]);
    assert_eq!(matching(s, p("/cafe")).await, vec![11]);
    assert_eq!(matching(s, p("/x\u{10ffff}")).await, vec![14, 13]);
    assert_eq!(matching(s, p("/nothing")).await, Vec::<i64>::new());
    assert_eq!(matching(s, p("/")).await.len(), 16);
}

/// A test on a row's method, status and path.
type RowTest = dyn Fn(Option<&str>, Option<u16>, &str) -> bool;

/// A path prefix is answered through the (method, status, path) index, one range per
/// method and status there is: rows without a method or a status, and every method and
/// status, must still be found, alone and with the method and status filters.
async fn path_prefix_with_any_method_and_status(db: Db) {
    let s = &db.store;
    let methods = [Some("GET"), Some("POST"), None, Some("PROPFIND")];
    let statuses = [Some(200), Some(404), None, Some(503), Some(299), Some(400)];
    let paths = ["/shop/a", "/shop/b", "/admin", "/sh"];
    let mut events = Vec::new();
    let mut expected: Vec<(i64, Option<&str>, Option<u16>, &str)> = Vec::new();
    for i in 0..96_i64 {
        let idx = usize::try_from(i).unwrap();
        let method = methods[idx % methods.len()];
        let status = statuses[(idx / 4) % statuses.len()];
        let path = paths[(idx / 3) % paths.len()];
        events.push(Event {
            method: method.map(Into::into),
            status,
            path: Some(path.into()),
            ..ev(i)
        });
        expected.push((i, method, status, path));
    }
    write(s, events).await;
    let want = |f: &RowTest| -> Vec<i64> {
        let mut v: Vec<i64> = expected
            .iter()
            .filter(|(_, m, st, p)| f(*m, *st, p))
            .map(|(i, ..)| *i)
            .collect();
        v.reverse();
        v
    };
    let q = |prefix: &str| EventQuery {
        path_prefix: Some(prefix.into()),
        ..EventQuery::default()
    };
    let shop = want(&|_, _, p| p.starts_with("/shop"));
    assert_eq!(shop.len(), 48);
    assert_eq!(matching(s, q("/shop")).await, shop);
    assert_eq!(
        matching(s, q("/sh")).await,
        want(&|_, _, p| p.starts_with("/sh"))
    );
    assert_eq!(
        matching(
            s,
            EventQuery {
                method: Some("GET".into()),
                ..q("/shop/")
            }
        )
        .await,
        want(&|m, _, p| m == Some("GET") && p.starts_with("/shop/"))
    );
    assert_eq!(
        matching(
            s,
            EventQuery {
                status: Some(StatusFilter::Class(2)),
                ..q("/shop")
            }
        )
        .await,
        want(&|_, st, p| matches!(st, Some(200..=299)) && p.starts_with("/shop"))
    );
    assert_eq!(
        matching(
            s,
            EventQuery {
                status: Some(StatusFilter::Exact(404)),
                method: Some("POST".into()),
                ..q("/")
            }
        )
        .await,
        want(&|m, st, _| m == Some("POST") && st == Some(404))
    );
    // A method no row has, under a prefix most rows have: nothing.
    assert_eq!(
        matching(
            s,
            EventQuery {
                method: Some("GET".into()),
                status: Some(StatusFilter::Class(5)),
                ..q("/admin")
            }
        )
        .await,
        want(&|m, st, p| m == Some("GET") && matches!(st, Some(500..=599)) && p == "/admin")
    );
}

async fn filters_text_search(db: Db) {
    let s = &db.store;
    let mk = |ts: i64, f: &dyn Fn(&mut Event)| {
        let mut e = ev(ts);
        f(&mut e);
        e
    };
    write(
        s,
        vec![
            mk(1, &|e| e.path = Some("/Admin/login".into())),
            mk(2, &|e| e.query = Some("q=ADMIN".into())),
            mk(3, &|e| e.user_agent = Some("sqlmap/1.0 (admin)".into())),
            mk(4, &|e| e.referer = Some("https://x/adMin".into())),
            mk(5, &|e| e.message = Some("admin session opened".into())),
            mk(6, &|e| e.user = Some("sysadmin".into())),
            mk(7, &|e| e.host = Some("admin.example".into())), // host is not searched
            mk(8, &|e| e.message = Some("100% done".into())),
            mk(9, &|e| e.message = Some("100x done".into())),
            mk(10, &|e| e.path = Some("/a_b".into())),
            mk(11, &|e| e.path = Some("/axb".into())),
            mk(12, &|e| e.path = Some("/back\\slash".into())),
            mk(13, &|e| e.source = "admin".into()), // source is not searched
        ],
    )
    .await;
    let t = |text: &str| EventQuery {
        text: Some(text.into()),
        ..EventQuery::default()
    };
    assert_eq!(matching(s, t("admin")).await, vec![6, 5, 4, 3, 2, 1]);
    assert_eq!(matching(s, t("ADMIN")).await, vec![6, 5, 4, 3, 2, 1]);
    assert_eq!(matching(s, t("0% d")).await, vec![8]);
    assert_eq!(matching(s, t("%")).await, vec![8]);
    assert_eq!(matching(s, t("a_b")).await, vec![10]);
    assert_eq!(matching(s, t("_")).await, vec![10]);
    assert_eq!(matching(s, t("k\\s")).await, vec![12]);
    assert_eq!(matching(s, t("no such text")).await, Vec::<i64>::new());
}

async fn combined_filters(db: Db) {
    let s = &db.store;
    let mut events = Vec::new();
    for i in 0..40 {
        let ip = if i % 2 == 0 {
            "10.0.0.1"
        } else {
            "2001:db8::1"
        };
        let method = if i % 3 == 0 { "POST" } else { "GET" };
        let status = if i % 4 == 0 { 404 } else { 200 };
        let path = if i % 5 == 0 {
            "/wp-login.php"
        } else {
            "/index"
        };
        events.push(http(i, ip, method, path, status));
    }
    write(s, events).await;
    let q = EventQuery {
        from: Some(Timestamp(T0 + 5)),
        to: Some(Timestamp(T0 + 35)),
        client: net("10.0.0.0/8"),
        method: Some("POST".into()),
        status: Some(StatusFilter::Class(4)),
        path_prefix: Some("/wp-".into()),
        host: Some("example.org".into()),
        source: Some("web".into()),
        kind: Some(EventKind::Http),
        text: Some("LOGIN".into()),
        ..EventQuery::default()
    };
    // Even, multiple of 3, 4 and 5 → multiples of 60; none in 5..35, so widen.
    assert_eq!(matching(s, q.clone()).await, Vec::<i64>::new());
    let q2 = EventQuery {
        status: None,
        ..q.clone()
    };
    // Even, multiple of 3 and 5 → multiples of 30 in 5..35.
    assert_eq!(matching(s, q2).await, vec![30]);
    let q3 = EventQuery {
        status: None,
        method: None,
        text: None,
        ..q
    };
    assert_eq!(matching(s, q3).await, vec![30, 20, 10]);
}

async fn pagination_walks_every_row_once(db: Db) {
    let s = &db.store;
    // 25 events over 3 timestamps, written in two batches so ids interleave.
    let mk = |i: i64| Event {
        message: Some(format!("n{i}")),
        ..ev((i % 3) * 100)
    };
    write(s, (0..12).map(mk).collect()).await;
    write(s, (12..25).map(mk).collect()).await;
    for limit in [1, 2, 4, 5, 24, 25, 26] {
        let mut q = EventQuery {
            limit,
            ..EventQuery::default()
        };
        let mut seen = Vec::new();
        let mut pages = 0;
        loop {
            let page = s.query_events(&q).await.unwrap();
            pages += 1;
            assert!(page.items.len() <= limit as usize);
            seen.extend(page.items.iter().map(|e| (e.event.ts.as_micros(), e.id)));
            match page.next_cursor {
                Some(c) => {
                    assert_eq!(page.items.len(), limit as usize);
                    let cur = Cursor::decode(&c).unwrap();
                    let last = page.items.last().unwrap();
                    assert_eq!((cur.ts, cur.id), (last.event.ts.as_micros(), last.id));
                    q.cursor = Some(cur);
                }
                None => break,
            }
        }
        assert_eq!(seen.len(), 25, "limit {limit}");
        assert!(seen.windows(2).all(|w| w[0] > w[1]), "strictly descending");
        assert_eq!(pages, 25usize.div_ceil(limit as usize), "limit {limit}");
    }
    // A cursor combined with a filter.
    let q = EventQuery {
        from: Some(Timestamp(T0 + 100)),
        limit: 3,
        ..EventQuery::default()
    };
    let first = s.query_events(&q).await.unwrap();
    let rest = matching(
        s,
        EventQuery {
            cursor: first.next_cursor.as_deref().and_then(Cursor::decode),
            ..q
        },
    )
    .await;
    assert_eq!(first.items.len() + rest.len(), 16);
    assert!(rest.iter().all(|&t| t >= 100));
}

async fn limit_boundaries(db: Db) {
    let s = &db.store;
    write(s, (0..1005).map(ev).collect()).await;
    let q = |limit| EventQuery {
        limit,
        ..EventQuery::default()
    };
    // Above the maximum: clamped to MAX_LIMIT.
    let page = s.query_events(&q(5000)).await.unwrap();
    assert_eq!(page.items.len(), palisade_store::MAX_LIMIT as usize);
    assert!(page.next_cursor.is_some());
    // Zero: clamped to one.
    let page = s.query_events(&q(0)).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].event.ts.as_micros(), T0 + 1004);
    // Exactly the rest, one less, one more.
    let after = |limit| EventQuery {
        cursor: Some(Cursor {
            ts: T0 + 5,
            id: i64::MAX,
        }),
        ..q(limit)
    };
    let page = s.query_events(&after(6)).await.unwrap();
    assert_eq!(page.items.len(), 6);
    assert_eq!(page.next_cursor, None);
    let page = s.query_events(&after(5)).await.unwrap();
    assert_eq!(page.items.len(), 5);
    assert!(page.next_cursor.is_some());
    let page = s.query_events(&after(7)).await.unwrap();
    assert_eq!(page.items.len(), 6);
    assert_eq!(page.next_cursor, None);
    // Past the end.
    let page = s
        .query_events(&EventQuery {
            cursor: Some(Cursor { ts: T0, id: 0 }),
            ..q(10)
        })
        .await
        .unwrap();
    assert!(page.items.is_empty());
    assert_eq!(page.next_cursor, None);
}
