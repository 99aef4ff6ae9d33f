//! The harness every contract test runs in: a fresh database per test (a SQLite file,
//! or a PostgreSQL schema dropped afterwards), the [`contract!`] macro that runs each
//! test against both backends, and the fixtures every area shares.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use palisade_core::{Event, Timestamp};
use palisade_store::postgres::PgStore;
use palisade_store::sqlite::SqliteStore;
use palisade_store::{Cursor, EventQuery, IngestBatch, SharedStore, Store};

#[derive(Clone)]
pub(crate) enum Raw {
    Sqlite(PathBuf),
    Postgres { url: String, schema: String },
}

/// What a contract test gets: the store under test, plus raw access to its database
/// for the few tests that must arrange a failure.
#[derive(Clone)]
pub(crate) struct Db {
    pub(crate) store: SharedStore,
    pub(crate) raw: Raw,
}

impl Db {
    /// Makes every insert of an event whose message is `boom` fail inside the database,
    /// after the rows before it in the batch were already inserted.
    pub(crate) async fn install_failure_trigger(&self) {
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
    pub(crate) async fn exec_raw(&self, sql: &str) {
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

impl Db {
    /// The same database through a second store opened with `search` and migrated (so
    /// that the free-text index is built or dropped to match). PostgreSQL plans are
    /// steered away from sequential and plain index scans, so that the tiny test
    /// tables are read through the trigram index when it exists.
    pub(crate) async fn reopen_with(&self, search: palisade_store::SearchConfig) -> SharedStore {
        let store: SharedStore = match &self.raw {
            Raw::Sqlite(path) => Arc::new(SqliteStore::open(path).unwrap().with_search(search)),
            Raw::Postgres { url, schema } => {
                let sep = if url.contains('?') { '&' } else { '?' };
                let url = format!(
                    "{url}{sep}options=-c%20search_path%3D{schema}%20-c%20enable_seqscan%3Doff%20-c%20enable_indexscan%3Doff"
                );
                Arc::new(PgStore::connect_lazy(&url).unwrap().with_search(search))
            }
        };
        store.migrate().await.unwrap();
        store
    }

    /// One integer computed directly by the database, around the store.
    pub(crate) async fn scalar(&self, sql: &str) -> i64 {
        match &self.raw {
            Raw::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).unwrap();
                conn.query_row(sql, [], |r| r.get(0)).unwrap()
            }
            Raw::Postgres { url, schema } => {
                let client = pg_connect(url).await.unwrap();
                client
                    .batch_execute(&format!("SET search_path TO {schema}"))
                    .await
                    .unwrap();
                client.query_one(sql, &[]).await.unwrap().get(0)
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
pub(crate) async fn run_sqlite<F, Fut>(test: F)
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
pub(crate) async fn run_postgres<F, Fut>(test: F)
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
    // The free-text index's extension, shared by every test schema (installed into
    // one of them, it would go when that schema is dropped).
    let _ = admin
        .batch_execute("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
        .await;
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

/// Generates `<test>::sqlite` and `<test>::postgres` for every contract test named: each
/// an `async fn(Db)` in the module that invokes the macro.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    $crate::harness::run_sqlite(super::$name).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    $crate::harness::run_postgres(super::$name).await;
                }
            }
        )*
    };
}
pub(crate) use contract;

// ---------------------------------------------------------------------------------------
// Fixtures shared by every area

pub(crate) const T0: i64 = 1_700_000_000_000_000;

pub(crate) fn ev(ts: i64) -> Event {
    Event {
        ts: Timestamp(T0 + ts),
        source: "web".into(),
        ..Event::default()
    }
}

pub(crate) async fn write(store: &SharedStore, events: Vec<Event>) {
    let out = store
        .write_batch(IngestBatch {
            events,
            ..IngestBatch::default()
        })
        .await
        .unwrap();
    assert!(!out.duplicate);
}

pub(crate) fn net(s: &str) -> Option<palisade_core::net::IpNet> {
    Some(s.parse().unwrap())
}

/// Every event `q` matches, following its pages of `limit` to the end, as (offset
/// from [`T0`], id): what a client paging through a listing sees.
pub(crate) async fn every_page(store: &SharedStore, q: &EventQuery, limit: u32) -> Vec<(i64, i64)> {
    let mut q = EventQuery { limit, ..q.clone() };
    let mut out = Vec::new();
    loop {
        let page = store.query_events(&q).await.unwrap();
        out.extend(
            page.items
                .iter()
                .map(|e| (e.event.ts.as_micros() - T0, e.id)),
        );
        match page.next_cursor {
            Some(c) => q.cursor = Some(Cursor::decode(&c).unwrap()),
            None => return out,
        }
    }
}
