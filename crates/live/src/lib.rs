//! The live event bus behind `GET /api/v1/ws`.
//!
//! Every event that people watch live (alerts, threats, traffic batches, activities,
//! metrics, job progress and logs, later flows and devices) is published once on the
//! [`Bus`]: it takes the next number of one server-wide sequence, is serialized once to
//! JSON (`{"seq":N,"topic":"…","data":{…}}`, shared by every subscriber), kept in a
//! bounded replay buffer, and broadcast. Publishing never waits: a subscriber that
//! falls behind the broadcast buffer is told so ([`Next::Lagged`]) and the WebSocket
//! disconnects it with a clear reason, without slowing anyone else. A client that
//! reconnects with the last `seq` it saw gets what it missed from the replay buffer, or
//! a gap notice when that is older than the buffer holds.
//!
//! Multi-node: the bus is the one seam between publishers and the feed; a node that
//! receives events from another (the scale-out relay over PostgreSQL, see
//! `palisade_store::relay`) calls [`Bus::publish_relayed`] with them, and every local
//! client sees them; messages carry their [`Origin`] so a relay never sends a relayed
//! message back. Sequence numbers are this node's: a relayed event takes the next
//! number here, in the order it arrived here.

#![warn(missing_docs)]

mod bus;
mod topic;

pub use bus::{Bus, BusConfig, Message, Next, Origin, Subscription};
pub use topic::{Topic, TopicError};
