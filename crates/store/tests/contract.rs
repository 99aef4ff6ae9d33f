//! The store contract: one suite, run against every backend, so that SQLite and
//! PostgreSQL are proven to behave identically.
//!
//! PostgreSQL tests use `PALISADE_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`), each in a schema of its own that is
//! dropped afterwards. They fail when the database is unreachable unless
//! `PALISADE_SKIP_POSTGRES=1` is set.

use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use palisade_core::{Checkpoint, DeadLetter, Event, EventKind, Timestamp};
use palisade_store::postgres::PgStore;
use palisade_store::sqlite::SqliteStore;
use palisade_store::{
    Cursor, DeadLetterQuery, EventQuery, IngestBatch, SharedStore, StatusFilter, Store, StoreError,
};

// ---------------------------------------------------------------------------------------
// Harness

#[derive(Clone)]
enum Raw {
    Sqlite(PathBuf),
    Postgres { url: String, schema: String },
}

/// What a contract test gets: the store under test, plus raw access to its database
/// for the few tests that must arrange a failure.
#[derive(Clone)]
struct Db {
    store: SharedStore,
    raw: Raw,
}

impl Db {
    /// Makes every insert of an event whose message is `boom` fail inside the database,
    /// after the rows before it in the batch were already inserted.
    async fn install_failure_trigger(&self) {
        match &self.raw {
            Raw::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).unwrap();
                conn.execute_batch(
                    "CREATE TRIGGER boom BEFORE INSERT ON events WHEN NEW.message = 'boom'
                     BEGIN SELECT RAISE(ABORT, 'boom'); END;",
                )
                .unwrap();
            }
            Raw::Postgres { url, schema } => {
                let client = pg_connect(url).await.unwrap();
                client
                    .batch_execute(&format!(
                        "SET search_path TO {schema};
                         CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$
                         BEGIN
                           IF NEW.message = 'boom' THEN RAISE EXCEPTION 'boom'; END IF;
                           RETURN NEW;
                         END $$;
                         CREATE TRIGGER boom BEFORE INSERT ON events
                           FOR EACH ROW EXECUTE FUNCTION boom();"
                    ))
                    .await
                    .unwrap();
            }
        }
    }
}

impl Db {
    /// Runs a statement directly on the database, around the store (to plant bad rows).
    async fn exec_raw(&self, sql: &str) {
        match &self.raw {
            Raw::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).unwrap();
                conn.execute_batch(sql).unwrap();
            }
            Raw::Postgres { url, schema } => {
                let client = pg_connect(url).await.unwrap();
                client
                    .batch_execute(&format!("SET search_path TO {schema}; {sql}"))
                    .await
                    .unwrap();
            }
        }
    }
}

fn pg_url() -> String {
    std::env::var("PALISADE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn skip_postgres() -> bool {
    std::env::var("PALISADE_SKIP_POSTGRES").is_ok_and(|v| v == "1")
}

async fn pg_connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

fn unique_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "t_{}_{}_{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs `test` on a fresh SQLite file.
async fn run_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("palisade.db");
    let store = SqliteStore::open(&path).unwrap();
    store.migrate().await.unwrap();
    test(Db {
        store: Arc::new(store),
        raw: Raw::Sqlite(path),
    })
    .await;
}

/// Runs `test` in a fresh PostgreSQL schema, dropped afterwards even if the test fails.
async fn run_postgres<F, Fut>(test: F)
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    if skip_postgres() {
        eprintln!("PALISADE_SKIP_POSTGRES=1: skipping");
        return;
    }
    let base = pg_url();
    let admin = match pg_connect(&base).await {
        Ok(c) => c,
        Err(e) => panic!(
            "PostgreSQL at {} is unreachable ({e}: {}); start it, point \
             PALISADE_TEST_DATABASE_URL at one, or set PALISADE_SKIP_POSTGRES=1 to skip",
            palisade_store::redact_url(&base),
            std::error::Error::source(&e)
                .map(ToString::to_string)
                .unwrap_or_default()
        ),
    };
    let schema = unique_name();
    admin
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    let store = PgStore::connect_lazy(&url).unwrap();
    let db = Db {
        store: Arc::new(store),
        raw: Raw::Postgres {
            url: base.clone(),
            schema: schema.clone(),
        },
    };
    let migrated = db.store.migrate().await;
    let result = match migrated {
        Ok(()) => tokio::spawn(test(db)).await,
        Err(e) => {
            let _ = admin
                .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
                .await;
            panic!("migrate failed: {e}");
        }
    };
    admin
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
    if let Err(e) = result {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
        panic!("test task failed: {e}");
    }
}

/// Generates `<test>::sqlite` and `<test>::postgres` for every contract test.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::run_sqlite(super::tests::$name).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::run_postgres(super::tests::$name).await;
                }
            }
        )*
    };
}

contract!(
    migrate_twice_is_idempotent,
    round_trips_every_field,
    filters_time_range,
    filters_client_network,
    filters_method_status_host_source_kind,
    filters_path_prefix,
    filters_text_search,
    combined_filters,
    pagination_walks_every_row_once,
    limit_boundaries,
    idempotency_key_duplicates_store_nothing,
    checkpoint_is_written_with_the_batch,
    dead_letters_are_listed_and_filtered,
    failed_batch_leaves_nothing,
    ping_returns_a_latency,
    batches_report_the_ids_of_their_events,
);

