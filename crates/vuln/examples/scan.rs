//! Matches inventory files against NVD pages, in memory, and prints the findings:
//! `cargo run --release -p palisade-vuln --example scan -- PAGES_DIR FILE…`.
//! What the benchmark and the comparison with other scanners run.

use std::sync::Arc;

use palisade_vuln::applicability::{CompiledCve, Inventory, findings};
use palisade_vuln::nvd::parse_page;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let pages = args.next().ok_or("usage: scan PAGES_DIR FILE…")?;
    let mut cves = Vec::new();
    for entry in std::fs::read_dir(&pages)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") {
            for c in parse_page(&std::fs::read(&path)?)?.cves {
                cves.push(CompiledCve::new(Arc::new(c)));
            }
        }
    }
    for file in args {
        let inv = palisade_vuln::inventory::parse(&std::fs::read(&file)?, None, 1_000_000)?;
        let n = inv.items.len();
        let inventory = Inventory::new(inv.items);
        let mut rows = Vec::new();
        for c in &cves {
            for f in findings(c, &inventory) {
                rows.push(format!(
                    "{}\t{}\t{}\t{} {}\t{}",
                    f.cve_id,
                    f.severity.as_str(),
                    f.product,
                    f.software,
                    f.version,
                    f.confidence.as_str()
                ));
            }
        }
        rows.sort();
        println!("# {file}: {n} items, {} findings", rows.len());
        for r in rows {
            println!("{r}");
        }
    }
    Ok(())
}
