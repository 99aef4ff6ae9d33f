//! The `[[kafka]]` source: a consumer group whose records go through the same parsers,
//! [`Batcher`] and [`BatchWriter`] as a tailed file.
//!
//! ```text
//! broker ─► librdkafka fetch queue (bounded) ─► recv ─► skip if already stored
//!        ─► Batcher per partition ─► BatchWriter::write (waits until stored)
//!        ─► commit offsets (after the store has the batch)
//! ```
//!
//! At least once from Kafka, exactly once into the store: offsets are committed only
//! once the batch is stored, and every batch carries a checkpoint per partition in the
//! same transaction as its events (see [`crate::position`]), so a record delivered
//! again (after `kill -9`, or a partition moving between members) is recognised and
//! skipped. One batch is in flight at a time: while the store is slow nothing more is
//! taken from librdkafka, whose fetch queue is bounded (`queued.max.messages.kbytes`),
//! so memory stays bounded and a rebalance never happens with a batch half-written.
//!
//! A broker that is down (at start or later) is not an error for the service: the
//! source shows `error` with librdkafka's reason (health turns degraded), librdkafka
//! reconnects with backoff, and reading resumes from the committed offsets.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use palisade_core::Shutdown;
use palisade_core::metrics::{Counter, registry};
use palisade_sources::batcher::{Batcher, choose_parser};
use palisade_sources::{BatchWriter, SourceState, SourceStatus, WriterError};
use palisade_store::SharedStore;
use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tokio::time::Instant;

use crate::config::KafkaSourceConfig;
use crate::position::{self, StoredPositions};

/// How often librdkafka reports statistics (lag per partition, broker states).
const STATS_INTERVAL_MS: &str = "2000";

/// How often topic metadata is refreshed (librdkafka's default is 5 minutes).
const METADATA_REFRESH_MS: &str = "5000";

/// Most fetched data librdkafka holds per partition before it stops fetching.
const FETCH_QUEUE_KBYTES: &str = "16384";

/// Longest pause after a consumer error or a store read failure.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Why the source could not start.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// librdkafka refused the configuration (an unknown or invalid `options` key).
    #[error("the Kafka client refused the configuration: {0}")]
    Client(#[from] KafkaError),
    /// The record format cannot be used.
    #[error("{0}")]
    Format(#[from] palisade_sources::batcher::FormatChoiceError),
}

/// One partition's consumer lag as librdkafka last measured it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PartitionLag {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// Records in the partition not yet consumed by the group (high watermark from
    /// fetches minus the consumed position; `-1` when not known yet).
    pub lag: i64,
}

/// A broker as librdkafka last saw it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BrokerState {
    /// `host:port/id`.
    pub name: String,
    /// librdkafka's state (`UP`, `DOWN`, `CONNECT`, …).
    pub state: String,
}

/// One partition's committed position.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CommittedOffset {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The next offset the group reads (the last stored record's offset + 1).
    pub offset: i64,
}

/// The last commit of stored offsets.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LastCommit {
    /// When.
    pub at: palisade_core::Timestamp,
    /// What.
    pub offsets: Vec<CommittedOffset>,
}

/// What `/api/v1/sources` and `/api/v1/health/detailed` show of a Kafka source (its
/// status `detail`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct KafkaDetail {
    /// The bootstrap brokers configured.
    pub bootstrap: String,
    /// The consumer group.
    pub group: String,
    /// Subscribed topics.
    pub topics: Vec<String>,
    /// Brokers and whether they are reachable (from librdkafka's statistics).
    pub brokers: Vec<BrokerState>,
    /// Partitions assigned to this member, with their consumer lag.
    pub partitions: Vec<PartitionLag>,
    /// The last commit of stored offsets by this member.
    pub last_commit: Option<LastCommit>,
    /// Switched off by an operator.
    pub paused: bool,
}

