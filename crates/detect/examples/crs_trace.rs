//! Per-request CRS scores and rule ids from Palisade's SecLang interpreter, in the
//! shape of `shared/peers/crs-scores.py`'s output for ModSecurity, so the two can be
//! joined request by request (`idx`) to find where they disagree and which rules.
//!
//! ```sh
//! cargo run --release -p palisade-detect --example crs_trace -- REQUESTS.jsonl CRS_DIR > trace.jsonl
//! ```
//!
//! Input lines: `{"idx","label","method","uri","version","headers","body"}` (the requests
//! as a front receives them). Output lines: `{"idx","label","pl":[s1,s2,s3,s4],"rules":[...]}`
//! where `pl[N-1]` is the score contributed by rules of paranoia level N (CRS run at
//! paranoia 4, nothing blocked) and `rules` the ids that scored.

use std::io::{BufRead, Write};

use palisade_detect::HttpRequest;
use palisade_detect::seclang::Program;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(corpus), Some(dir)) = (args.first(), args.get(1)) else {
        eprintln!("usage: crs_trace REQUESTS.jsonl CRS_DIR");
        std::process::exit(2);
    };
    let program = Program::load_dir(std::path::Path::new(dir))?;
    eprintln!("CRS: {}", program.report().summary());
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    for line in std::io::BufReader::new(std::fs::File::open(corpus)?).lines() {
        let v: serde_json::Value = serde_json::from_str(&line?)?;
        let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
        let req = HttpRequest {
            method: s("method"),
            uri: s("uri"),
            protocol: s("version"),
            headers: v["headers"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|h| {
                            Some((h[0].as_str()?.to_string(), h[1].as_str()?.to_string()))
                        })
                        .collect()
                })
                .unwrap_or_default(),
            body: s("body").chars().map(|c| c as u32 as u8).collect(),
            client_ip: Some(std::net::IpAddr::from([127, 0, 0, 1])),
        };
        let o = program.run(&req, 4, 1_000_000);
        let mut pl = [0u32; 4];
        let mut rules = Vec::new();
        for f in &o.findings {
            if let Some(slot) = pl.get_mut(usize::from(f.paranoia.clamp(1, 4) - 1)) {
                *slot += f.severity.points();
            }
            rules.push(f.rule_id);
        }
        let row =
            serde_json::json!({"idx": v["idx"], "label": v["label"], "pl": pl, "rules": rules});
        writeln!(out, "{row}")?;
    }
    Ok(())
}
