//! Bulk loads: a large import into a small SQLite table sets the events indexes aside
//! and builds them at its end; queries answer the same meanwhile, and a load that is
//! killed gets its indexes back at the next migration. PostgreSQL keeps its indexes.

use palisade_core::Event;
use palisade_store::{EventQuery, SearchConfig, SharedStore};

use crate::harness::{Db, Raw, T0, contract, ev, net, write};

contract!(a_bulk_load_answers_the_same_and_its_indexes_come_back);

fn from(ts: i64, ip: &str, path: &str) -> Event {
    Event {
        client_ip: Some(ip.parse().unwrap()),
        path: Some(path.into()),
        method: Some("GET".into()),
        status: Some(200),
        ..ev(ts)
    }
}

/// Offsets from T0 of the events from 10.0.0.0/24 whose path starts with `/a`.
async fn from_net(s: &SharedStore) -> Vec<i64> {
    let page = s
        .query_events(&EventQuery {
            client: net("10.0.0.0/24"),
            path_prefix: Some("/a".into()),
            limit: 100,
            ..EventQuery::default()
        })
        .await
        .unwrap();
    page.items
        .iter()
        .map(|e| e.event.ts.as_micros() - T0)
        .collect()
}

async fn a_bulk_load_answers_the_same_and_its_indexes_come_back(db: Db) {
    let s = &db.store;
    let sqlite = matches!(db.raw, Raw::Sqlite(_));
    let count_indexes = if sqlite {
        "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND sql IS NOT NULL"
    } else {
        "SELECT count(*)::int8 FROM pg_indexes WHERE tablename = 'events' AND schemaname = current_schema()"
    };
    let indexes = db.scalar(count_indexes).await;
    assert!(indexes >= 6, "{indexes} indexes on events");
    write(
        s,
        vec![from(1, "10.0.0.1", "/a/1"), from(2, "10.0.1.1", "/a/2")],
    )
    .await;

    // An import of 1,000 rows into a table of 2: set aside on SQLite only.
    assert_eq!(s.begin_bulk_load(1_000).await.unwrap(), sqlite);
    let during = db.scalar(count_indexes).await;
    assert_eq!(during, if sqlite { 0 } else { indexes });
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
    assert_eq!(again.begin_bulk_load(1_000).await.unwrap(), sqlite);
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
