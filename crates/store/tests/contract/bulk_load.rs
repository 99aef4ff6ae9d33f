//! Bulk loads: a large import into a small table sets the events indexes aside and
//! builds them at its end; queries answer the same meanwhile, and a load that is killed
//! gets its indexes back at the next migration. On PostgreSQL the free-text index is
//! set aside with the others, and comes back only while `[search] text_index` is on.

use palisade_core::Event;
use palisade_store::{EventQuery, SearchConfig, SharedStore};

use crate::harness::{Db, Raw, T0, contract, ev, net, write};

contract!(
    a_bulk_load_answers_the_same_and_its_indexes_come_back,
    a_killed_bulk_load_gets_the_text_index_back_while_it_is_on,
    a_build_killed_after_some_indexes_finishes_the_rest,
);

fn from(ts: i64, ip: &str, path: &str) -> Event {
    Event {
        client_ip: Some(ip.parse().unwrap()),
        path: Some(path.into()),
        method: Some("GET".into()),
        status: Some(200),
        ..ev(ts)
    }
}

/// Offsets from T0 of the first 100 events `query` finds.
async fn offsets(s: &SharedStore, query: EventQuery) -> Vec<i64> {
    let query = EventQuery {
        limit: 100,
        ..query
    };
    let page = s.query_events(&query).await.unwrap();
    page.items
        .iter()
        .map(|e| e.event.ts.as_micros() - T0)
        .collect()
}

/// Offsets from T0 of the events from 10.0.0.0/24 whose path starts with `/a`.
async fn from_net(s: &SharedStore) -> Vec<i64> {
    let query = EventQuery {
        client: net("10.0.0.0/24"),
        path_prefix: Some("/a".into()),
        ..EventQuery::default()
    };
    offsets(s, query).await
}

/// Indexes on `events` besides the primary key's (SQLite lists that one without SQL).
fn count_indexes(db: &Db) -> &'static str {
    match db.raw {
        Raw::Sqlite(_) => {
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND sql IS NOT NULL"
        }
        Raw::Postgres { .. } => {
            "SELECT count(*)::int8 FROM pg_indexes WHERE tablename = 'events' AND schemaname = current_schema() AND indexname <> 'events_pkey'"
        }
    }
}

/// Indexes on `events` a bulk load keeps up to date: SQLite keeps the four whose
/// entries arrive in order (ts, host, status, method; `sqlite/bulk.rs`), PostgreSQL
/// sets every one aside.
fn kept_during_load(db: &Db) -> i64 {
    match db.raw {
        Raw::Sqlite(_) => 4,
        Raw::Postgres { .. } => 0,
    }
}

async fn a_bulk_load_answers_the_same_and_its_indexes_come_back(db: Db) {
    let s = &db.store;
    let count_indexes = count_indexes(&db);
    let indexes = db.scalar(count_indexes).await;
    assert!(indexes >= 6, "{indexes} indexes on events");
    write(
        s,
        vec![from(1, "10.0.0.1", "/a/1"), from(2, "10.0.1.1", "/a/2")],
    )
    .await;

    // An import of 1,000 rows into a table of 2: set aside (the primary key stays).
    let kept = kept_during_load(&db);
    assert!(s.begin_bulk_load(1_000).await.unwrap());
    assert_eq!(db.scalar(count_indexes).await, kept);
    write(
        s,
        vec![
            from(3, "10.0.0.9", "/a/3"),
            from(4, "10.0.0.9", "/b/4"),
            from(5, "192.0.2.1", "/a/5"),
        ],
    )
    .await;
    assert_eq!(
        from_net(s).await,
        vec![3, 1],
        "same answer without the indexes"
    );

    // Killed here: the next store to open the database migrates, which builds them.
    let again = db.reopen_with(SearchConfig::default()).await;
    assert_eq!(db.scalar(count_indexes).await, indexes);
    assert_eq!(from_net(&again).await, vec![3, 1]);

    // A load that finishes builds them itself, once; a second end does nothing.
    assert!(again.begin_bulk_load(1_000).await.unwrap());
    assert_eq!(db.scalar(count_indexes).await, kept);
    write(&again, vec![from(6, "10.0.0.2", "/a/6")]).await;
    again.end_bulk_load().await.unwrap();
    assert_eq!(db.scalar(count_indexes).await, indexes);
    again.end_bulk_load().await.unwrap();
    assert_eq!(db.scalar(count_indexes).await, indexes);
    assert_eq!(from_net(s).await, vec![6, 3, 1]);

    // An import smaller than the table keeps the indexes up to date.
    assert!(!s.begin_bulk_load(3).await.unwrap());
    assert_eq!(db.scalar(count_indexes).await, indexes);
}

