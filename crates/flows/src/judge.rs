//! A hook for models that judge finished flows (palisade-models' flow model) without
//! this crate depending on them: the [`FlowSink`](crate::import::FlowSink) hands each
//! batch to the judge before the flows become events, and the fields it returns are
//! added to each flow's event, where the behaviour scenarios turn them into threats
//! (linked to their flows like every other flow threat).

use crate::flow::FlowRecord;

/// Judges finished flows; the same judge serves file imports and live captures.
pub trait FlowJudge: Send + Sync {
    /// Extra event fields for each flow of `flows` (same order and length; an empty
    /// list for a flow with nothing to say). `flows` is in flow-start order.
    fn judge(&self, flows: &[FlowRecord]) -> Vec<Vec<(String, String)>>;
}
