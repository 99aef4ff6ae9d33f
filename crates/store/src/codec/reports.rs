//! Report rows to and from the domain types, shared by both backends.

use palisade_core::Timestamp;

use crate::ReportMeta;

/// `SELECT` list of a report's description, in [`ReportRow`] order.
pub(crate) const REPORT_META_COLUMNS: &str =
    "id, kind, range_from, range_to, created_at, created_by";

/// A report's description as read.
pub(crate) struct ReportRow {
    pub id: i64,
    pub kind: String,
    pub from: i64,
    pub to: i64,
    pub created_at: i64,
    pub created_by: String,
}

impl ReportRow {
    pub fn into_meta(self) -> ReportMeta {
        ReportMeta {
            id: self.id,
            kind: self.kind,
            from: Timestamp(self.from),
            to: Timestamp(self.to),
            created_at: Timestamp(self.created_at),
            created_by: self.created_by,
        }
    }
}
