//! The live bus across nodes of a scale-out topology, carried by PostgreSQL itself
//! (`LISTEN`/`NOTIFY`), so that a topology needs nothing beyond the database every node
//! already shares.
//!
//! ```text
//! node A: Bus ─► Publisher ─► NOTIFY palisade_live '{"n":A,"m":[[topic,data],…]}'
//!                          └► (> 7,900 bytes) INSERT live_relay … ; NOTIFY '{"n":A,"id":N}'
//! node B: Listener (LISTEN palisade_live) ─► skip own node ─► [(topic, data)] ─► Bus
//! ```
//!
//! PostgreSQL delivers the notifications of one publishing session in commit order, so
//! every listener sees one node's events in the order that node published them.
//! Delivery is at most once: a listener that loses its connection misses what was
//! published until it is back (it reconnects with backoff; the store stays the record,
//! the live feed is a view). Large batches go through the `live_relay` table because a
//! `NOTIFY` payload is limited to 8,000 bytes; [`Publisher::prune`] deletes rows older
//! than a listener could still want.

use std::time::Duration;

use futures_util::StreamExt as _;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, Client, NoTls};

use crate::StoreError;
use crate::redact_url;

/// The notification channel (with `_SCHEMA` appended when the URL sets a
/// `search_path`, so that deployments in different schemas of one database, like
/// tests, never hear each other: notifications are per database, not per schema).
pub const CHANNEL: &str = "palisade_live";

/// Largest payload sent inline (PostgreSQL refuses 8,000 bytes and more).
pub const INLINE_LIMIT: usize = 7_900;

/// Notifications a listener holds before it stops reading the connection (the
/// database then buffers them for it).
const LISTEN_QUEUE: usize = 1_024;

/// One relayed event: its topic name and its data as JSON text.
pub type Relayed = (String, String);

/// Where the relay connects and who this node is.
#[derive(Clone)]
pub struct LiveRelay {
    config: tokio_postgres::Config,
    node: String,
    channel: String,
}

impl std::fmt::Debug for LiveRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveRelay")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl LiveRelay {
    /// Parses the database URL (never connects). `node` names this process; its own
    /// notifications are skipped by its listener.
    pub fn new(url: &str, node: impl Into<String>) -> Result<Self, StoreError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            StoreError::InvalidUrl(format!("invalid PostgreSQL URL '{}': {e}", redact_url(url)))
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(3));
        }
        config.application_name("palisade-live-relay");
        let channel = channel_for(config.get_options());
        Ok(LiveRelay {
            config,
            node: node.into(),
            channel,
        })
    }

    /// The notification channel used.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// A dedicated connection for publishing (one session: one order).
    pub async fn publisher(&self) -> Result<Publisher, StoreError> {
        let (client, connection) = self.config.connect(NoTls).await.map_err(super::pg_err)?;
        let task = tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(message = "Live relay publisher connection closed.", %error);
            }
        });
        Ok(Publisher {
            client,
            node: self.node.clone(),
            channel: self.channel.clone(),
            _task: AbortOnDrop(task),
        })
    }

    /// A dedicated connection listening on [`CHANNEL`]. The listener ends (returns
    /// `None`) when the connection is lost; make a new one to go on.
    pub async fn listen(&self) -> Result<Listener, StoreError> {
        let (client, mut connection) = self.config.connect(NoTls).await.map_err(super::pg_err)?;
        let (tx, rx) = mpsc::channel(LISTEN_QUEUE);
        let channel = self.channel.clone();
        let task = tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = messages.next().await {
                match message {
                    Ok(AsyncMessage::Notification(n)) if n.channel() == channel => {
                        if tx.send(n.payload().to_owned()).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(message = "Live relay listener connection lost.", %error);
                        return;
                    }
                }
            }
        });
        client
            .batch_execute(&format!("LISTEN \"{}\"", self.channel))
            .await
            .map_err(super::pg_err)?;
        Ok(Listener {
            client,
            rx,
            node: self.node.clone(),
            _task: AbortOnDrop(task),
        })
    }
}

/// Aborts the connection task with its owner.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sends this node's events to the other nodes.
pub struct Publisher {
    client: Client,
    node: String,
    channel: String,
    _task: AbortOnDrop,
}

impl Publisher {
    /// Sends one batch (in order). A batch whose notification would be too large goes
    /// through the `live_relay` table.
    pub async fn send(&self, events: &[Relayed]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let payload = encode(&self.node, events);
        if payload.len() <= INLINE_LIMIT {
            self.client
                .execute("SELECT pg_notify($1, $2)", &[&self.channel, &payload])
                .await
                .map_err(super::pg_err)?;
            return Ok(());
        }
        let now = now_us();
        let row = self
            .client
            .query_one(
                "INSERT INTO live_relay (node, payload, created_us) VALUES ($1, $2, $3) RETURNING id",
                &[&self.node, &payload, &now],
            )
            .await
            .map_err(super::pg_err)?;
        let id: i64 = row.get(0);
        let pointer = serde_json::json!({ "n": self.node, "id": id }).to_string();
        self.client
            .execute("SELECT pg_notify($1, $2)", &[&self.channel, &pointer])
            .await
            .map_err(super::pg_err)?;
        Ok(())
    }

