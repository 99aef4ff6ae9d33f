//! The runtime switch of a source: paused or running, kept as a stored setting so that
//! it survives restarts and every node of a topology follows it (`POST
//! /api/v1/sources/{name}/pause` and `/resume` set it; the source reads it).

use palisade_store::{SharedStore, StoreError};

/// The setting holding a source's switch.
pub fn paused_key(source: &str) -> String {
    format!("source.paused.{source}")
}

/// Whether the source is switched off (no setting: running).
pub async fn is_paused(store: &SharedStore, source: &str) -> Result<bool, StoreError> {
    Ok(store
        .setting(&paused_key(source))
        .await?
        .is_some_and(|v| v == "true"))
}

/// Switches the source off (`true`) or on.
pub async fn set_paused(store: &SharedStore, source: &str, paused: bool) -> Result<(), StoreError> {
    store
        .put_setting(&paused_key(source), if paused { "true" } else { "false" })
        .await
}
