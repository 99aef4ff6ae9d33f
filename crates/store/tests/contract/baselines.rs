//! The baselines contract: endpoint baselines saved, replaced whole, forgotten, and
//! loaded back most-learnt first within a limit.

use palisade_core::Timestamp;
use palisade_store::BaselineRow;

use crate::harness::{Db, T0, contract};

contract!(baselines_save_replace_forget_and_load);

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
