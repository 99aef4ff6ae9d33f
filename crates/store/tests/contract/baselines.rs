//! The baselines contract: endpoint baselines saved, replaced whole, forgotten, and
//! loaded back most-learnt first within a limit.

use std::sync::Arc;

use palisade_core::Timestamp;
use palisade_store::{BaselineMerge, BaselineRow};

use crate::harness::{Db, T0, contract};

contract!(baselines_save_replace_forget_and_load);
contract!(baselines_merge_adds_to_what_is_stored_even_concurrently);

fn row(endpoint: &str, requests: i64, profile: &str) -> BaselineRow {
    BaselineRow {
        endpoint: endpoint.into(),
        requests,
        profile: profile.into(),
        updated_at: Timestamp(T0 + requests),
    }
}

async fn baselines_save_replace_forget_and_load(db: Db) {
    let s = &db.store;
    assert!(s.load_baselines(10).await.unwrap().is_empty());
    let first = [
        row("h GET /a", 10, "{\"n\":10}"),
        row("h GET /b/{n}", 300, "{\"n\":300}"),
        row("h POST /c", 50, "{\"n\":50}"),
    ];
    assert_eq!(s.save_baselines(&first, &[]).await.unwrap(), 3);
    // Replaced whole, one forgotten, in one call.
    let again = [row("h GET /a", 900, "{\"n\":900,\"x\":\"é\"}")];
    s.save_baselines(&again, &["h POST /c".to_owned(), "never saved".to_owned()])
        .await
        .unwrap();
    let loaded = s.load_baselines(10).await.unwrap();
    assert_eq!(loaded, vec![again[0].clone(), first[1].clone()]);
    let top = s.load_baselines(1).await.unwrap();
    assert_eq!(top.len(), 1);
    assert_eq!(top[0].endpoint, "h GET /a");
}

/// A merge that adds request counts and keeps the profile as the count, as the
/// learner's own merge does for every figure.
fn adding() -> BaselineMerge {
    Arc::new(|delta: &BaselineRow, stored: Option<&BaselineRow>| {
        if delta.profile == "bad" {
            return None;
        }
        let requests = delta.requests + stored.map_or(0, |s| s.requests);
        Some(BaselineRow {
            requests,
            profile: format!("{{\"n\":{requests}}}"),
            ..delta.clone()
        })
    })
}

async fn baselines_merge_adds_to_what_is_stored_even_concurrently(db: Db) {
    let s = &db.store;
    s.save_baselines(&[row("h GET /gone", 5, "{}")], &[])
        .await
        .unwrap();
    let written = s
        .merge_baselines(
            &[row("h GET /a", 10, "{}"), row("h GET /x", 1, "bad")],
            &["h GET /gone".to_owned()],
            adding(),
        )
        .await
        .unwrap();
    assert_eq!(written.len(), 1, "a delta the merge refuses is skipped");
    assert_eq!(written[0].requests, 10);
    // Two nodes merging at once: every delta counts (no last writer wins), also for
    // a row that does not exist yet.
    let node = |n: i64| {
        let s = s.clone();
        async move {
            for _ in 0..10 {
                s.merge_baselines(
                    &[row("h GET /a", n, "{}"), row("h GET /new", n, "{}")],
                    &[],
                    adding(),
                )
                .await
                .unwrap();
            }
        }
    };
    tokio::join!(node(1), node(2));
    let loaded = s.load_baselines(10).await.unwrap();
    let requests = |e: &str| loaded.iter().find(|r| r.endpoint == e).map(|r| r.requests);
    assert_eq!(requests("h GET /a"), Some(40));
    assert_eq!(requests("h GET /new"), Some(30));
    assert_eq!(requests("h GET /gone"), None, "forgotten");
    assert_eq!(requests("h GET /x"), None);
    let a = loaded.iter().find(|r| r.endpoint == "h GET /a").unwrap();
    assert_eq!(a.profile, "{\"n\":40}");
}
