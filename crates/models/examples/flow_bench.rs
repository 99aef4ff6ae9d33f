//! Inference speed of the built-in flow model on one core, through the same path the
//! flow sink takes ([`FlowScorer::verdicts`]: window features, the model, the online
//! score), over the flows of a capture (default: the nmap connect scan of
//! `../shared/data/pcaps`, 5,000+ flows), repeated and shifted in time.
//!
//! `cargo run --release -p palisade-models --example flow_bench [-- FILE.pcap]`

use std::sync::Arc;
use std::time::Instant;

use palisade_models::flow::scorer::FlowSource;
use palisade_models::flow::train::capture_flows;
use palisade_models::flow::{AnomalySettings, FlowModelSlot, FlowScorer};

fn main() {
    let path = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/pcaps/scan/evilfingers_nmap_TCP_CONNECT_SCAN.pcap"
        )
        .to_string()
    });
    let flows = match capture_flows(std::path::Path::new(&path)) {
        Ok(f) if !f.is_empty() => f,
        Ok(_) => {
            eprintln!("{path}: no flows");
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let slot = Arc::new(FlowModelSlot::new(FlowSource::Builtin));
    let scorer = FlowScorer::new(slot.clone(), Some(AnomalySettings::default()));
    let rounds = 40;
    let span = flows.last().map_or(0, |f| f.end_us) - flows[0].start_us + 120_000_000;
    let mut batches = Vec::new();
    for r in 0..rounds {
        let mut b = flows.clone();
        for f in &mut b {
            f.start_us += span * r;
            f.end_us += span * r;
        }
        batches.push(b);
    }
    let mut flagged = 0usize;
    let started = Instant::now();
    for b in &batches {
        for chunk in b.chunks(4096) {
            flagged += scorer.verdicts(chunk).iter().flatten().count();
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let n = rounds as usize * flows.len();
    println!(
        "flow model {}: {n} flows in {secs:.3} s = {:.0} flows/s on one core ({:.2} µs each), {flagged} flagged",
        slot.status().version.unwrap_or_default(),
        n as f64 / secs,
        secs * 1e6 / n as f64
    );
}
