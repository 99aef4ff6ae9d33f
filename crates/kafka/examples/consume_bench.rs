//! Records/s a `[[kafka]]` source stores into SQLite: produces N combined log lines to a
//! fresh 3-partition topic, then runs the real source (consumer group, parse, writer,
//! per-partition checkpoints, commits) into a fresh SQLite store and times it.
//!
//! ```sh
//! bash scripts/lib/kafka.sh start
//! cargo run --release -p palisade-kafka --features client --example consume_bench -- 200000 127.0.0.1:9092
//! ```
//!
//! Prints the time from the first stored event to the last (the rate), and the group
//! join time before it (Tansu's first join takes about half the session timeout).

use std::time::{Duration, Instant};

use palisade_core::ShutdownTrigger;
use palisade_core::supervisor::Supervisor;
use palisade_kafka::KafkaSourceConfig;
use palisade_sources::{BatchWriter, SourceRegistry, WriterConfig};
use palisade_store::SharedStore;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(200_000);
    let brokers = args.next().unwrap_or_else(|| "127.0.0.1:9092".into());
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let topic = format!("bench-{stamp}");
    palisade_kafka::tools::create_topic(&brokers, &topic, 3).await?;
    let payloads: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            format!(
                "198.51.100.{} - - [10/Oct/2025:13:55:36 +0000] \"GET /page/{i}?q=x HTTP/1.1\" 200 512 \"-\" \"Mozilla/5.0\"",
                i % 250
            )
            .into_bytes()
        })
        .collect();
    let t = Instant::now();
    let (b, tp) = (brokers.clone(), topic.clone());
    tokio::task::spawn_blocking(move || palisade_kafka::tools::produce(&b, &tp, &payloads))
        .await??;
    println!("produced {n} records in {:.2}s", t.elapsed().as_secs_f64());

    let dir = tempfile::tempdir()?;
    let store: SharedStore = palisade_store::open("sqlite://bench.db", dir.path())?;
    store.migrate().await?;
    let trigger = ShutdownTrigger::new();
    let supervisor = Supervisor::new(trigger.subscribe());
    let (writer, writer_task) =
        BatchWriter::spawn(store.clone(), WriterConfig::default(), &supervisor);
    let mut config = KafkaSourceConfig::new("bench", brokers.clone(), vec![topic.clone()]);
    config.group = topic.clone();
    config.format = palisade_formats::FormatSpec::Combined;
    config.session_timeout = Duration::from_secs(6);
    let status = SourceRegistry::default().register("bench", "kafka", &config.target());
    let started = Instant::now();
    let source = tokio::spawn(palisade_kafka::source::run(
        config,
        store.clone(),
        writer.clone(),
        status,
        supervisor.shutdown(),
    ));
    let mut first: Option<Instant> = None;
    loop {
        let stored = store.count_events().await? as usize;
        if stored > 0 && first.is_none() {
            first = Some(Instant::now());
        }
        if stored >= n || started.elapsed() > Duration::from_secs(600) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let done = Instant::now();
    let stored = store.count_events().await?;
    let first = first.unwrap_or(done);
    let secs = done.duration_since(first).as_secs_f64().max(1e-9);
    println!(
        "stored {stored}/{n} events: join {:.2}s, then {:.2}s = {:.0} records/s into SQLite",
        first.duration_since(started).as_secs_f64(),
        secs,
        stored as f64 / secs
    );
    trigger.trigger();
    drop(writer);
    let _ = source.await;
    let _ = tokio::time::timeout(Duration::from_secs(10), writer_task).await;
    Ok(())
}