    /// Deletes relayed batches older than `age`; returns how many.
    pub async fn prune(&self, age: Duration) -> Result<u64, StoreError> {
        let cutoff = now_us().saturating_sub(i64::try_from(age.as_micros()).unwrap_or(i64::MAX));
        self.client
            .execute("DELETE FROM live_relay WHERE created_us < $1", &[&cutoff])
            .await
            .map_err(super::pg_err)
    }
}

/// Receives the other nodes' events.
pub struct Listener {
    client: Client,
    rx: mpsc::Receiver<String>,
    node: String,
    _task: AbortOnDrop,
}

impl Listener {
    /// The next batch from another node (this node's own are skipped); `None` once the
    /// connection is lost. A payload that cannot be read is logged and skipped.
    pub async fn next(&mut self) -> Option<Result<Vec<Relayed>, StoreError>> {
        loop {
            let payload = self.rx.recv().await?;
            match decode(&payload) {
                Some(Decoded::Inline { node, events }) if node != self.node => {
                    return Some(Ok(events));
                }
                Some(Decoded::Stored { node, id }) if node != self.node => {
                    return Some(self.fetch(id).await);
                }
                Some(_) => {}
                None => {
                    tracing::warn!(message = "Unreadable live relay notification skipped.");
                }
            }
        }
    }

    async fn fetch(&self, id: i64) -> Result<Vec<Relayed>, StoreError> {
        let row = self
            .client
            .query_opt("SELECT payload FROM live_relay WHERE id = $1", &[&id])
            .await
            .map_err(super::pg_err)?;
        let Some(row) = row else {
            return Ok(Vec::new());
        };
        let payload: String = row.get(0);
        Ok(match decode(&payload) {
            Some(Decoded::Inline { events, .. }) => events,
            _ => Vec::new(),
        })
    }
}

/// [`CHANNEL`], plus `_SCHEMA` when the connection options set a `search_path`
/// (lower-case letters, digits and `_` kept; at most 63 bytes, PostgreSQL's limit).
fn channel_for(options: Option<&str>) -> String {
    let mut channel = CHANNEL.to_owned();
    let schema = options
        .and_then(|o| o.split("search_path=").nth(1))
        .map(|rest| {
            rest.chars()
                .take_while(|c| !c.is_whitespace() && *c != ',')
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .map(|c| c.to_ascii_lowercase())
                .collect::<String>()
        })
        .unwrap_or_default();
    if !schema.is_empty() {
        channel.push('_');
        channel.push_str(&schema);
    }
    channel.truncate(63);
    channel
}

fn now_us() -> i64 {
    palisade_core::Timestamp::now().as_micros()
}

/// `{"n":NODE,"m":[[TOPIC,DATA],…]}` with each DATA copied as it is (already JSON).
pub fn encode(node: &str, events: &[Relayed]) -> String {
    let mut out = String::with_capacity(
        32 + events
            .iter()
            .map(|(t, d)| t.len() + d.len() + 8)
            .sum::<usize>(),
    );
    out.push_str("{\"n\":");
    out.push_str(&serde_json::Value::String(node.to_owned()).to_string());
    out.push_str(",\"m\":[");
    for (i, (topic, data)) in events.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('[');
        out.push_str(&serde_json::Value::String(topic.clone()).to_string());
        out.push(',');
        out.push_str(data);
        out.push(']');
    }
    out.push_str("]}");
    out
}

/// A notification, read.
#[derive(Debug, PartialEq)]
pub enum Decoded {
    /// The events themselves.
    Inline {
        /// The publishing node.
        node: String,
        /// Its events, in order.
        events: Vec<Relayed>,
    },
    /// A batch kept in `live_relay`.
    Stored {
        /// The publishing node.
        node: String,
        /// The row.
        id: i64,
    },
}

/// Reads a notification payload (`None` when it is not one of ours).
pub fn decode(payload: &str) -> Option<Decoded> {
    let value: serde_json::Value = serde_json::from_str(payload).ok()?;
    let node = value.get("n")?.as_str()?.to_owned();
    if let Some(id) = value.get("id").and_then(serde_json::Value::as_i64) {
        return Some(Decoded::Stored { node, id });
    }
    let events = value
        .get("m")?
        .as_array()?
        .iter()
        .filter_map(|pair| {
            let topic = pair.get(0)?.as_str()?.to_owned();
            let data = pair.get(1)?.to_string();
            Some((topic, data))
        })
        .collect();
    Some(Decoded::Inline { node, events })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_channel_follows_the_schema() {
        assert_eq!(channel_for(None), "palisade_live");
        assert_eq!(
            channel_for(Some("-c search_path=T_12,public")),
            "palisade_live_t_12"
        );
        assert!(channel_for(Some(&format!("-c search_path={}", "x".repeat(100)))).len() <= 63);
    }

    #[test]
    fn payloads_round_trip_with_awkward_text() {
        let events = vec![
            ("threats".to_owned(), r#"{"id":1,"p":"/a\"b]}"}"#.to_owned()),
            ("job:7".to_owned(), "null".to_owned()),
        ];
        let text = encode("node \"x\"", &events);
        assert_eq!(
            decode(&text),
            Some(Decoded::Inline {
                node: "node \"x\"".into(),
                events
            })
        );
        assert_eq!(
            decode(r#"{"n":"a","id":42}"#),
            Some(Decoded::Stored {
                node: "a".into(),
                id: 42
            })
        );
        assert_eq!(decode("not json"), None);
        assert_eq!(decode(r#"{"m":[]}"#), None);
    }
}
