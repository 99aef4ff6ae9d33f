//! The stages fed by the writer with every group of batches once it is stored (so
//! they know the event ids): each runs on its own supervised task behind a bounded
//! channel, so a stage that falls behind slows ingest instead of losing events.

pub mod behaviour;
mod in_order;
pub mod inspector;
pub mod live_traffic;
mod slices;
pub mod software;
