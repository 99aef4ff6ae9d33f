//! Records/s `[[kafka]]` sources store: produces N combined log lines to a fresh topic
//! (keyed by client), then runs WORKERS real sources in one consumer group (consumer
//! group, parse, writer, per-partition checkpoints, commits), each with its own writer
//! and its own store connection pool, into a fresh SQLite file or a fresh schema of a
//! PostgreSQL database, and times it.
//!
//! ```sh
//! bash scripts/lib/kafka.sh start
//! cargo run --release -p palisade-kafka --features client --example consume_bench -- 200000 127.0.0.1:9092
//! cargo run --release -p palisade-kafka --features client --example consume_bench -- \
//!     200000 127.0.0.1:9092 postgres://postgres@127.0.0.1:5432/scale_bench 2 4
//! ```
//!
//! Arguments: N, brokers, database (`sqlite` or a PostgreSQL URL), workers (1), topic
//! partitions (3). Prints the time from the first stored event to the last (the rate),
//! and the group join time before it (Tansu's first join takes about half the session
//! timeout).

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
    let database = args.next().unwrap_or_else(|| "sqlite".into());
    let workers: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1);
    let partitions: i32 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(3);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let topic = format!("bench-{stamp}");
    palisade_kafka::tools::create_topic(&brokers, &topic, partitions).await?;
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
    tokio::task::spawn_blocking(move || {
        palisade_kafka::tools::produce_by_client(&b, &tp, &payloads)
    })
    .await??;
    println!("produced {n} records in {:.2}s", t.elapsed().as_secs_f64());

    let dir = tempfile::tempdir()?;
    let (url, backend) = if database == "sqlite" {
        ("sqlite://bench.db".to_owned(), "SQLite")
    } else {
        let (client, conn) = tokio_postgres::connect(&database, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        let schema = topic.replace('-', "_");
        client
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await?;
        let sep = if database.contains('?') { '&' } else { '?' };
        (
            format!("{database}{sep}options=-c%20search_path%3D{schema}"),
            "PostgreSQL",
        )
    };
    let store: SharedStore = palisade_store::open(&url, dir.path())?;
    store.migrate().await?;
    let trigger = ShutdownTrigger::new();
    let supervisor = Supervisor::new(trigger.subscribe());
    let started = Instant::now();
    let mut tasks = Vec::new();
    let mut writers = Vec::new();
    for w in 0..workers {
        // Each worker: its own store pool (SQLite: the same file) and writer.
        let own: SharedStore = palisade_store::open(&url, dir.path())?;
        let (writer, writer_task) =
            BatchWriter::spawn(own.clone(), WriterConfig::default(), &supervisor);
        let mut config = KafkaSourceConfig::new("bench", brokers.clone(), vec![topic.clone()]);
        config.group = topic.clone();
        config.format = palisade_formats::FormatSpec::Combined;
        config.session_timeout = Duration::from_secs(6);
        let status =
            SourceRegistry::default().register(&format!("bench{w}"), "kafka", &config.target());
        tasks.push(tokio::spawn(palisade_kafka::source::run(
            config,
            own,
            writer.clone(),
            status,
            supervisor.shutdown(),
        )));
        tasks.push(writer_task);
        writers.push(writer);
    }
    let mut first: Option<Instant> = None;
    loop {
        let stored = store.count_events().await? as usize;
        if stored > 0 && first.is_none() {
            first = Some(Instant::now());
        }
        if stored >= n || started.elapsed() > Duration::from_secs(600) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let done = Instant::now();
    let stored = store.count_events().await?;
    let first = first.unwrap_or(done);
    let secs = done.duration_since(first).as_secs_f64().max(1e-9);
    println!(
        "stored {stored}/{n} events with {workers} worker(s) on {partitions} partitions: join {:.2}s, then {:.2}s = {:.0} records/s into {backend}",
        first.duration_since(started).as_secs_f64(),
        secs,
        stored as f64 / secs
    );
    trigger.trigger();
    drop(writers);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
    Ok(())
}
