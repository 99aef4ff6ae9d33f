//! The posture contract: runs and their results, the current posture (latest result of
//! each check), history pages, pruning, and the last use of credentials.

use palisade_core::Timestamp;
use palisade_core::posture::CheckStatus;
use palisade_core::security::{NewApiKey, NewUser, Role, Scope};
use palisade_core::severity::Severity;
use palisade_store::{NewPostureRun, PostureResult, PostureRunQuery, SharedStore};

use crate::harness::{Db, T0, contract};

contract!(
    runs_store_results_and_the_latest_of_each_check_is_current,
    run_history_pages_newest_first_and_prunes_old_runs,
    credential_use_lists_admins_and_live_keys_with_last_use,
);

fn result(id: &str, status: CheckStatus) -> PostureResult {
    PostureResult {
        check_id: id.into(),
        title: format!("The {id} check"),
        status,
        severity: Severity::Error,
        checked: "what was checked".into(),
        found: "what was found\0".into(),
        fix: (status != CheckStatus::Pass).then(|| "how to fix it".into()),
        detail: serde_json::json!({"listeners": [{"address": "0.0.0.0:8080"}]}),
    }
}

async fn run(s: &SharedStore, at: i64, cause: &str, results: Vec<PostureResult>) -> i64 {
    s.insert_posture_run(&NewPostureRun {
        started_at: Timestamp(T0 + at),
        finished_at: Timestamp(T0 + at + 5),
        cause: cause.into(),
        score: Some(50),
        results,
    })
    .await
    .unwrap()
}

async fn runs_store_results_and_the_latest_of_each_check_is_current(db: Db) {
    let s = &db.store;
    let first = run(
        s,
        0,
        "schedule",
        vec![
            result("a", CheckStatus::Fail),
            result("b", CheckStatus::Pass),
            result("c", CheckStatus::NotApplicable),
        ],
    )
    .await;
    let second = run(s, 10, "manual:a", vec![result("a", CheckStatus::Pass)]).await;
    assert!(second > first);
    let current = s.latest_posture_results().await.unwrap();
    let ids: Vec<(&str, i64)> = current
        .iter()
        .map(|r| (r.result.check_id.as_str(), r.run_id))
        .collect();
    assert_eq!(ids, vec![("a", second), ("b", first), ("c", first)]);
    assert_eq!(current[0].result.status, CheckStatus::Pass);
    assert_eq!(current[0].checked_at, Timestamp(T0 + 15));
    let stored = s.posture_run_results(first).await.unwrap();
    assert_eq!(stored.len(), 3);
    assert_eq!(stored[0].found, "what was found\u{fffd}");
    assert_eq!(stored[0].detail, result("a", CheckStatus::Fail).detail);
    assert_eq!(stored[0].fix.as_deref(), Some("how to fix it"));
    assert_eq!(stored[1].fix, None);
    let runs = s
        .posture_runs(&PostureRunQuery {
            limit: 10,
            ..PostureRunQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(runs.items[1].id, first);
    assert_eq!(
        (
            runs.items[1].passed,
            runs.items[1].failed,
            runs.items[1].skipped
        ),
        (1, 1, 1)
    );
    assert_eq!(runs.items[0].cause, "manual:a");
    assert_eq!(runs.items[0].score, Some(50));
}

async fn run_history_pages_newest_first_and_prunes_old_runs(db: Db) {
    let s = &db.store;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(run(s, i * 100, "schedule", vec![result("a", CheckStatus::Pass)]).await);
    }
    // Only check b: its single run stays, whatever its age.
    let lone = run(s, -1000, "manual:b", vec![result("b", CheckStatus::Warn)]).await;
    let page = s
        .posture_runs(&PostureRunQuery {
            limit: 2,
            ..PostureRunQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        page.items.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![ids[4], ids[3]]
    );
    let next = s
        .posture_runs(&PostureRunQuery {
            limit: 10,
            cursor: palisade_store::Cursor::decode(page.next_cursor.as_deref().unwrap()),
            from: Some(Timestamp(T0 + 100)),
            ..PostureRunQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        next.items.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![ids[2], ids[1]]
    );
    assert!(next.next_cursor.is_none());
    let gone = s.prune_posture_runs(Timestamp(T0 + 350)).await.unwrap();
    assert_eq!(gone, 4, "runs 0-3 go; run 4 and check b's only run stay");
    let left = s
        .posture_runs(&PostureRunQuery {
            limit: 10,
            ..PostureRunQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        left.items.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![ids[4], lone]
    );
    assert!(s.posture_run_results(ids[0]).await.unwrap().is_empty());
}

async fn credential_use_lists_admins_and_live_keys_with_last_use(db: Db) {
    let s = &db.store;
    let user = |name: &str, role| NewUser {
        username: name.into(),
        role,
        password_hash: "$argon2id$x".into(),
    };
    let root = s.create_user(user("root", Role::Admin)).await.unwrap();
    let ops = s.create_user(user("ops", Role::Admin)).await.unwrap();
    s.create_user(user("ana", Role::Analyst)).await.unwrap();
    let mut gone = s.create_user(user("gone", Role::Admin)).await.unwrap();
    gone.disabled = true;
    s.update_user(&gone).await.unwrap();
    s.record_login(root.id, Timestamp(T0 + 50)).await.unwrap();
    // An older login never moves the time back.
    s.record_login(root.id, Timestamp(T0 + 10)).await.unwrap();
    let key = |name: &str| NewApiKey {
        name: name.into(),
        prefix: format!("pal_{name}"),
        key_hash: "h".into(),
        scopes: vec![Scope::Read],
        created_by: None,
    };
    let sensor = s.create_api_key(key("sensor")).await.unwrap();
    let old = s.create_api_key(key("old")).await.unwrap();
    s.touch_api_key(sensor.id, Timestamp(T0 + 99))
        .await
        .unwrap();
    s.revoke_api_key(old.id, Timestamp(T0)).await.unwrap();
    let list = s.credential_use().await.unwrap();
    let seen: Vec<(&str, &str, Option<Timestamp>)> = list
        .iter()
        .map(|c| (c.kind, c.name.as_str(), c.last_used_at))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("api_key", "sensor", Some(Timestamp(T0 + 99))),
            ("user", "ops", None),
            ("user", "root", Some(Timestamp(T0 + 50))),
        ]
    );
    assert_eq!(list[1].role, Some(Role::Admin));
    assert_eq!(list[1].id, ops.id);
    // Deleting a user forgets its logins.
    s.delete_user(root.id).await.unwrap();
    assert_eq!(s.credential_use().await.unwrap().len(), 2);
}