/// Offsets from T0 of the events whose searched text holds `needle`.
async fn with_text(s: &SharedStore, needle: &str) -> Vec<i64> {
    let query = EventQuery {
        text: Some(needle.into()),
        ..EventQuery::default()
    };
    offsets(s, query).await
}

async fn a_killed_bulk_load_gets_the_text_index_back_while_it_is_on(db: Db) {
    let on = SearchConfig {
        text_index: true,
        ..SearchConfig::default()
    };
    let off = SearchConfig::default();
    let count_indexes = count_indexes(&db);
    let plain = db.scalar(count_indexes).await;
    let s = db.reopen_with(on).await;
    // PostgreSQL's free-text index is an index of `events`; SQLite's is a table.
    let with_text_index = db.scalar(count_indexes).await;
    match db.raw {
        Raw::Sqlite(_) => assert_eq!(with_text_index, plain),
        Raw::Postgres { .. } => assert_eq!(with_text_index, plain + 1),
    }
    write(
        &s,
        vec![
            from(1, "10.0.0.1", "/needle/1"),
            from(2, "10.0.0.2", "/a/2"),
        ],
    )
    .await;

    let kept = kept_during_load(&db);
    assert!(s.begin_bulk_load(1_000).await.unwrap());
    assert_eq!(db.scalar(count_indexes).await, kept);
    write(&s, vec![from(3, "10.0.0.3", "/needle/3")]).await;
    assert_eq!(with_text(&s, "needle").await, vec![3, 1], "unindexed q");

    // Killed; the next start has the setting on: everything comes back.
    let again = db.reopen_with(on).await;
    assert_eq!(db.scalar(count_indexes).await, with_text_index);
    assert_eq!(with_text(&again, "needle").await, vec![3, 1]);

    // Killed again; this time the setting was switched off meanwhile: the free-text
    // index is not built only to be dropped, the others are.
    assert!(again.begin_bulk_load(1_000).await.unwrap());
    assert_eq!(db.scalar(count_indexes).await, kept);
    let third = db.reopen_with(off).await;
    assert_eq!(db.scalar(count_indexes).await, plain);
    assert_eq!(with_text(&third, "needle").await, vec![3, 1]);
    third.end_bulk_load().await.unwrap();
    assert_eq!(db.scalar(count_indexes).await, plain);
}

/// The index builds at a load's end run side by side (PostgreSQL) and the list of what
/// was set aside is emptied only once all are done: a kill in between leaves some built
/// and all listed, and the next start builds the rest without tripping on those.
async fn a_build_killed_after_some_indexes_finishes_the_rest(db: Db) {
    let s = &db.store;
    let count_indexes = count_indexes(&db);
    let indexes = db.scalar(count_indexes).await;
    write(s, vec![from(1, "10.0.0.1", "/a/1")]).await;
    assert!(s.begin_bulk_load(1_000).await.unwrap());
    write(s, vec![from(2, "10.0.0.2", "/a/2")]).await;
    // Two of the builds finished before the kill (by name; the definitions matter not):
    // on SQLite one of them was never set aside.
    db.exec_raw("CREATE INDEX IF NOT EXISTS events_client_ip ON events (client_ip, ts)")
        .await;
    db.exec_raw("CREATE INDEX IF NOT EXISTS events_status ON events (status, ts)")
        .await;
    let built = match db.raw {
        Raw::Sqlite(_) => kept_during_load(&db) + 1,
        Raw::Postgres { .. } => 2,
    };
    assert_eq!(db.scalar(count_indexes).await, built);

    let again = db.reopen_with(SearchConfig::default()).await;
    assert_eq!(db.scalar(count_indexes).await, indexes);
    assert_eq!(
        db.scalar("SELECT count(*) FROM settings WHERE key = 'bulk_load.events_indexes'")
            .await,
        0,
        "nothing left listed"
    );
    assert_eq!(from_net(&again).await, vec![2, 1]);
    // And a later load sets all of them aside and builds them again.
    assert!(again.begin_bulk_load(1_000).await.unwrap());
    again.end_bulk_load().await.unwrap();
    assert_eq!(db.scalar(count_indexes).await, indexes);
}