contract!(
    users_round_trip_update_and_delete,
    usernames_conflict,
    active_admins_are_counted,
    unknown_role_or_scope_is_corrupt,
    refresh_tokens_are_used_once_and_revoked,
    refresh_tokens_go_with_their_user,
    api_keys_conflict_are_found_listed_revoked_and_touched,
    secrets_put_get_list_delete,
    put_secrets_is_all_or_nothing,
    audit_is_filtered_and_paginated,
);

contract!(
    threats_round_trip_every_field,
    threat_text_is_cleaned_and_capped,
    threats_are_filtered,
    threat_pages_walk_equal_timestamps_once,
    threat_stats_count_a_known_set,
    settings_get_put_and_overwrite,
);

contract!(
    decisions_round_trip_and_extend_instead_of_duplicating,
    expired_decisions_are_replaced_and_marked,
    deleting_is_soft_and_only_for_decisions_in_force,
    decisions_are_filtered_and_paginated,
    changes_since_a_pull_are_listed_by_id,
    concurrent_puts_of_one_decision_keep_one_in_force,
);

// ---------------------------------------------------------------------------------------
// Helpers

const T0: i64 = 1_700_000_000_000_000;

fn ev(ts: i64) -> Event {
    Event {
        ts: Timestamp(T0 + ts),
        source: "web".into(),
        ..Event::default()
    }
}

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