/// Shared between librdkafka's callbacks and the consuming task.
struct SourceContext {
    name: String,
    status: Arc<SourceStatus>,
    rebalanced: AtomicBool,
    detail: Mutex<KafkaDetail>,
}

impl SourceContext {
    /// Changes the detail and publishes it on the status.
    fn update(&self, change: impl FnOnce(&mut KafkaDetail)) {
        let mut d = self.detail.lock().unwrap_or_else(|p| p.into_inner());
        change(&mut d);
        if let Ok(v) = serde_json::to_value(&*d) {
            self.status.set_detail(v);
        }
    }
}

impl SourceContext {
    fn is_paused(&self) -> bool {
        self.detail.lock().unwrap_or_else(|p| p.into_inner()).paused
    }
}

impl ClientContext for SourceContext {
    fn stats(&self, stats: Statistics) {
        let mut lags = Vec::new();
        for (topic, t) in &stats.topics {
            for (p, part) in &t.partitions {
                // librdkafka lists an internal partition -1 per topic.
                if *p < 0 || !part.desired {
                    continue;
                }
                lags.push(PartitionLag {
                    topic: topic.clone(),
                    partition: *p,
                    lag: part.consumer_lag,
                });
                registry()
                    .gauge(
                        "palisade_kafka_consumer_lag",
                        "Records in a partition not yet consumed by a Kafka source.",
                        &["source", "topic", "partition"],
                        &[&self.name, topic, &p.to_string()],
                    )
                    .set(part.consumer_lag.max(0));
            }
        }
        lags.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        let total: i64 = lags.iter().map(|l| l.lag.max(0)).sum();
        let consumed = self.status.snapshot().lines;
        self.status.set_position(
            consumed,
            consumed.saturating_add(u64::try_from(total).unwrap_or(0)),
        );
        let mut brokers: Vec<BrokerState> = stats
            .brokers
            .values()
            .filter(|b| b.nodeid >= 0)
            .map(|b| BrokerState {
                name: b.name.clone(),
                state: b.state.clone(),
            })
            .collect();
        brokers.sort_by(|a, b| a.name.cmp(&b.name));
        self.update(|d| {
            d.partitions = lags;
            d.brokers = brokers;
        });
        // A broker error clears once a broker is up again, even when no record has
        // arrived since (an idle topic).
        let up = stats
            .brokers
            .values()
            .any(|b| b.nodeid >= 0 && b.state == "UP");
        if up && self.status.state() == SourceState::Error && !self.is_paused() {
            self.status.set_state(SourceState::Running, None);
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(message = "Kafka client error.", source = %self.name, %error, reason);
        if self.is_paused() {
            return;
        }
        self.status
            .set_state(SourceState::Error, Some(format!("kafka: {reason}")));
    }
}

/// Records of one partition waiting for their batch.
struct PartitionBatch {
    batcher: Batcher,
    last_offset: i64,
}

/// A record copied out of librdkafka's buffer (so nothing borrowed lives across an
/// await).
struct Record {
    topic: String,
    partition: i32,
    offset: i64,
    payload: Vec<u8>,
}

/// Meters shared by every Kafka source.
struct Meters {
    skipped: Arc<Counter>,
    committed: Arc<Counter>,
}

impl Meters {
    fn new(name: &str) -> Self {
        let r = registry();
        Meters {
            skipped: r.counter(
                "palisade_kafka_redelivered_skipped_total",
                "Kafka records delivered again and skipped because the store already has them.",
                &["source"],
                &[name],
            ),
            committed: r.counter(
                "palisade_kafka_committed_records_total",
                "Kafka records stored and committed.",
                &["source"],
                &[name],
            ),
        }
    }
}

fn client_config(config: &KafkaSourceConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    // Defaults the operator's `options` may change.
    c.set(
        "session.timeout.ms",
        config.session_timeout.as_millis().to_string(),
    )
    .set(
        "heartbeat.interval.ms",
        (config.session_timeout.as_millis() / 6)
            .max(100)
            .to_string(),
    )
    .set("queued.max.messages.kbytes", FETCH_QUEUE_KBYTES)
    .set("statistics.interval.ms", STATS_INTERVAL_MS)
    // A subscribed topic created later (or a broker that was down at start) is
    // noticed within this, not librdkafka's default 5 minutes.
    .set("topic.metadata.refresh.interval.ms", METADATA_REFRESH_MS);
    for (k, v) in &config.options {
        c.set(k, v);
    }
    // What the delivery contract rests on (refused in `options` by the config).
    c.set("bootstrap.servers", &config.brokers)
        .set("group.id", &config.group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", config.start.as_reset());
    c
}

/// Runs the source until shutdown: subscribes, reads, stores, commits. Problems are
/// shown in `status` and retried; this returns only at shutdown (after the last batch
/// is stored and committed) or when the configuration cannot work at all.
pub async fn run(
    config: KafkaSourceConfig,
    store: SharedStore,
    writer: BatchWriter,
    status: Arc<SourceStatus>,
    shutdown: Shutdown,
) {
    if let Err(error) = consume(config, store, writer, status.clone(), shutdown).await {
        tracing::error!(message = "The Kafka source cannot run.", %error);
        status.set_state(SourceState::Error, Some(error.to_string()));
    }
}

async fn consume(
    config: KafkaSourceConfig,
    store: SharedStore,
    writer: BatchWriter,
    status: Arc<SourceStatus>,
    mut shutdown: Shutdown,
) -> Result<(), SourceError> {
    let parser = choose_parser(&config.format, &[])?;
    let context = Arc::new(SourceContext {
        name: config.name.clone(),
        status: status.clone(),
        rebalanced: AtomicBool::new(false),
        detail: Mutex::new(KafkaDetail {
            bootstrap: config.brokers.clone(),
            group: config.group.clone(),
            topics: config.topics.clone(),
            ..KafkaDetail::default()
        }),
    });
    context.update(|_| {});
    let consumer: StreamConsumer<ContextRef> =
        client_config(&config).create_with_context(ContextRef(context.clone()))?;
    let topics: Vec<&str> = config.topics.iter().map(String::as_str).collect();
    status.set_format(parser.name());
    // The stored switch: a paused source does not join the group (its partitions go
    // to the other members, if any) until it is resumed.
    let mut paused = read_switch(&store, &config.name).await.unwrap_or(false);
    if paused {
        set_paused(&context, &status, true);
    } else {
        consumer.subscribe(&topics)?;
        status.set_state(
            SourceState::Starting,
            Some("joining the consumer group".into()),
        );
    }
    let mut switch = tokio::time::interval(SWITCH_EVERY);
    switch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::info!(message = "Kafka source started.", source = %config.name, brokers = %config.brokers, topics = ?config.topics, group = %config.group);

    let meters = Meters::new(&config.name);
    let mut positions = StoredPositions::default();
    let mut pending: HashMap<(String, i32), PartitionBatch> = HashMap::new();
    let mut pending_lines = 0usize;
    let mut deadline: Option<Instant> = None;
    let mut backoff = Duration::from_millis(100);
    loop {
        let received = tokio::select! {
            biased;
            _ = shutdown.recv() => break,
            _ = switch.tick() => {
                let Some(now_paused) = read_switch(&store, &config.name).await else {
                    continue;
                };
                if now_paused == paused {
                    continue;
                }
                if now_paused {
                    // Store and commit what was read, then leave the group.
                    if !flush(&config.name, &consumer, &writer, &mut pending, &mut positions, &meters, &context).await {
                        return Ok(());
                    }
                    pending_lines = 0;
                    deadline = None;
                    consumer.unsubscribe();
                    positions.clear();
                    set_paused(&context, &status, true);
                    tracing::info!(message = "Kafka source paused.", source = %config.name);
                } else {
                    consumer.subscribe(&topics)?;
                    set_paused(&context, &status, false);
                    tracing::info!(message = "Kafka source resumed.", source = %config.name);
                }
                paused = now_paused;
                continue;
            }
            _ = sleep_until(deadline), if deadline.is_some() => None,
            m = consumer.recv(), if !paused => Some(m.map(|m| Record {
                topic: m.topic().to_owned(),
                partition: m.partition(),
                offset: m.offset(),
                payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
            })),
        };
        // After `recv`, which is where librdkafka runs the rebalance callback: a record
        // it returned may come from a partition that was just assigned.
        if context.rebalanced.swap(false, Ordering::AcqRel) {
            positions.clear();
        }
        match received {
            None => {}
            Some(Err(error)) => {
                tracing::warn!(message = "Kafka consumer error; retrying.", source = %config.name, %error);
                status.set_state(SourceState::Error, Some(format!("kafka: {error}")));
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.recv() => break,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
            Some(Ok(record)) => {
                backoff = Duration::from_millis(100);
                if status.state() != SourceState::Running && !paused {
                    status.set_state(SourceState::Running, None);
                }
                let Some(()) = load_position(
                    &store,
                    &config.name,
                    &record,
                    &mut positions,
                    &status,
                    &mut shutdown,
                )
                .await
                else {
                    break;
                };
                if positions.is_stored(&record.topic, record.partition, record.offset) {
                    meters.skipped.inc();
                    continue;
                }
                let slot = pending
                    .entry((record.topic.clone(), record.partition))
                    .or_insert_with(|| PartitionBatch {
                        batcher: Batcher::new(
                            &config.name,
                            parser.clone(),
                            Some(status.clone()),
                            usize::MAX,
                        ),
                        last_offset: record.offset,
                    });
                for line in record.payload.split(|b| *b == b'\n') {
                    slot.batcher.push_line(line, None, None);
                    pending_lines += 1;
                }
                slot.last_offset = record.offset;
                if deadline.is_none() {
                    deadline = Some(Instant::now() + config.flush_interval);
                }
                if pending_lines < config.batch_size {
                    continue;
                }
            }
        }
        // A full batch or the timer: store, then commit.
        if !flush(
            &config.name,
            &consumer,
            &writer,
            &mut pending,
            &mut positions,
            &meters,
            &context,
        )
        .await
        {
            return Ok(());
        }
        pending_lines = 0;
        deadline = None;
    }
    flush(
        &config.name,
        &consumer,
        &writer,
        &mut pending,
        &mut positions,
        &meters,
        &context,
    )
    .await;
    status.set_state(SourceState::Stopped, None);
    tracing::info!(message = "Kafka source stopped.", source = %config.name);
    Ok(())
}

/// How often the stored switch is read.
const SWITCH_EVERY: Duration = Duration::from_secs(2);

/// The stored switch (`None` while the store cannot say: nothing changes then).
async fn read_switch(store: &SharedStore, name: &str) -> Option<bool> {
    match palisade_sources::switch::is_paused(store, name).await {
        Ok(p) => Some(p),
        Err(error) => {
            tracing::debug!(message = "Cannot read the source switch; unchanged.", source = %name, %error);
            None
        }
    }
}

fn set_paused(context: &SourceContext, status: &SourceStatus, paused: bool) {
    context.update(|d| {
        d.paused = paused;
        if paused {
            d.partitions.clear();
        }
    });
    if paused {
        status.set_state(
            SourceState::Paused,
            Some(format!(
                "paused by an operator: POST /api/v1/sources/{}/resume to resume",
                status.name()
            )),
        );
    } else {
        status.set_state(
            SourceState::Starting,
            Some("joining the consumer group".into()),
        );
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Makes sure the partition's stored position is known, reading it from the store
/// (retrying while the store is down). `None` at shutdown.
async fn load_position(
    store: &SharedStore,
    name: &str,
    record: &Record,
    positions: &mut StoredPositions,
    status: &SourceStatus,
    shutdown: &mut Shutdown,
) -> Option<()> {
    if positions.get(&record.topic, record.partition).is_some() {
        return Some(());
    }
    let key = position::checkpoint_name(name, &record.topic, record.partition);
    let mut backoff = Duration::from_millis(200);
    loop {
        match store.checkpoint(&key).await {
            Ok(cp) => {
                positions.set(
                    &record.topic,
                    record.partition,
                    position::stored_next(cp.as_ref()),
                );
                return Some(());
            }
            Err(error) => {
                status.set_state(
                    SourceState::Waiting,
                    Some(format!("waiting for the database: {error}")),
                );
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.recv() => return None,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Stores every pending partition batch (waiting until the store has them), then
/// commits their offsets. False when the writer has stopped (shutdown).
async fn flush(
    name: &str,
    consumer: &StreamConsumer<ContextRef>,
    writer: &BatchWriter,
    pending: &mut HashMap<(String, i32), PartitionBatch>,
    positions: &mut StoredPositions,
    meters: &Meters,
    context: &SourceContext,
) -> bool {
    if pending.is_empty() {
        return true;
    }
    let mut parts = Vec::with_capacity(pending.len());
    let mut writes = Vec::with_capacity(pending.len());
    for ((topic, partition), mut batch) in pending.drain() {
        let cp = position::checkpoint(name, &topic, partition, batch.last_offset);
        let ingest = batch.batcher.take(Some(cp));
        let lines = (ingest.events.len() + ingest.dead_letters.len()) as u64;
        parts.push((topic, partition, batch.last_offset, lines));
        writes.push(writer.write(ingest));
    }
    let outcomes = futures_util::future::join_all(writes).await;
    let mut tpl = TopicPartitionList::new();
    let mut open = true;
    let mut stored = 0u64;
    for ((topic, partition, last, lines), outcome) in parts.into_iter().zip(outcomes) {
        match outcome {
            Ok(_) => {
                positions.set(&topic, partition, last.saturating_add(1));
                if let Err(error) = tpl.add_partition_offset(
                    &topic,
                    partition,
                    Offset::Offset(last.saturating_add(1)),
                ) {
                    tracing::warn!(message = "Cannot list an offset to commit.", %error);
                }
                stored += lines;
            }
            Err(WriterError::Closed) => open = false,
            Err(error) => {
                // Not committed: the records come again and are stored then.
                tracing::warn!(message = "A Kafka batch was not stored; it will be read again.", source = %name, %error);
            }
        }
    }
    if tpl.count() > 0 {
        match consumer.commit(&tpl, CommitMode::Async) {
            Ok(()) => {
                meters.committed.add(stored);
                let offsets = tpl
                    .elements()
                    .iter()
                    .map(|e| CommittedOffset {
                        topic: e.topic().to_owned(),
                        partition: e.partition(),
                        offset: e.offset().to_raw().unwrap_or(-1),
                    })
                    .collect();
                context.update(|d| {
                    d.last_commit = Some(LastCommit {
                        at: palisade_core::Timestamp::now(),
                        offsets,
                    })
                });
            }
            Err(error) => {
                // Harmless: the stored checkpoints skip the records if they come again.
                tracing::warn!(message = "Cannot commit Kafka offsets; stored records will be skipped if delivered again.", source = %name, %error);
            }
        }
    }
    open
}

/// The context handed to librdkafka (it must own it; the task keeps another reference
/// for the rebalance flag and the lag view).
struct ContextRef(Arc<SourceContext>);

impl ClientContext for ContextRef {
    fn stats(&self, stats: Statistics) {
        self.0.stats(stats)
    }
    fn error(&self, error: KafkaError, reason: &str) {
        self.0.error(error, reason)
    }
}

impl ConsumerContext for ContextRef {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        tracing::info!(message = "Kafka group rebalanced.", source = %self.0.name, ?rebalance);
        self.0.rebalanced.store(true, Ordering::Release);
    }
}
