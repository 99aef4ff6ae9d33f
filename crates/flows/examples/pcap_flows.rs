//! Reads a capture and prints its flows as JSON lines, then a summary line
//! (`{"summary": Stats, "elapsed_s": …}`); used by `scripts/eval-flows.sh` and for the
//! packets/s figure.
//!
//! `cargo run --release -p palisade-flows --example pcap_flows -- FILE [--quiet] [--repeat N] [--closed-timeout SPAN] [--max-flows N]`

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or(
        "usage: pcap_flows FILE [--quiet] [--repeat N] [--closed-timeout SPAN] [--max-flows N]",
    )?;
    let mut quiet = false;
    let mut repeat = 1u32;
    let mut config = palisade_flows::FlowConfig::default();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quiet" => quiet = true,
            "--repeat" => repeat = args.next().ok_or("--repeat N")?.parse()?,
            "--closed-timeout" => {
                config.closed_timeout = args.next().ok_or("--closed-timeout SPAN")?.parse()?
            }
            "--max-flows" => config.max_flows = args.next().ok_or("--max-flows N")?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let start = Instant::now();
    let mut flows = 0u64;
    let mut stats = palisade_flows::Stats::default();
    for _ in 0..repeat {
        stats =
            palisade_flows::read_capture(std::path::Path::new(&path), config.clone(), |batch| {
                flows += batch.len() as u64;
                if !quiet {
                    for f in batch {
                        if let Ok(line) = serde_json::to_string(&f) {
                            println!("{line}");
                        }
                    }
                }
            })?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let summary = serde_json::json!({
        "summary": stats,
        "flows": flows,
        "repeat": repeat,
        "elapsed_s": elapsed,
        "packets_per_s": (stats.packets as f64 * f64::from(repeat)) / elapsed.max(1e-9),
    });
    println!("{summary}");
    Ok(())
}
