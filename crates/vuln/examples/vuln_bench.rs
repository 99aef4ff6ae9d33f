//! Vulnerability engine benchmark: import of the whole recorded NVD data set, and
//! matching 1,000 assets × 50 packages, on SQLite (and PostgreSQL with `--pg URL`).
//!
//! `cargo run --release -p palisade-vuln --example vuln_bench -- [--pg postgres://…] [--assets N]`
//! (see `bench/vuln.sh` and docs/BENCHMARKS.md). The inventories are built from real
//! package names and versions: the Debian 12 `dpkg-query` list of the test data (most
//! of which match nothing) and versions of the products the correctness table covers,
//! vulnerable and fixed ones, drawn with a fixed seed so that runs compare.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use palisade_core::Timestamp;
use palisade_core::vuln::{Software, SoftwareSource};
use palisade_store::{SharedStore, Store};
use palisade_vuln::applicability::{CompiledCve, Inventory, findings};
use palisade_vuln::{TaskContext, nvd};

fn data(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path)
}

fn pages() -> Vec<PathBuf> {
    (0..3)
        .map(|i| data(&format!("nvd/nvdcve-2.0-page-{i:03}.json")))
        .collect()
}

/// Products whose versions the synthetic assets draw from: `(name, versions)`.
const PRODUCTS: &[(&str, &[&str])] = &[
    (
        "apache2",
        &["2.4.49", "2.4.50", "2.4.51", "2.4.57", "2.4.62"],
    ),
    ("nginx", &["1.18.0", "1.20.0", "1.20.1", "1.22.1", "1.24.0"]),
    (
        "openssh-server",
        &["7.4p1", "8.4p1", "8.9p1", "9.2p1", "9.8p1"],
    ),
    (
        "openssl",
        &["1.0.1f", "1.0.1g", "1.1.1w", "3.0.11", "3.0.13"],
    ),
    (
        "log4j-core",
        &["2.0-beta9", "2.12.1", "2.14.1", "2.16.0", "2.17.1"],
    ),
    (
        "tomcat9",
        &["9.0.31", "9.0.98", "9.0.99", "9.0.100", "9.0.43"],
    ),
    ("php", &["7.4.33", "8.1.28", "8.1.29", "8.2.19", "8.3.8"]),
    ("wordpress", &["5.8.2", "5.8.3", "5.9", "6.4.3", "3.7.36"]),
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// `count` inventories of `size` packages each.
fn inventories(count: usize, size: usize) -> Vec<Vec<Software>> {
    let dpkg = std::fs::read_to_string(data("sbom/dpkg-query.tsv")).expect("dpkg list");
    let packages: Vec<(String, String)> = dpkg
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Some((f.first()?.to_string(), f.get(1)?.to_string()))
        })
        .collect();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    (0..count)
        .map(|_| {
            let mut items: Vec<Software> = Vec::with_capacity(size);
            // A few of the products the data set has CVEs for, the rest ordinary packages.
            for _ in 0..5.min(size) {
                let (name, versions) = PRODUCTS[rng.below(PRODUCTS.len())];
                items.push(Software {
                    source: SoftwareSource::Cyclonedx,
                    name: name.into(),
                    version: versions[rng.below(versions.len())].into(),
                    purl: None,
                    cpe: None,
                    distro: None,
                });
            }
            while items.len() < size {
                let (name, version) = &packages[rng.below(packages.len())];
                if items.iter().any(|i| &i.name == name) {
                    continue;
                }
                items.push(Software {
                    source: SoftwareSource::Cyclonedx,
                    name: name.clone(),
                    version: version.clone(),
                    purl: None,
                    cpe: None,
                    distro: None,
                });
            }
            items
        })
        .collect()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn fresh(backend: &str, pg: Option<&str>) -> (SharedStore, Option<tempfile::TempDir>) {
    match backend {
        "sqlite" => {
            let dir = tempfile::tempdir().expect("tempdir");
            let s = palisade_store::sqlite::SqliteStore::open(&dir.path().join("bench.db"))
                .expect("sqlite");
            s.migrate().await.expect("migrate");
            (Arc::new(s), Some(dir))
        }
        _ => {
            let base = pg.expect("a PostgreSQL URL");
            let (c, conn) = tokio_postgres::connect(base, tokio_postgres::NoTls)
                .await
                .expect("PostgreSQL");
            tokio::spawn(conn);
            let schema = format!("bench_{}", Timestamp::now().as_micros());
            c.batch_execute(&format!("CREATE SCHEMA {schema}"))
                .await
                .expect("schema");
            let sep = if base.contains('?') { '&' } else { '?' };
            let s = palisade_store::postgres::PgStore::connect_lazy(&format!(
                "{base}{sep}options=-c%20search_path%3D{schema}"
            ))
            .expect("pg");
            s.migrate().await.expect("migrate");
            (Arc::new(s), None)
        }
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |k: &str| {
        args.iter()
            .position(|a| a == k)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let pg = arg("--pg");
    let assets: usize = arg("--assets").and_then(|a| a.parse().ok()).unwrap_or(1000);
    let per_asset: usize = arg("--packages").and_then(|a| a.parse().ok()).unwrap_or(50);
    let runs = 5;

    // Parsing alone.
    let bytes: Vec<Vec<u8>> = pages().iter().map(|p| std::fs::read(p).unwrap()).collect();
    let total_bytes: usize = bytes.iter().map(Vec::len).sum();
    let mut parse = Vec::new();
    let mut records = 0;
    for _ in 0..runs {
        let t = Instant::now();
        records = bytes
            .iter()
            .map(|b| nvd::parse_page(b).unwrap().cves.len())
            .sum::<usize>();
        parse.push(t.elapsed());
    }
    let parse = median(parse);
    println!(
        "parse: {records} records, {:.1} MB in {:.1} ms ({:.0} records/s)",
        total_bytes as f64 / 1e6,
        parse.as_secs_f64() * 1e3,
        records as f64 / parse.as_secs_f64()
    );

    // In-memory matching (the engine alone, no store).
    let cves: Vec<CompiledCve> = bytes
        .iter()
        .flat_map(|b| nvd::parse_page(b).unwrap().cves)
        .map(|c| CompiledCve::new(Arc::new(c)))
        .collect();
    let invs = inventories(assets, per_asset);
    // The store's product index, in memory.
    let mut by_product: std::collections::HashMap<String, Vec<usize>> = Default::default();
    for (i, c) in cves.iter().enumerate() {
        for (_, product) in palisade_vuln::applicability::vulnerable_products(&c.cve) {
            by_product.entry(product).or_default().push(i);
        }
    }
    let t = Instant::now();
    let mut found = 0;
    for inv in &invs {
        let inv = Inventory::new(inv.clone());
        let mut candidates: Vec<usize> = inv
            .products()
            .iter()
            .filter_map(|p| by_product.get(p))
            .flatten()
            .copied()
            .collect();
        candidates.sort_unstable();
        candidates.dedup();
        for i in candidates {
            found += findings(&cves[i], &inv).len();
        }
    }
    let mem = t.elapsed();
    println!(
        "match in memory: {assets} assets x {per_asset} packages against {} CVEs in {:.0} ms ({:.0} assets/s), {found} findings",
        cves.len(),
        mem.as_secs_f64() * 1e3,
        assets as f64 / mem.as_secs_f64()
    );

    let mut backends = vec!["sqlite"];
    if pg.is_some() {
        backends.push("postgres");
    }
    for backend in backends {
        // Import of the whole data set into an empty store, then again (all unchanged).
        let mut first = Vec::new();
        let mut again = Vec::new();
        for _ in 0..runs {
            let (store, _dir) = fresh(backend, pg.as_deref()).await;
            let t = Instant::now();
            let s = palisade_vuln::import_files(&store, &pages(), &TaskContext::silent())
                .await
                .unwrap();
            first.push(t.elapsed());
            assert_eq!(s.stored.inserted, 145);
            let t = Instant::now();
            palisade_vuln::import_files(&store, &pages(), &TaskContext::silent())
                .await
                .unwrap();
            again.push(t.elapsed());
        }
        println!(
            "{backend}: import of the data set (145 records, 3 pages): {:.0} ms into an empty store, {:.0} ms again (median of {runs})",
            median(first).as_secs_f64() * 1e3,
            median(again).as_secs_f64() * 1e3
        );

        // Matching 1,000 assets x 50 packages through the store.
        let (store, _dir) = fresh(backend, pg.as_deref()).await;
        palisade_vuln::import_files(&store, &pages(), &TaskContext::silent())
            .await
            .unwrap();
        let t = Instant::now();
        for (i, items) in invs.iter().enumerate() {
            store
                .put_software(
                    &format!("host-{i:04}"),
                    SoftwareSource::Cyclonedx,
                    items,
                    true,
                    Timestamp::now(),
                )
                .await
                .unwrap();
        }
        let load = t.elapsed();
        let t = Instant::now();
        let s = palisade_vuln::run_matching(&store, None, &TaskContext::silent())
            .await
            .unwrap();
        let cold = t.elapsed();
        let t = Instant::now();
        let s2 = palisade_vuln::run_matching(&store, None, &TaskContext::silent())
            .await
            .unwrap();
        let warm = t.elapsed();
        println!(
            "{backend}: {assets} assets x {per_asset} packages: inventories stored in {:.2} s; \
             first matching run {:.2} s ({:.0} assets/s, {} matches opened); \
             second run {:.2} s ({:.0} assets/s, {} kept)",
            load.as_secs_f64(),
            cold.as_secs_f64(),
            assets as f64 / cold.as_secs_f64(),
            s.opened,
            warm.as_secs_f64(),
            assets as f64 / warm.as_secs_f64(),
            s2.kept
        );
    }
}
