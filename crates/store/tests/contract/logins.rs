//! The login contract: failure runs counted atomically (no update lost under
//! concurrency), forgotten after a quiet period, cleared; known addresses remembered and
//! bounded per user.

use std::collections::BTreeSet;

use palisade_core::Timestamp;
use palisade_core::security::{LoginFailures, NewUser, Role};
use palisade_store::KNOWN_ADDRESSES_PER_USER;

use crate::harness::{Db, T0, contract};

contract!(
    concurrent_failures_are_all_counted,
    runs_are_per_username_and_client,
    quiet_runs_are_forgotten,
    runs_are_cleared_per_client_or_all,
    known_addresses_are_remembered_and_bounded,
);

fn at(n: i64) -> Timestamp {
    Timestamp(T0 + n)
}

/// The reproduction of finding 4: 60 parallel failures used to end as a count of 3.
async fn concurrent_failures_are_all_counted(db: Db) {
    const N: u32 = 60;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..N {
        let store = db.store.clone();
        tasks.spawn(async move {
            store
                .record_login_failure("admin", "192.0.2.1", at(i64::from(i)), at(0))
                .await
                .unwrap()
        });
    }
    let mut counts = BTreeSet::new();
    while let Some(run) = tasks.join_next().await {
        // Each caller sees its own failure counted: every count from 1 to N once.
        assert!(counts.insert(run.unwrap().failures));
    }
    assert_eq!(counts, (1..=N).collect::<BTreeSet<_>>());
    let run = db
        .store
        .login_failures("admin", "192.0.2.1", at(0))
        .await
        .unwrap();
    assert_eq!(
        run,
        Some(LoginFailures {
            failures: N,
            last_failure_at: at(i64::from(N) - 1),
        })
    );
}

async fn runs_are_per_username_and_client(db: Db) {
    let s = &db.store;
    for _ in 0..3 {
        s.record_login_failure("admin", "192.0.2.1", at(5), at(0))
            .await
            .unwrap();
    }
    let other_client = s
        .record_login_failure("admin", "192.0.2.2", at(6), at(0))
        .await
        .unwrap();
    assert_eq!(other_client.failures, 1);
    // Usernames need not exist and are compared exactly.
    let other_name = s
        .record_login_failure("Admin", "192.0.2.1", at(7), at(0))
        .await
        .unwrap();
    assert_eq!(other_name.failures, 1);
    let wide = s
        .record_login_failure("admin", "*", at(8), at(0))
        .await
        .unwrap();
    assert_eq!(wide.failures, 1);
    let run = s
        .login_failures("admin", "192.0.2.1", at(0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((run.failures, run.last_failure_at), (3, at(5)));
    // A failure recorded late with an older time does not move the last time back.
    let run = s
        .record_login_failure("admin", "192.0.2.1", at(1), at(0))
        .await
        .unwrap();
    assert_eq!((run.failures, run.last_failure_at), (4, at(5)));
    assert_eq!(
        s.login_failures("nobody", "192.0.2.1", at(0))
            .await
            .unwrap(),
        None
    );
}

async fn quiet_runs_are_forgotten(db: Db) {
    let s = &db.store;
    for t in [10, 20] {
        s.record_login_failure("bob", "192.0.2.1", at(t), at(0))
            .await
            .unwrap();
    }
    s.record_login_failure("carol", "192.0.2.1", at(100), at(0))
        .await
        .unwrap();
    // Read with a later horizon: the run is past it and reads as none.
    assert_eq!(
        s.login_failures("bob", "192.0.2.1", at(21)).await.unwrap(),
        None
    );
    assert!(
        s.login_failures("bob", "192.0.2.1", at(20))
            .await
            .unwrap()
            .is_some()
    );
    // The next failure past the horizon starts a new run.
    let run = s
        .record_login_failure("bob", "192.0.2.1", at(50), at(30))
        .await
        .unwrap();
    assert_eq!((run.failures, run.last_failure_at), (1, at(50)));
    // Forgetting deletes the quiet runs only.
    assert_eq!(s.forget_login_failures(at(60)).await.unwrap(), 1);
    assert_eq!(
        s.login_failures("bob", "192.0.2.1", at(0)).await.unwrap(),
        None
    );
    assert!(
        s.login_failures("carol", "192.0.2.1", at(0))
            .await
            .unwrap()
            .is_some()
    );
}

async fn runs_are_cleared_per_client_or_all(db: Db) {
    let s = &db.store;
    for client in ["192.0.2.1", "192.0.2.2", "*"] {
        s.record_login_failure("dave", client, at(1), at(0))
            .await
            .unwrap();
    }
    s.record_login_failure("erin", "192.0.2.1", at(1), at(0))
        .await
        .unwrap();
    assert_eq!(
        s.clear_login_failures("dave", Some("192.0.2.1"))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.login_failures("dave", "192.0.2.1", at(0)).await.unwrap(),
        None
    );
    assert!(
        s.login_failures("dave", "*", at(0))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(s.clear_login_failures("dave", None).await.unwrap(), 2);
    assert_eq!(s.clear_login_failures("dave", None).await.unwrap(), 0);
    assert!(
        s.login_failures("erin", "192.0.2.1", at(0))
            .await
            .unwrap()
            .is_some(),
        "other users keep their runs"
    );
}

async fn known_addresses_are_remembered_and_bounded(db: Db) {
    let s = &db.store;
    let user = s
        .create_user(NewUser {
            username: "frank".into(),
            role: Role::Viewer,
            password_hash: "h".into(),
        })
        .await
        .unwrap();
    assert!(
        !s.is_known_login_address(user.id, "192.0.2.1")
            .await
            .unwrap()
    );
    s.remember_login_address(user.id, "192.0.2.1", at(1))
        .await
        .unwrap();
    s.remember_login_address(user.id, "192.0.2.1", at(2))
        .await
        .unwrap();
    assert!(
        s.is_known_login_address(user.id, "192.0.2.1")
            .await
            .unwrap()
    );
    assert!(
        !s.is_known_login_address(user.id, "192.0.2.2")
            .await
            .unwrap()
    );
    // Beyond the bound, the least recently used go; 192.0.2.1 is used last.
    let n = i64::from(KNOWN_ADDRESSES_PER_USER);
    for i in 0..n {
        s.remember_login_address(user.id, &format!("198.51.100.{i}"), at(10 + i))
            .await
            .unwrap();
    }
    s.remember_login_address(user.id, "192.0.2.1", at(10 + n))
        .await
        .unwrap();
    assert!(
        s.is_known_login_address(user.id, "192.0.2.1")
            .await
            .unwrap()
    );
    assert!(
        !s.is_known_login_address(user.id, "198.51.100.0")
            .await
            .unwrap(),
        "the oldest address was forgotten"
    );
    assert!(
        s.is_known_login_address(user.id, &format!("198.51.100.{}", n - 1))
            .await
            .unwrap()
    );
    // They go with their user.
    assert!(s.delete_user(user.id).await.unwrap());
    assert!(
        !s.is_known_login_address(user.id, "192.0.2.1")
            .await
            .unwrap()
    );
}
