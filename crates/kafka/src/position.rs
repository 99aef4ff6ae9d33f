//! Where each partition stands in the store: the exactly-once-into-the-store half of
//! the Kafka source, free of any Kafka client so it is tested on its own.
//!
//! Kafka delivers at least once: after a `kill -9`, or when a partition moves to
//! another member before the last batch's offsets were committed, records come again.
//! Each stored batch therefore carries, in the same transaction as its events, a
//! checkpoint per (source, topic, partition) holding the next offset not yet stored.
//! A record below that offset is already in the store and is skipped, so a
//! re-delivered batch stores nothing twice whatever its boundaries.

use std::collections::HashMap;

use palisade_core::Checkpoint;

/// The checkpoint name of one partition of a source: `NAME#TOPIC/PARTITION`.
pub fn checkpoint_name(source: &str, topic: &str, partition: i32) -> String {
    format!("{source}#{topic}/{partition}")
}

/// The checkpoint a batch ending at `last_offset` carries.
pub fn checkpoint(source: &str, topic: &str, partition: i32, last_offset: i64) -> Checkpoint {
    Checkpoint {
        source: checkpoint_name(source, topic, partition),
        file_id: format!("kafka:{topic}:{partition}"),
        offset: u64::try_from(last_offset.saturating_add(1)).unwrap_or(0),
        line_no: 0,
        fingerprint: 0,
    }
}

/// The next offset a stored checkpoint says is not yet stored (0 when none is).
pub fn stored_next(checkpoint: Option<&Checkpoint>) -> i64 {
    checkpoint
        .map(|c| i64::try_from(c.offset).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Per partition, the first offset not yet stored, as far as this member knows. Filled
/// lazily from the store; cleared at every rebalance (another member may have stored
/// more while the partition was away).
#[derive(Debug, Default)]
pub struct StoredPositions {
    next: HashMap<(String, i32), i64>,
}

impl StoredPositions {
    /// The known position of a partition, `None` when it must be read from the store.
    pub fn get(&self, topic: &str, partition: i32) -> Option<i64> {
        self.next.get(&(topic.to_owned(), partition)).copied()
    }

    /// Records a position read from the store or just written.
    pub fn set(&mut self, topic: &str, partition: i32, next: i64) {
        let slot = self
            .next
            .entry((topic.to_owned(), partition))
            .or_insert(next);
        *slot = (*slot).max(next);
    }

    /// Forgets everything (after a rebalance).
    pub fn clear(&mut self) {
        self.next.clear();
    }

    /// Whether a record at `offset` is already stored.
    pub fn is_stored(&self, topic: &str, partition: i32, offset: i64) -> bool {
        self.get(topic, partition).is_some_and(|next| offset < next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_points_past_its_last_record() {
        let cp = checkpoint("k", "web", 2, 41);
        assert_eq!(cp.source, "k#web/2");
        assert_eq!(cp.offset, 42);
        assert_eq!(stored_next(Some(&cp)), 42);
        assert_eq!(stored_next(None), 0);
    }

    #[test]
    fn records_below_the_stored_position_are_skipped() {
        let mut p = StoredPositions::default();
        assert!(
            !p.is_stored("t", 0, 0),
            "unknown partitions are not assumed stored"
        );
        p.set("t", 0, 10);
        assert!(p.is_stored("t", 0, 9));
        assert!(!p.is_stored("t", 0, 10));
        assert!(!p.is_stored("t", 1, 3), "partitions are independent");
        p.set("t", 0, 5);
        assert_eq!(p.get("t", 0), Some(10), "a position never moves back");
        p.clear();
        assert_eq!(p.get("t", 0), None);
    }
}