async fn write(store: &SharedStore, events: Vec<Event>) {
    let out = store
        .write_batch(IngestBatch {
            events,
            ..IngestBatch::default()
        })
        .await
        .unwrap();
    assert!(!out.duplicate);
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

fn net(s: &str) -> Option<palisade_core::net::IpNet> {
    Some(s.parse().unwrap())
}

// ---------------------------------------------------------------------------------------
// The contract

mod tests {
    use super::*;

    pub use super::decision_tests::*;
    pub use super::security_tests::*;
    pub use super::threat_tests::*;

    pub async fn batches_report_the_ids_of_their_events(db: Db) {
        let s = &db.store;
        write(s, vec![ev(1)]).await;
        let batch = |from: i64| IngestBatch {
            events: (from..from + 5).map(ev).collect(),
            ..IngestBatch::default()
        };
        let empty = IngestBatch {
            dead_letters: vec![palisade_core::DeadLetter::new(
                "web", None, None, b"x", "bad",
            )],
            ..IngestBatch::default()
        };
        let group: std::sync::Arc<[IngestBatch]> = vec![batch(100), empty, batch(200)].into();
        let outcomes = s.write_batches(group).await.unwrap();
        assert_eq!(outcomes[1].first_event_id, None);
        for (outcome, from) in [(outcomes[0], 100), (outcomes[2], 200)] {
            let first = outcome
                .first_event_id
                .expect("an id for a batch with events");
            for i in 0..5 {
                let e = s.get_event(first + i).await.unwrap().unwrap();
                assert_eq!(e.event.ts.as_micros() - T0, from + i);
            }
        }
    }

    pub async fn migrate_twice_is_idempotent(db: Db) {
        let s = &db.store;
        write(s, vec![ev(1)]).await;
        s.migrate().await.unwrap();
        s.migrate().await.unwrap();
        assert_eq!(s.count_events().await.unwrap(), 1);
        assert!(matches!(s.backend(), "sqlite" | "postgres"));
    }

    pub async fn round_trips_every_field(db: Db) {
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

    pub async fn filters_time_range(db: Db) {
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

    pub async fn filters_client_network(db: Db) {
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

    pub async fn filters_method_status_host_source_kind(db: Db) {
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

    pub async fn filters_path_prefix(db: Db) {
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

    pub async fn filters_text_search(db: Db) {
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

    pub async fn combined_filters(db: Db) {
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

    pub async fn pagination_walks_every_row_once(db: Db) {
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

    pub async fn limit_boundaries(db: Db) {
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

    pub async fn idempotency_key_duplicates_store_nothing(db: Db) {
        let s = &db.store;
        let batch = |n: i64, d: usize, offset: u64| IngestBatch {
            events: (0..n).map(ev).collect(),
            dead_letters: (0..d)
                .map(|i| DeadLetter::new("push", None, None, b"junk", format!("bad {i}")))
                .collect(),
            checkpoint: Some(Checkpoint {
                source: "push".into(),
                file_id: "f".into(),
                offset,
                line_no: 1,
                fingerprint: 1,
            }),
            idempotency_key: Some("key-1".into()),
        };
        let first = s.write_batch(batch(3, 2, 10)).await.unwrap();
        assert_eq!(
            (first.events, first.dead_letters, first.duplicate),
            (3, 2, false)
        );
        let again = s.write_batch(batch(7, 0, 99)).await.unwrap();
        assert_eq!(
            (again.events, again.dead_letters, again.duplicate),
            (3, 2, true)
        );
        assert_eq!(s.count_events().await.unwrap(), 3);
        let dls = s
            .query_dead_letters(&DeadLetterQuery {
                limit: 10,
                ..DeadLetterQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(dls.items.len(), 2);
        assert_eq!(s.checkpoint("push").await.unwrap().unwrap().offset, 10);
        // Another key, and no key, both write.
        let other = s
            .write_batch(IngestBatch {
                idempotency_key: Some("key-2".into()),
                ..batch(1, 0, 20)
            })
            .await
            .unwrap();
        assert!(!other.duplicate);
        let none = s
            .write_batch(IngestBatch {
                idempotency_key: None,
                ..batch(1, 0, 30)
            })
            .await
            .unwrap();
        assert!(!none.duplicate);
        assert_eq!(s.count_events().await.unwrap(), 5);
        // Concurrent writers with one key: exactly one stores.
        let outs = futures_util::future::join_all((0..4).map(|_| {
            s.write_batch(IngestBatch {
                idempotency_key: Some("key-3".into()),
                ..batch(2, 0, 40)
            })
        }))
        .await;
        let stored = outs
            .iter()
            .filter(|o| !o.as_ref().unwrap().duplicate)
            .count();
        assert_eq!(stored, 1);
        assert!(outs.iter().all(|o| o.as_ref().unwrap().events == 2));
        assert_eq!(s.count_events().await.unwrap(), 7);
    }

    pub async fn checkpoint_is_written_with_the_batch(db: Db) {
        let s = &db.store;
        assert_eq!(s.checkpoint("a").await.unwrap(), None);
        assert!(s.checkpoints().await.unwrap().is_empty());
        let cp = |source: &str, offset: u64| Checkpoint {
            source: source.into(),
            file_id: "dev:1/ino:2".into(),
            offset,
            line_no: offset / 10,
            fingerprint: u64::MAX - offset,
        };
        s.write_batch(IngestBatch {
            events: vec![ev(1)],
            checkpoint: Some(cp("b", 100)),
            ..IngestBatch::default()
        })
        .await
        .unwrap();
        s.write_batch(IngestBatch {
            checkpoint: Some(cp("a", 5)),
            ..IngestBatch::default()
        })
        .await
        .unwrap();
        assert_eq!(s.checkpoint("b").await.unwrap(), Some(cp("b", 100)));
        s.write_batch(IngestBatch {
            events: vec![ev(2)],
            checkpoint: Some(Checkpoint {
                file_id: "rotated".into(),
                ..cp("b", 250)
            }),
            ..IngestBatch::default()
        })
        .await
        .unwrap();
        let b = s.checkpoint("b").await.unwrap().unwrap();
        assert_eq!(
            (b.offset, b.line_no, b.file_id.as_str()),
            (250, 25, "rotated")
        );
        assert_eq!(b.fingerprint, u64::MAX - 250);
        let all = s.checkpoints().await.unwrap();
        let names: Vec<&str> = all.iter().map(|c| c.source.as_str()).collect();
        assert_eq!(names, vec!["a", "b"]);
        assert_eq!(s.count_events().await.unwrap(), 2);
    }

    pub async fn dead_letters_are_listed_and_filtered(db: Db) {
        let s = &db.store;
        let dl = |source: &str, at: i64, line: Option<u64>| DeadLetter {
            source: source.into(),
            line_no: line,
            offset: line.map(|l| l * 100),
            raw: format!("raw \u{e9} {at}"),
            reason: "no format matched".into(),
            received_at: Timestamp(T0 + at),
        };
        let all: Vec<DeadLetter> = (0..9)
            .map(|i| dl(if i % 3 == 0 { "a" } else { "b" }, i / 2, Some(i as u64)))
            .chain([dl("c", 100, None)])
            .collect();
        let out = s
            .write_batch(IngestBatch {
                dead_letters: all.clone(),
                ..IngestBatch::default()
            })
            .await
            .unwrap();
        assert_eq!((out.events, out.dead_letters), (0, 10));
        // Walk everything two at a time.
        let mut q = DeadLetterQuery {
            limit: 2,
            ..DeadLetterQuery::default()
        };
        let mut seen = Vec::new();
        loop {
            let page = s.query_dead_letters(&q).await.unwrap();
            seen.extend(page.items);
            match page.next_cursor {
                Some(c) => q.cursor = Cursor::decode(&c),
                None => break,
            }
        }
        assert_eq!(seen.len(), 10);
        assert_eq!(seen[0].dead_letter, all[9]);
        let keys: Vec<(Timestamp, i64)> = seen
            .iter()
            .map(|d| (d.dead_letter.received_at, d.id))
            .collect();
        assert!(keys.windows(2).all(|w| w[0] > w[1]));
        let mut got: Vec<DeadLetter> = seen.into_iter().map(|d| d.dead_letter).collect();
        got.sort_by_key(|d| (d.received_at, d.line_no));
        let mut want = all.clone();
        want.sort_by_key(|d| (d.received_at, d.line_no));
        assert_eq!(got, want);
        // Filters.
        let count = |q: DeadLetterQuery| async move {
            let page = s
                .query_dead_letters(&DeadLetterQuery { limit: 100, ..q })
                .await
                .unwrap();
            page.items
                .iter()
                .map(|d| d.dead_letter.line_no)
                .collect::<Vec<_>>()
        };
        let by_source = count(DeadLetterQuery {
            source: Some("a".into()),
            ..DeadLetterQuery::default()
        })
        .await;
        assert_eq!(by_source, vec![Some(6), Some(3), Some(0)]);
        let by_time = count(DeadLetterQuery {
            from: Some(Timestamp(T0 + 1)),
            to: Some(Timestamp(T0 + 3)),
            ..DeadLetterQuery::default()
        })
        .await;
        assert_eq!(by_time, vec![Some(5), Some(4), Some(3), Some(2)]);
        let both = count(DeadLetterQuery {
            from: Some(Timestamp(T0 + 1)),
            source: Some("b".into()),
            ..DeadLetterQuery::default()
        })
        .await;
        assert_eq!(both, vec![Some(8), Some(7), Some(5), Some(4), Some(2)]);
    }

    pub async fn failed_batch_leaves_nothing(db: Db) {
        let s = &db.store;
        db.install_failure_trigger().await;
        let cp = Checkpoint {
            source: "web".into(),
            file_id: "f".into(),
            offset: 10,
            line_no: 1,
            fingerprint: 7,
        };
        let mut events: Vec<Event> = (0..50).map(ev).collect();
        events.push(Event {
            message: Some("boom".into()),
            ..ev(50)
        });
        let err = s
            .write_batch(IngestBatch {
                events: events.clone(),
                dead_letters: vec![DeadLetter::new("web", Some(1), Some(0), b"x", "bad")],
                checkpoint: Some(cp.clone()),
                idempotency_key: Some("k".into()),
            })
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Database(_)), "{err:?}");
        assert!(!err.is_transient());
        assert_eq!(s.count_events().await.unwrap(), 0);
        assert_eq!(s.checkpoint("web").await.unwrap(), None);
        let dls = s
            .query_dead_letters(&DeadLetterQuery {
                limit: 10,
                ..DeadLetterQuery::default()
            })
            .await
            .unwrap();
        assert!(dls.items.is_empty());
        // The key was not consumed and the store still works.
        events.pop();
        let out = s
            .write_batch(IngestBatch {
                events,
                dead_letters: vec![],
                checkpoint: Some(cp.clone()),
                idempotency_key: Some("k".into()),
            })
            .await
            .unwrap();
        assert_eq!((out.events, out.duplicate), (50, false));
        assert_eq!(s.count_events().await.unwrap(), 50);
        assert_eq!(s.checkpoint("web").await.unwrap(), Some(cp));
    }

    pub async fn ping_returns_a_latency(db: Db) {
        let d = db.store.ping().await.unwrap();
        assert!(d < Duration::from_secs(5));
    }
}

// ---------------------------------------------------------------------------------------
// Backend-specific

#[tokio::test]
async fn postgres_down_is_unavailable_fast_and_start_up_never_waits() {
    let start = Instant::now();
    let store = PgStore::connect_lazy("postgres://postgres@127.0.0.1:1/test").unwrap();
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "connect_lazy waited"
    );
    let store: SharedStore = Arc::new(store);

    let start = Instant::now();
    let err = store.ping().await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains("refused"), "{err}");
    assert!(err.is_transient());
    let err = store
        .write_batch(IngestBatch {
            events: vec![ev(1)],
            ..IngestBatch::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let err = store.migrate().await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn postgres_bad_url_is_invalid_url() {
    let err = PgStore::connect_lazy("postgres://h:notaport/db").unwrap_err();
    assert!(matches!(err, StoreError::InvalidUrl(_)), "{err:?}");
}

#[tokio::test]
async fn open_dispatches_on_scheme_and_creates_directories() {
    let dir = tempfile::tempdir().unwrap();
    let store = palisade_store::open("sqlite://deep/er/p.db", dir.path()).unwrap();
    assert_eq!(store.backend(), "sqlite");
    store.migrate().await.unwrap();
    assert!(dir.path().join("deep/er/p.db").exists());
    let store = palisade_store::open("sqlite://", dir.path()).unwrap();
    store.migrate().await.unwrap();
    assert!(dir.path().join("palisade.db").exists());
    let pg = palisade_store::open("postgres://u:pw@127.0.0.1:1/x", dir.path()).unwrap();
    assert_eq!(pg.backend(), "postgres");
}

#[tokio::test]
async fn sqlite_reads_do_not_wait_for_an_open_write_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let store = SqliteStore::open(&path).unwrap();
    store.migrate().await.unwrap();
    store
        .write_batch(IngestBatch {
            events: vec![ev(1)],
            ..IngestBatch::default()
        })
        .await
        .unwrap();
    // Another connection holds the write lock with uncommitted rows.
    let other = rusqlite::Connection::open(&path).unwrap();
    other
        .execute_batch("BEGIN IMMEDIATE; DELETE FROM events;")
        .unwrap();
    let start = Instant::now();
    assert_eq!(store.count_events().await.unwrap(), 1);
    assert!(start.elapsed() < Duration::from_secs(1));
    other.execute_batch("ROLLBACK").unwrap();
}

// ---------------------------------------------------------------------------------------
// The security contract (users, refresh tokens, API keys, secrets, audit)

mod security_tests {
    use palisade_core::Timestamp;
    use palisade_core::security::{
        NewApiKey, NewAudit, NewUser, RefreshToken, Role, Scope, SecretRecord,
    };
    use palisade_store::{AuditQuery, Cursor, StoreError};

    use super::{Db, T0};

    fn at(n: i64) -> Timestamp {
        Timestamp(T0 + n)
    }

    fn new_user(name: &str, role: Role) -> NewUser {
        NewUser {
            username: name.into(),
            role,
            password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1${name}"),
        }
    }

    fn token(hash: &str, family: &str, user_id: i64) -> RefreshToken {
        RefreshToken {
            token_hash: hash.into(),
            family: family.into(),
            user_id,
            issued_at: at(1),
            expires_at: at(1_000_000),
            used_at: None,
            revoked_at: None,
        }
    }

    fn new_key(name: &str, prefix: &str, scopes: Vec<Scope>) -> NewApiKey {
        NewApiKey {
            name: name.into(),
            prefix: prefix.into(),
            key_hash: format!("{prefix}-sha256"),
            scopes,
            created_by: Some("admin".into()),
        }
    }

    fn secret(name: &str, ciphertext: &[u8]) -> SecretRecord {
        SecretRecord {
            name: name.into(),
            key_id: "k1".into(),
            nonce: vec![0, 1, 2, 255],
            ciphertext: ciphertext.to_vec(),
            updated_at: at(7),
            updated_by: Some("admin".into()),
        }
    }

    fn audit(actor: &str, action: &str) -> NewAudit {
        NewAudit {
            actor: Some(actor.into()),
            action: action.into(),
            target: Some("t".into()),
            outcome: "success".into(),
            client_ip: Some("192.0.2.1".into()),
            detail: None,
        }
    }

    pub async fn users_round_trip_update_and_delete(db: Db) {
        let s = &db.store;
        let before = Timestamp::now();
        let alice = s.create_user(new_user("alice", Role::Admin)).await.unwrap();
        assert!(alice.id > 0);
        assert_eq!(alice.username, "alice");
        assert_eq!(alice.role, Role::Admin);
        assert!(!alice.disabled);
        assert_eq!((alice.failed_logins, alice.locked_until), (0, None));
        assert!(alice.created_at >= before);
        assert_eq!(alice.created_at, alice.updated_at);
        assert_eq!(s.user_by_name("alice").await.unwrap(), Some(alice.clone()));
        assert_eq!(s.user_by_id(alice.id).await.unwrap(), Some(alice.clone()));
        assert_eq!(s.user_by_name("nobody").await.unwrap(), None);
        assert_eq!(s.user_by_id(alice.id + 1000).await.unwrap(), None);

        let bob = s.create_user(new_user("bob", Role::Viewer)).await.unwrap();
        let zed = s.create_user(new_user("Zed", Role::Analyst)).await.unwrap();
        assert!(bob.id != alice.id && zed.id != bob.id);
        // By name, bytewise on both backends.
        let names: Vec<String> = s
            .list_users()
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.username)
            .collect();
        assert_eq!(names, ["Zed", "alice", "bob"]);

        let changed = palisade_core::security::User {
            role: Role::Analyst,
            password_hash: "new-hash".into(),
            disabled: true,
            failed_logins: 3,
            locked_until: Some(at(99)),
            // Ignored by update_user: these are the store's to set.
            username: "renamed".into(),
            created_at: at(0),
            ..alice.clone()
        };
        assert!(s.update_user(&changed).await.unwrap());
        let back = s.user_by_id(alice.id).await.unwrap().unwrap();
        assert_eq!(back.username, "alice");
        assert_eq!(back.role, Role::Analyst);
        assert_eq!(back.password_hash, "new-hash");
        assert!(back.disabled);
        assert_eq!(back.failed_logins, 3);
        assert_eq!(back.locked_until, Some(at(99)));
        assert_eq!(back.created_at, alice.created_at);
        assert!(back.updated_at >= alice.updated_at);
        // Unlock again: None is written, not skipped.
        let unlocked = palisade_core::security::User {
            locked_until: None,
            failed_logins: 0,
            ..back.clone()
        };
        assert!(s.update_user(&unlocked).await.unwrap());
        let back = s.user_by_id(alice.id).await.unwrap().unwrap();
        assert_eq!((back.locked_until, back.failed_logins), (None, 0));
        let ghost = palisade_core::security::User {
            id: alice.id + 1000,
            ..alice.clone()
        };
        assert!(!s.update_user(&ghost).await.unwrap());

        assert!(s.delete_user(bob.id).await.unwrap());
        assert!(!s.delete_user(bob.id).await.unwrap());
        assert_eq!(s.user_by_id(bob.id).await.unwrap(), None);
        assert_eq!(s.list_users().await.unwrap().len(), 2);
    }

    pub async fn usernames_conflict(db: Db) {
        let s = &db.store;
        let first = s.create_user(new_user("alice", Role::Admin)).await.unwrap();
        let err = s
            .create_user(new_user("alice", Role::Viewer))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Conflict(m) if m.contains("alice")),
            "{err:?}"
        );
        assert!(!err.is_transient());
        // The first one is untouched and a different name still works.
        assert_eq!(s.user_by_name("alice").await.unwrap(), Some(first));
        s.create_user(new_user("Alice", Role::Viewer))
            .await
            .unwrap();
        assert_eq!(s.list_users().await.unwrap().len(), 2);
    }

    pub async fn active_admins_are_counted(db: Db) {
        let s = &db.store;
        assert_eq!(s.count_active_admins().await.unwrap(), 0);
        let a1 = s.create_user(new_user("a1", Role::Admin)).await.unwrap();
        let a2 = s.create_user(new_user("a2", Role::Admin)).await.unwrap();
        s.create_user(new_user("x", Role::Analyst)).await.unwrap();
        s.create_user(new_user("v", Role::Viewer)).await.unwrap();
        assert_eq!(s.count_active_admins().await.unwrap(), 2);
        let disabled = palisade_core::security::User {
            disabled: true,
            ..a1.clone()
        };
        assert!(s.update_user(&disabled).await.unwrap());
        assert_eq!(s.count_active_admins().await.unwrap(), 1);
        assert!(s.delete_user(a2.id).await.unwrap());
        assert_eq!(s.count_active_admins().await.unwrap(), 0);
    }

    pub async fn unknown_role_or_scope_is_corrupt(db: Db) {
        let s = &db.store;
        s.create_user(new_user("alice", Role::Admin)).await.unwrap();
        s.create_api_key(new_key("k", "pk_1", vec![Scope::Read]))
            .await
            .unwrap();
        db.exec_raw("UPDATE users SET role = 'root'; UPDATE api_keys SET scopes = 'read,sudo';")
            .await;
        let err = s.user_by_name("alice").await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt(m) if m.contains("root")),
            "{err:?}"
        );
        assert!(matches!(s.list_users().await, Err(StoreError::Corrupt(_))));
        let err = s.api_key_by_prefix("pk_1").await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt(m) if m.contains("sudo")),
            "{err:?}"
        );
        assert!(matches!(
            s.list_api_keys().await,
            Err(StoreError::Corrupt(_))
        ));
    }

    pub async fn refresh_tokens_are_used_once_and_revoked(db: Db) {
        let s = &db.store;
        let u = s
            .create_user(new_user("alice", Role::Viewer))
            .await
            .unwrap();
        let other = s.create_user(new_user("bob", Role::Viewer)).await.unwrap();
        let t1 = token("h1", "f1", u.id);
        for t in [
            t1.clone(),
            token("h2", "f1", u.id),
            token("h3", "f2", u.id),
            token("h4", "f3", other.id),
        ] {
            s.insert_refresh_token(&t).await.unwrap();
        }
        assert_eq!(s.refresh_token("h1").await.unwrap(), Some(t1.clone()));
        assert_eq!(s.refresh_token("nope").await.unwrap(), None);
        // The same hash twice is not a second token.
        assert!(s.insert_refresh_token(&t1).await.is_err());
        // A token must belong to a user.
        assert!(
            s.insert_refresh_token(&token("h9", "f9", u.id + 1000))
                .await
                .is_err()
        );

        // Exchanged once, never twice.
        assert!(s.use_refresh_token("h1", at(10)).await.unwrap());
        assert!(!s.use_refresh_token("h1", at(11)).await.unwrap());
        assert!(!s.use_refresh_token("nope", at(11)).await.unwrap());
        let used = s.refresh_token("h1").await.unwrap().unwrap();
        assert_eq!((used.used_at, used.revoked_at), (Some(at(10)), None));

        // Reuse detected: the family goes, including the spent token, once.
        assert_eq!(s.revoke_refresh_family("f1", at(20)).await.unwrap(), 2);
        assert_eq!(s.revoke_refresh_family("f1", at(21)).await.unwrap(), 0);
        assert!(!s.use_refresh_token("h2", at(22)).await.unwrap());
        let h2 = s.refresh_token("h2").await.unwrap().unwrap();
        assert_eq!((h2.used_at, h2.revoked_at), (None, Some(at(20))));

        // Logout everywhere: only this user's live tokens.
        assert_eq!(s.revoke_user_refresh_tokens(u.id, at(30)).await.unwrap(), 1);
        assert_eq!(s.revoke_user_refresh_tokens(u.id, at(31)).await.unwrap(), 0);
        let h3 = s.refresh_token("h3").await.unwrap().unwrap();
        assert_eq!(h3.revoked_at, Some(at(30)));
        assert!(s.use_refresh_token("h4", at(32)).await.unwrap());
    }

    pub async fn refresh_tokens_go_with_their_user(db: Db) {
        let s = &db.store;
        let u = s
            .create_user(new_user("alice", Role::Viewer))
            .await
            .unwrap();
        let keep = s.create_user(new_user("bob", Role::Viewer)).await.unwrap();
        s.insert_refresh_token(&token("a1", "fa", u.id))
            .await
            .unwrap();
        s.insert_refresh_token(&token("a2", "fb", u.id))
            .await
            .unwrap();
        s.insert_refresh_token(&token("b1", "fc", keep.id))
            .await
            .unwrap();
        assert!(s.delete_user(u.id).await.unwrap());
        assert_eq!(s.refresh_token("a1").await.unwrap(), None);
        assert_eq!(s.refresh_token("a2").await.unwrap(), None);
        assert!(s.refresh_token("b1").await.unwrap().is_some());
        assert_eq!(s.revoke_user_refresh_tokens(u.id, at(1)).await.unwrap(), 0);
    }

    pub async fn api_keys_conflict_are_found_listed_revoked_and_touched(db: Db) {
        let s = &db.store;
        let before = Timestamp::now();
        let k1 = s
            .create_api_key(new_key(
                "sensor",
                "pk_aaaa",
                vec![Scope::Ingest, Scope::Read],
            ))
            .await
            .unwrap();
        assert!(k1.id > 0);
        assert_eq!(
            (k1.name.as_str(), k1.prefix.as_str(), k1.key_hash.as_str()),
            ("sensor", "pk_aaaa", "pk_aaaa-sha256")
        );
        assert_eq!(k1.scopes, [Scope::Ingest, Scope::Read]);
        assert_eq!(k1.created_by.as_deref(), Some("admin"));
        assert!(k1.created_at >= before);
        assert_eq!((k1.last_used_at, k1.revoked_at), (None, None));
        assert_eq!(
            s.api_key_by_prefix("pk_aaaa").await.unwrap(),
            Some(k1.clone())
        );
        assert_eq!(s.api_key_by_prefix("pk_zzzz").await.unwrap(), None);

        let err = s
            .create_api_key(new_key("other", "pk_aaaa", vec![Scope::Check]))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Conflict(m) if m.contains("prefix")),
            "{err:?}"
        );
        let err = s
            .create_api_key(new_key("sensor", "pk_bbbb", vec![Scope::Check]))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Conflict(m) if m.contains("name") && m.contains("sensor")),
            "{err:?}"
        );

        let k2 = s
            .create_api_key(NewApiKey {
                created_by: None,
                ..new_key("proxy", "pk_cccc", vec![])
            })
            .await
            .unwrap();
        assert_eq!((k2.scopes.len(), k2.created_by.clone()), (0, None));
        assert_eq!(s.list_api_keys().await.unwrap(), [k2.clone(), k1.clone()]);

        assert!(s.revoke_api_key(k1.id, at(5)).await.unwrap());
        assert!(!s.revoke_api_key(k1.id, at(6)).await.unwrap());
        assert!(!s.revoke_api_key(k2.id + 1000, at(6)).await.unwrap());
        let revoked = s.api_key_by_prefix("pk_aaaa").await.unwrap().unwrap();
        assert_eq!(revoked.revoked_at, Some(at(5)));

        s.touch_api_key(k2.id, at(8)).await.unwrap();
        s.touch_api_key(k2.id, at(9)).await.unwrap();
        s.touch_api_key(k2.id + 1000, at(9)).await.unwrap();
        let touched = s.api_key_by_prefix("pk_cccc").await.unwrap().unwrap();
        assert_eq!(
            (touched.last_used_at, touched.revoked_at),
            (Some(at(9)), None)
        );
        // Revoked keys stay listed.
        assert_eq!(s.list_api_keys().await.unwrap().len(), 2);
    }

    pub async fn secrets_put_get_list_delete(db: Db) {
        let s = &db.store;
        assert!(s.list_secrets().await.unwrap().is_empty());
        let a = secret("nvd_api_key", &[9, 0, 255]);
        let b = SecretRecord {
            updated_by: None,
            ..secret("Zeta", b"")
        };
        s.put_secret(&a).await.unwrap();
        s.put_secret(&b).await.unwrap();
        assert_eq!(s.secret("nvd_api_key").await.unwrap(), Some(a.clone()));
        assert_eq!(s.secret("missing").await.unwrap(), None);
        assert_eq!(s.list_secrets().await.unwrap(), [b.clone(), a.clone()]);

        let a2 = SecretRecord {
            key_id: "k2".into(),
            nonce: vec![7; 12],
            ciphertext: vec![1; 40],
            updated_at: at(8),
            updated_by: Some("bob".into()),
            ..a.clone()
        };
        s.put_secret(&a2).await.unwrap();
        assert_eq!(s.secret("nvd_api_key").await.unwrap(), Some(a2.clone()));
        assert_eq!(s.list_secrets().await.unwrap().len(), 2);

        assert!(s.delete_secret("nvd_api_key").await.unwrap());
        assert!(!s.delete_secret("nvd_api_key").await.unwrap());
        assert_eq!(s.secret("nvd_api_key").await.unwrap(), None);
        assert_eq!(s.list_secrets().await.unwrap(), [b]);
    }

    pub async fn put_secrets_is_all_or_nothing(db: Db) {
        let s = &db.store;
        let x = secret("x", b"old-x");
        let y = secret("y", b"old-y");
        s.put_secrets(&[x.clone(), y.clone()]).await.unwrap();
        assert_eq!(s.list_secrets().await.unwrap(), [x.clone(), y.clone()]);
        s.put_secrets(&[]).await.unwrap();

        // A rotation whose second write fails inside the database leaves nothing changed.
        match &db.raw {
            super::Raw::Sqlite(_) => {
                db.exec_raw(
                    "CREATE TRIGGER boom BEFORE INSERT ON secrets WHEN NEW.name = 'boom'
                     BEGIN SELECT RAISE(ABORT, 'boom'); END;",
                )
                .await
            }
            super::Raw::Postgres { .. } => {
                db.exec_raw(
                    "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$
                     BEGIN
                       IF NEW.name = 'boom' THEN RAISE EXCEPTION 'boom'; END IF;
                       RETURN NEW;
                     END $$;
                     CREATE TRIGGER boom BEFORE INSERT ON secrets
                       FOR EACH ROW EXECUTE FUNCTION boom();",
                )
                .await
            }
        }
        let rotated = SecretRecord {
            key_id: "k2".into(),
            ciphertext: b"new-x".to_vec(),
            ..x.clone()
        };
        let err = s
            .put_secrets(&[rotated.clone(), secret("boom", b"b")])
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Database(_)), "{err:?}");
        assert_eq!(s.list_secrets().await.unwrap(), [x, y.clone()]);

        s.put_secrets(std::slice::from_ref(&rotated)).await.unwrap();
        assert_eq!(s.list_secrets().await.unwrap(), [rotated, y]);
    }

    pub async fn audit_is_filtered_and_paginated(db: Db) {
        let s = &db.store;
        let start = Timestamp::now();
        for i in 0..10 {
            let actor = if i % 2 == 0 { "alice" } else { "bob" };
            s.append_audit(audit(actor, "login")).await.unwrap();
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let mid = Timestamp::now();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        for i in 0..15 {
            let action = if i % 3 == 0 { "user.create" } else { "login" };
            s.append_audit(audit("alice", action)).await.unwrap();
        }
        // NUL is stored (and found) as U+FFFD on both backends; optional fields stay null.
        s.append_audit(NewAudit {
            actor: Some("ev\0il".into()),
            action: "login".into(),
            target: None,
            outcome: "failure".into(),
            client_ip: None,
            detail: Some("bad password".into()),
        })
        .await
        .unwrap();

        // Walks every page of `q` with a small page size.
        let walk = |q: AuditQuery| async move {
            let mut q = AuditQuery { limit: 4, ..q };
            let mut out = Vec::new();
            let mut pages = 0;
            loop {
                let page = s.query_audit(&q).await.unwrap();
                assert!(page.items.len() <= 4);
                pages += 1;
                out.extend(page.items);
                match page.next_cursor {
                    Some(c) => q.cursor = Some(Cursor::decode(&c).unwrap()),
                    None => return (out, pages),
                }
            }
        };

        let (all, pages) = walk(AuditQuery::default()).await;
        assert_eq!(all.len(), 26);
        assert_eq!(pages, 7);
        // Newest first, strictly, with no entry twice.
        assert!(
            all.windows(2)
                .all(|w| (w[0].ts, w[0].id) > (w[1].ts, w[1].id))
        );
        assert!(all.iter().all(|e| e.ts >= start));
        let newest = &all[0];
        assert_eq!(newest.actor.as_deref(), Some("ev\u{fffd}il"));
        assert_eq!(
            (newest.target.clone(), newest.client_ip.clone()),
            (None, None)
        );
        assert_eq!(newest.outcome, "failure");
        assert_eq!(newest.detail.as_deref(), Some("bad password"));
        let oldest = &all[25];
        assert_eq!(
            (
                oldest.actor.as_deref(),
                oldest.action.as_str(),
                oldest.target.as_deref(),
                oldest.outcome.as_str(),
                oldest.client_ip.as_deref(),
                oldest.detail.as_deref()
            ),
            (
                Some("alice"),
                "login",
                Some("t"),
                "success",
                Some("192.0.2.1"),
                None
            )
        );

        let count = |q: AuditQuery| async move { walk(q).await.0.len() };
        let q = |f: fn(&mut AuditQuery)| {
            let mut q = AuditQuery::default();
            f(&mut q);
            q
        };
        assert_eq!(count(q(|q| q.actor = Some("bob".into()))).await, 5);
        assert_eq!(count(q(|q| q.actor = Some("alice".into()))).await, 20);
        assert_eq!(count(q(|q| q.actor = Some("ev\0il".into()))).await, 1);
        assert_eq!(count(q(|q| q.action = Some("user.create".into()))).await, 5);
        assert_eq!(
            count(AuditQuery {
                to: Some(mid),
                ..AuditQuery::default()
            })
            .await,
            10
        );
        assert_eq!(
            count(AuditQuery {
                from: Some(mid),
                ..AuditQuery::default()
            })
            .await,
            16
        );
        let combined = AuditQuery {
            from: Some(mid),
            actor: Some("alice".into()),
            action: Some("login".into()),
            ..AuditQuery::default()
        };
        let (hits, _) = walk(combined).await;
        assert_eq!(hits.len(), 10);
        assert!(hits.iter().all(|e| e.ts >= mid && e.action == "login"));
        let none = AuditQuery {
            to: Some(mid),
            action: Some("user.create".into()),
            ..AuditQuery::default()
        };
        assert_eq!(count(none).await, 0);

        // One page holding everything has no next cursor; limit 0 means 1.
        let page = s
            .query_audit(&AuditQuery {
                limit: 26,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        assert_eq!((page.items.len(), page.next_cursor), (26, None));
        let page = s
            .query_audit(&AuditQuery {
                limit: 0,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(page.items.len(), 1);
        assert!(page.next_cursor.is_some());
    }
}

// ---------------------------------------------------------------------------------------
// The threat contract (threats, statistics, settings)

mod threat_tests {
    use std::net::IpAddr;

    use palisade_core::Timestamp;
    use palisade_core::severity::Severity;
    use palisade_core::threat::{Evidence, Threat};
    use palisade_core::verdict::Action;
    use palisade_store::{Count, Cursor, SharedStore, ThreatQuery, ThreatStats};

    use super::{Db, T0};

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
        assert_eq!(s.insert_threats(&threats).await.unwrap(), n as u64);
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

    pub async fn threats_round_trip_every_field(db: Db) {
        let s = &db.store;
        assert_eq!(s.insert_threats(&[]).await.unwrap(), 0);
        let ip: IpAddr = "2001:db8::dead:beef".parse().unwrap();
        let t = Threat {
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

    pub async fn threat_text_is_cleaned_and_capped(db: Db) {
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

    pub async fn threats_are_filtered(db: Db) {
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

    pub async fn threat_pages_walk_equal_timestamps_once(db: Db) {
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

    pub async fn threat_stats_count_a_known_set(db: Db) {
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

    pub async fn settings_get_put_and_overwrite(db: Db) {
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
}

// ---------------------------------------------------------------------------------------
// The decision contract (bans and allow-list entries)

mod decision_tests {
    use palisade_core::Timestamp;
    use palisade_core::decision::{
        Decision, DecisionKind, DecisionOrigin, DecisionScope, NewDecision, PutOutcome,
    };
    use palisade_store::{DecisionQuery, SharedStore, StoreError};

    use super::{Db, T0};

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

    pub async fn decisions_round_trip_and_extend_instead_of_duplicating(db: Db) {
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
        let (allow, outcome) =
            put(s, new(DecisionKind::Allow, "2001:db8::dead:beef", None), 50).await;
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

    pub async fn expired_decisions_are_replaced_and_marked(db: Db) {
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

    pub async fn deleting_is_soft_and_only_for_decisions_in_force(db: Db) {
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

    pub async fn decisions_are_filtered_and_paginated(db: Db) {
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
            sorted(ids(s, q(|q| q.overlaps = super::net("10.1.2.3"))).await),
            vec![made[0], made[1], made[2]]
        );
        assert_eq!(
            sorted(ids(s, q(|q| q.overlaps = super::net("10.1.2.0/23"))).await),
            vec![made[0], made[1], made[2]]
        );
        assert_eq!(
            sorted(ids(s, q(|q| q.overlaps = super::net("2001:db8::1"))).await),
            vec![made[4]]
        );
        assert!(
            ids(s, q(|q| q.overlaps = super::net("11.0.0.1")))
                .await
                .is_empty()
        );
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
                    q.overlaps = super::net("10.1.2.3");
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

    pub async fn changes_since_a_pull_are_listed_by_id(db: Db) {
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

    pub async fn concurrent_puts_of_one_decision_keep_one_in_force(db: Db) {
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
}
