//! Small blocking helpers around the client for tests, benchmarks and scripts: create
//! a topic, produce records, read a topic back. Not on any service path.

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

/// Creates a topic with `partitions` partitions; an existing topic is left alone.
pub async fn create_topic(brokers: &str, topic: &str, partitions: i32) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let results = admin.create_topics([&new], &AdminOptions::new()).await?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(KafkaError::AdminOp(code)),
        }
    }
    Ok(())
}

/// Produces every payload (keyed by its index, so they spread over the partitions)
/// with an idempotent producer and waits until all are acknowledged. Blocking.
pub fn produce(brokers: &str, topic: &str, payloads: &[Vec<u8>]) -> Result<(), KafkaError> {
    produce_with_keys(brokers, topic, payloads, |i, _| i.to_string())
}

/// The partition key of a log line in a scale-out topology: its client, the first
/// space-separated field of the common, combined and most access-log formats (for
/// other formats the producer should key by the client field itself). Kafka puts
/// every record of one key on one partition, and a consumer group gives a partition
/// to one worker at a time, so one client's events meet in one worker's scenario
/// buckets.
pub fn client_key(line: &[u8]) -> &[u8] {
    let end = line
        .iter()
        .position(|b| b.is_ascii_whitespace())
        .unwrap_or(line.len());
    line.get(..end).unwrap_or_default()
}

/// Produces every payload keyed by [`client_key`] (one client's lines on one
/// partition) and waits until all are acknowledged. Blocking.
pub fn produce_by_client(
    brokers: &str,
    topic: &str,
    payloads: &[Vec<u8>],
) -> Result<(), KafkaError> {
    produce_with_keys(brokers, topic, payloads, |_, p| {
        String::from_utf8_lossy(client_key(p)).into_owned()
    })
}

fn produce_with_keys(
    brokers: &str,
    topic: &str,
    payloads: &[Vec<u8>],
    key_of: impl Fn(usize, &[u8]) -> String,
) -> Result<(), KafkaError> {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()?;
    for (i, payload) in payloads.iter().enumerate() {
        let key = key_of(i, payload);
        let mut record = BaseRecord::to(topic).payload(payload).key(&key);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(e),
            }
        }
    }
    producer.flush(Duration::from_secs(60))
}

/// Reads every partition of `topic` from the beginning (no group) until `want`
/// records arrived or `timeout` passed; returns the payloads. Blocking.
pub fn read_topic(
    brokers: &str,
    topic: &str,
    want: usize,
    timeout: Duration,
) -> Result<Vec<Vec<u8>>, KafkaError> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "palisade-read-topic")
        .set("enable.auto.commit", "false")
        .create()?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let mut tpl = TopicPartitionList::new();
    for t in metadata.topics() {
        for p in t.partitions() {
            tpl.add_partition_offset(topic, p.id(), Offset::Beginning)?;
        }
    }
    consumer.assign(&tpl)?;
    let started = Instant::now();
    let mut out = Vec::new();
    while out.len() < want && started.elapsed() < timeout {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.push(m.payload().map(<[u8]>::to_vec).unwrap_or_default()),
            Some(Err(e)) => tracing::debug!(message = "Read error.", error = %e),
            None => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_key_is_the_first_field() {
        assert_eq!(client_key(b"10.0.0.1 - - [x] \"GET /\""), b"10.0.0.1");
        assert_eq!(client_key(b"2001:db8::1\t-"), b"2001:db8::1");
        assert_eq!(client_key(b""), b"");
        assert_eq!(client_key(b"single"), b"single");
    }
}
