//! What the resume tests share: the binary run to success, and the threats a data
//! directory's SQLite store holds afterwards (read through the store's own API). Kept
//! apart from `common/mod.rs` so that the test binaries not reading a store do not
//! compile (and warn about) these.

use std::path::Path;
use std::process::Output;

use palisade_core::threat::Threat;
use palisade_store::{Cursor, SharedStore, ThreatQuery};

/// `palisade ARGS --data-dir DATA`, which must succeed (its output is shown if not).
pub fn palisade_ok(data: &Path, args: &[&str]) -> Output {
    let o = super::common::palisade(data, args)
        .output()
        .expect("run palisade");
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// A runtime for the store's async API.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// The data directory's SQLite store.
pub fn open(data: &Path) -> SharedStore {
    palisade_store::open("sqlite://palisade.db", data).expect("open store")
}

/// Every stored threat, in the order the API pages them.
pub fn threats(data: &Path) -> Vec<Threat> {
    runtime().block_on(async {
        let store = open(data);
        let mut all = Vec::new();
        let mut query = ThreatQuery {
            limit: 500,
            ..ThreatQuery::default()
        };
        loop {
            let page = store.query_threats(&query).await.expect("threats");
            all.extend(page.items.into_iter().map(|t| t.threat));
            match page.next_cursor {
                Some(next) => query.cursor = Some(Cursor::decode(&next).expect("cursor")),
                None => break,
            }
        }
        all
    })
}
