//! What only one backend does, or what happens before there is a database at all:
//! these run once each, not once per backend.

use std::sync::Arc;
use std::time::{Duration, Instant};

use palisade_store::postgres::PgStore;
use palisade_store::sqlite::SqliteStore;
use palisade_store::{IngestBatch, SharedStore, Store, StoreError};

use crate::harness::ev;

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
