//! Prints the built-in engine's verdict and findings for each request of a labelled
//! JSONL corpus (the `palisade eval` format), to see *why* a request was blocked or
//! missed, which `palisade eval`'s totals do not say.
//!
//! ```sh
//! cargo run -p palisade-detect --example explain -- /tmp/proto.jsonl [PARANOIA]
//! ```

use std::io::BufRead;

use palisade_detect::{Engine, EngineConfig, HttpRequest, RuleSet};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(corpus) = args.first() else {
        eprintln!("usage: explain CORPUS.jsonl [PARANOIA]");
        std::process::exit(2);
    };
    let paranoia: u8 = args.get(1).and_then(|p| p.parse().ok()).unwrap_or(1);
    let engine = Engine::new(
        RuleSet::builtin()?,
        EngineConfig {
            paranoia,
            threshold: 5,
        },
    );
    let file = std::io::BufReader::new(std::fs::File::open(corpus)?);
    for line in file.lines() {
        let line = line?;
        let v: serde_json::Value = serde_json::from_str(&line)?;
        let text = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_owned();
        let headers = v
            .get("headers")
            .and_then(|h| h.as_array())
            .map(|pairs| {
                pairs
                    .iter()
                    .filter_map(|p| {
                        Some((
                            p.get(0)?.as_str()?.to_owned(),
                            p.get(1)?.as_str()?.to_owned(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let request = HttpRequest {
            method: text("method"),
            uri: text("uri"),
            protocol: v
                .get("version")
                .and_then(|x| x.as_str())
                .unwrap_or("HTTP/1.1")
                .to_owned(),
            headers,
            body: text("body").into_bytes(),
            client_ip: None,
        };
        let verdict = engine.inspect(&request);
        let label = text("label");
        let outcome = match (label.as_str(), verdict.blocked) {
            ("attack", true) => "TP",
            ("attack", false) => "FN",
            (_, true) => "FP",
            _ => "TN",
        };
        let findings: Vec<String> = verdict
            .findings
            .iter()
            .map(|f| format!("{}@{}:{}", f.rule_id, f.location, f.name_of_part))
            .collect();
        println!(
            "{outcome} {} score {} [{}] {} {}",
            text("source"),
            verdict.score,
            findings.join(" "),
            request.method,
            request.uri.chars().take(80).collect::<String>()
        );
    }
    Ok(())
}
