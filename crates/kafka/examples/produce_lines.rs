//! Produces log lines to a topic keyed by their client (the first field), the way a
//! shipper in front of a scale-out topology should: one client's lines land on one
//! partition, so they meet in one worker. Used by `scripts/topology-example.sh`.
//!
//! ```sh
//! cargo run -p palisade-kafka --features client --example produce_lines -- \
//!     127.0.0.1:9092 web-logs [PARTITIONS] < access.log
//! ```
//!
//! Creates the topic with PARTITIONS partitions (default 4) when it does not exist,
//! then prints how many lines were produced and at what rate.

use std::io::BufRead as _;
use std::time::Instant;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let brokers = args.next().unwrap_or_else(|| "127.0.0.1:9092".into());
    let topic = args.next().unwrap_or_else(|| "web-logs".into());
    let partitions: i32 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(4);
    palisade_kafka::tools::create_topic(&brokers, &topic, partitions).await?;
    let mut lines = Vec::new();
    for line in std::io::stdin().lock().split(b'\n') {
        let line = line?;
        if !line.is_empty() {
            lines.push(line);
        }
    }
    let n = lines.len();
    let started = Instant::now();
    tokio::task::spawn_blocking(move || {
        palisade_kafka::tools::produce_by_client(&brokers, &topic, &lines)
    })
    .await??;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "produced {n} lines keyed by client in {secs:.2}s ({:.0} lines/s)",
        n as f64 / secs.max(1e-9)
    );
    Ok(())
}
