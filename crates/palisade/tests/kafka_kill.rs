//! The `[[kafka]]` source through the real binary (`--features kafka`, a broker in
//! `PALISADE_TEST_KAFKA`): `kill -9` in the middle of a stream, a restart, and a second
//! process joining the group on the same PostgreSQL database end with exactly one event
//! per record produced (no loss, no duplicate).
#![cfg(feature = "kafka")]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use palisade_store::SharedStore;

fn broker() -> Option<String> {
    match std::env::var("PALISADE_TEST_KAFKA") {
        Ok(b) if !b.is_empty() => Some(b),
        _ => {
            eprintln!(
                "PALISADE_TEST_KAFKA is unset: skipped (start a broker with `bash scripts/lib/kafka.sh start` and export PALISADE_TEST_KAFKA=127.0.0.1:9092)"
            );
            None
        }
    }
}

fn start(data: &Path, config: &Path, database_url: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .arg("--database-url")
        .arg(database_url)
        .env("PALISADE_LOG", "warn")
        .env_remove("PALISADE_DATABASE_URL")
        .env_remove("PALISADE_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start palisade")
}

fn records(from: usize, to: usize) -> Vec<Vec<u8>> {
    (from..to)
        .map(|n| {
            format!(
                "10.0.{}.{} - - [10/Oct/2023:13:55:36 +0000] \"GET /k/{n} HTTP/1.1\" 200 {n} \"-\" \"kafka-test\"",
                (n / 250) % 250,
                n % 250
            )
            .into_bytes()
        })
        .collect()
}

/// Waits until exactly `want` events are stored and the count stays there.
async fn settle_at(store: &SharedStore, want: u64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let n = store.count_events().await.unwrap_or(0);
        assert!(
            n <= want,
            "{what}: {n} events stored, more than the {want} records produced (duplicates)"
        );
        if n == want {
            tokio::time::sleep(Duration::from_secs(2)).await;
            assert_eq!(
                store.count_events().await.unwrap_or(0),
                want,
                "{what}: count moved past {want}"
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: only {n} of {want} events stored"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_source_survives_kill_9_and_a_second_worker_with_an_exact_count() {
    let Some(brokers) = broker() else { return };
    if std::env::var("PALISADE_SKIP_POSTGRES").is_ok_and(|v| v == "1") {
        eprintln!("PALISADE_SKIP_POSTGRES=1: skipped");
        return;
    }
    let base = std::env::var("PALISADE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let schema = format!(
        "kafka_kill_{}_{}",
        std::process::id(),
        stamp % 1_000_000_000
    );
    let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL must be reachable for this test");
    tokio::spawn(conn);
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .expect("create schema");
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");

    let topic = format!("kill-{schema}");
    palisade_kafka::tools::create_topic(&brokers, &topic, 3)
        .await
        .expect("create topic");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("palisade.toml");
    std::fs::write(
        &config,
        format!(
            "[[kafka]]\nname = \"k\"\nbrokers = \"{brokers}\"\ntopics = [\"{topic}\"]\ngroup = \"{topic}\"\n\
             format = \"combined\"\nsession_timeout = \"6s\"\nbatch_size = 200\nflush_interval = \"20ms\"\n"
        ),
    )
    .expect("config");
    let (data_a, data_b) = (dir.path().join("a"), dir.path().join("b"));
    let store = palisade_store::open(&url, dir.path()).expect("store");

    let produce = |from: usize, to: usize| {
        let (b, t) = (brokers.clone(), topic.clone());
        std::thread::spawn(move || {
            for chunk in (from..to).step_by(500) {
                palisade_kafka::tools::produce(&b, &t, &records(chunk, (chunk + 500).min(to)))
                    .expect("produce");
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    let mut a = start(&data_a, &config, &url);
    produce(0, 2000).join().expect("producer");
    settle_at(&store, 2000, "first worker").await;

    // kill -9 while records are still arriving.
    let producer = produce(2000, 12_000);
    let deadline = Instant::now() + Duration::from_secs(60);
    while store.count_events().await.unwrap_or(0) < 3000 {
        assert!(
            Instant::now() < deadline,
            "the stream never reached the worker"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.kill().expect("kill -9");
    let _ = a.wait();
    let at_kill = store.count_events().await.unwrap_or(0);
    eprintln!("kill -9 with {at_kill} of 12000 events stored");
    // Restarted, and a second worker joins the group on the same database.
    let mut a = start(&data_a, &config, &url);
    let mut b = start(&data_b, &config, &url);
    producer.join().expect("producer");
    settle_at(&store, 12_000, "after kill -9, restart and a second worker").await;
    assert!(
        at_kill < 12_000,
        "the kill should land mid-stream (stored {at_kill})"
    );

    for p in [&mut a, &mut b] {
        let pid = p.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let status = p.wait().expect("wait");
        assert!(status.success(), "graceful shutdown exited with {status}");
    }
    assert_eq!(store.count_events().await.unwrap_or(0), 12_000);
    let distinct: i64 = client
        .query_one(
            &format!("SELECT count(DISTINCT path) FROM {schema}.events"),
            &[],
        )
        .await
        .expect("distinct paths")
        .get(0);
    assert_eq!(distinct, 12_000, "every record stored once");
    let _ = client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .await;
}
