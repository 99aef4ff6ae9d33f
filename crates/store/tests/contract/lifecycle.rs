//! Schema migration and health: what every start of the service relies on.

use std::time::Duration;

use crate::harness::{Db, contract, ev, write};

contract!(migrate_twice_is_idempotent, ping_returns_a_latency);

async fn migrate_twice_is_idempotent(db: Db) {
    let s = &db.store;
    write(s, vec![ev(1)]).await;
    s.migrate().await.unwrap();
    s.migrate().await.unwrap();
    assert_eq!(s.count_events().await.unwrap(), 1);
    assert!(matches!(s.backend(), "sqlite" | "postgres"));
}

async fn ping_returns_a_latency(db: Db) {
    let d = db.store.ping().await.unwrap();
    assert!(d < Duration::from_secs(5));
}
