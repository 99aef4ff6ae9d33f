//! A scale-out topology through the real binary (`--features kafka`, a broker in
//! `PALISADE_TEST_KAFKA`, PostgreSQL): two `--role worker` processes share one Kafka
//! consumer group and one database behind a `--role api` node. N lines are produced
//! keyed by client; one worker is `kill -9`'d mid-stream and restarted; exactly N
//! events are stored, and a threat raised on a worker appears on the API node's
//! WebSocket.
#![cfg(feature = "kafka")]

mod topology;

use std::time::{Duration, Instant};

use topology::{base_url, login, schema, start, until, wait_live, watch};

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

/// Line `n`: from one of 500 clients; every 1,000th is an SQL injection from
/// 203.0.113.x.
fn records(from: usize, to: usize) -> Vec<Vec<u8>> {
    (from..to)
        .map(|n| {
            if n % 1000 == 999 {
                format!(
                    "203.0.113.{} - - [10/Oct/2023:13:55:36 +0000] \"GET /t/{n}?id=1%27%20UNION%20SELECT%20username,password%20FROM%20users-- HTTP/1.1\" 200 {n} \"-\" \"topology-test\"",
                    n % 200
                )
            } else {
                format!(
                    "10.1.{}.{} - - [10/Oct/2023:13:55:36 +0000] \"GET /t/{n} HTTP/1.1\" 200 {n} \"-\" \"topology-test\"",
                    (n / 250) % 2,
                    n % 250
                )
            }
            .into_bytes()
        })
        .collect()
}

async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client
        .query_one(sql, &[])
        .await
        .map(|r| r.get(0))
        .unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_role_two_workers_kill_9_store_exactly_n_and_the_api_node_sees_threats() {
    let Some(brokers) = broker() else { return };
    let Some(base) = base_url() else { return };
    let (client, url, schema) = schema(&base, "kafka_topo").await;
    const N: usize = 12_000;
    let topic = format!("topo-{schema}");
    palisade_kafka::tools::create_topic(&brokers, &topic, 4)
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

    let api = start("api", &dir.path().join("api"), Some(&config), &url, &[]);
    let mut a = start("worker", &dir.path().join("a"), Some(&config), &url, &[]);
    let b = start("worker", &dir.path().join("b"), Some(&config), &url, &[]);
    wait_live(&api).await;
    let token = login(&api).await;
    let mut socket = watch(&api, &token, &["threats"]).await;

    let events_sql = format!("SELECT count(*) FROM {schema}.events");
    let produce = |from: usize, to: usize| {
        let (br, t) = (brokers.clone(), topic.clone());
        std::thread::spawn(move || {
            for chunk in (from..to).step_by(500) {
                palisade_kafka::tools::produce_by_client(
                    &br,
                    &t,
                    &records(chunk, (chunk + 500).min(to)),
                )
                .expect("produce");
                std::thread::sleep(Duration::from_millis(30));
            }
        })
    };
    let producer = produce(0, N);
    let deadline = Instant::now() + Duration::from_secs(90);
    while count(&client, &events_sql).await < 3000 {
        assert!(
            Instant::now() < deadline,
            "the stream never reached the workers"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.kill9();
    let at_kill = count(&client, &events_sql).await;
    eprintln!("kill -9 of one worker with {at_kill} of {N} events stored");
    let a = start("worker", &dir.path().join("a"), Some(&config), &url, &[]);
    producer.join().expect("producer");

    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let n = count(&client, &events_sql).await;
        assert!(n <= N as i64, "{n} events for {N} records: duplicates");
        if n == N as i64 {
            break;
        }
        assert!(Instant::now() < deadline, "only {n} of {N} events stored");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(count(&client, &events_sql).await, N as i64);
    assert!(
        at_kill < N as i64,
        "the kill should land mid-stream ({at_kill})"
    );
    let distinct = count(
        &client,
        &format!("SELECT count(DISTINCT path) FROM {schema}.events"),
    )
    .await;
    assert_eq!(distinct, N as i64, "every record stored once");

    // A worker's threat, relayed through PostgreSQL to the API node's WebSocket.
    let threat = until(&mut socket, "threats", Duration::from_secs(30), |m| {
        m["data"]["client_ip"]
            .as_str()
            .is_some_and(|ip| ip.starts_with("203.0.113."))
    })
    .await
    .expect("a worker's threat on the API node's WebSocket");
    assert!(threat["seq"].as_u64().is_some(), "{threat}");

    // The API node lists the source but leaves it to the workers.
    let sources: serde_json::Value = reqwest::Client::new()
        .get(api.url("/api/v1/sources"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("sources")
        .json()
        .await
        .expect("sources body");
    let k = sources["items"]
        .as_array()
        .and_then(|items| items.iter().find(|s| s["name"] == "k"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(k["state"], "stopped", "{k}");

    for mut node in [a, b, api] {
        assert!(node.stop(), "graceful stop");
    }
    let _ = client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .await;
}
