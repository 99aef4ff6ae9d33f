//! Threats/s the `[kafka_sink]` produces: N stored threats handed to the sink the way
//! the recorder hands them (groups of 100 through its bounded channel), timed until the
//! broker has acknowledged every one (idempotent producer, `acks=all`).
//!
//! ```sh
//! bash scripts/lib/kafka.sh start
//! cargo run --release -p palisade-kafka --features client --example sink_bench -- 100000 127.0.0.1:9092
//! ```

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use palisade_core::Timestamp;
use palisade_core::supervisor::SharedReceiver;
use palisade_core::threat::{Evidence, StoredThreat, Threat};
use palisade_kafka::KafkaSinkConfig;
use palisade_kafka::sink::{CHANNEL_GROUPS, KafkaSink};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100_000);
    let brokers = args.next().unwrap_or_else(|| "127.0.0.1:9092".into());
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let topic = format!("sink-bench-{stamp}");
    palisade_kafka::tools::create_topic(&brokers, &topic, 3).await?;
    let config: KafkaSinkConfig = toml::from_str(&format!(
        "brokers = \"{brokers}\"\nthreats_topic = \"{topic}\"\nqueue = {}\n",
        n.max(1000)
    ))?;
    let sink = Arc::new(KafkaSink::new(&config)?);
    let counts = sink.counts();
    let (tx, rx) = tokio::sync::mpsc::channel(CHANNEL_GROUPS);
    let task = tokio::spawn(sink.clone().run(SharedReceiver::new(rx)));
    let threat = |i: usize| StoredThreat {
        id: i as i64 + 1,
        threat: Threat {
            tags: Vec::new(),
            ts: Timestamp::now(),
            category: "sqli".into(),
            severity: palisade_core::severity::Severity::Error,
            score: 15,
            rule_ids: vec![942100],
            client_ip: Some(std::net::IpAddr::from([203, 0, 113, (i % 250) as u8])),
            method: Some("GET".into()),
            uri: Some(format!(
                "/item?id={i}%27%20UNION%20SELECT%20password%20FROM%20users--"
            )),
            source: "bench".into(),
            event_id: Some(i as i64),
            decision: palisade_core::verdict::Action::Detect,
            evidence: vec![Evidence {
                rule_id: 942100,
                location: "args".into(),
                part: "id".into(),
                decoded_value: format!("{i}' UNION SELECT password FROM users--"),
                matched: "UNION SELECT".into(),
            }],
        },
    };
    let started = Instant::now();
    for chunk in (0..n).step_by(100) {
        let group: Arc<[StoredThreat]> = (chunk..(chunk + 100).min(n)).map(threat).collect();
        tx.send(group).await?;
    }
    let queued = started.elapsed();
    while counts.delivered.load(Ordering::Relaxed)
        + counts.failed.load(Ordering::Relaxed)
        + counts.dropped.load(Ordering::Relaxed)
        < n as u64
        && started.elapsed() < Duration::from_secs(300)
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{n} threats: queued in {:.2}s, acknowledged {} (failed {}, dropped {}) in {secs:.2}s = {:.0} threats/s",
        queued.as_secs_f64(),
        counts.delivered.load(Ordering::Relaxed),
        counts.failed.load(Ordering::Relaxed),
        counts.dropped.load(Ordering::Relaxed),
        counts.delivered.load(Ordering::Relaxed) as f64 / secs.max(1e-9)
    );
    drop(tx);
    let _ = task.await;
    Ok(())
}
