//! Parses a whole file with one format and prints how many lines parsed, the first
//! few dead letters and the single-thread throughput. Handy for checking a format
//! string against a real log before configuring it.
//!
//! `cargo run --release -p palisade-formats --example parse_file -- FILE [FORMAT]`
//! where FORMAT is a name (`combined`, `auto`, ...) or `nginx:<log_format>` /
//! `apache:<LogFormat>`; default `auto`.

use std::time::Instant;

use palisade_formats::{FormatSpec, build, sniff};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: parse_file FILE [FORMAT]");
        std::process::exit(2);
    };
    let data = std::fs::read(&path).unwrap_or_else(|e| {
        eprintln!("{path}: {e}");
        std::process::exit(1);
    });
    let lines: Vec<&[u8]> = data
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty())
        .collect();
    let name = args.next().unwrap_or_else(|| "auto".into());
    let mut spec = FormatSpec::from_name(&name).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2);
    });
    if spec == FormatSpec::Auto {
        let sample: Vec<&[u8]> = lines.iter().take(100).copied().collect();
        spec = sniff(&sample).unwrap_or_else(|| {
            eprintln!("no known format fits the first lines");
            std::process::exit(1);
        });
    }
    let parser = build(&spec).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2);
    });
    let start = Instant::now();
    let mut ok = 0usize;
    let mut failed = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        match parser.parse(line) {
            Ok(_) => ok += 1,
            Err(e) => failed.push((i + 1, e.reason)),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{path}: format {}, {ok} parsed, {} dead letters, {:.0} lines/s",
        parser.name(),
        failed.len(),
        lines.len() as f64 / secs
    );
    for (n, reason) in failed.iter().take(10) {
        println!("  line {n}: {reason}");
    }
}
