//! The same anomaly threats on every import of a log (issue 16): the per-endpoint
//! baselines learn a large group's events in event order whichever inspection thread
//! judges which 512-event slice, so two uninterrupted imports of one log, and an import
//! stopped part-way and run again (whose replay learns in id order, `resume.rs`), store
//! the same threats.
//!
//! The log is built so that the order matters: in each pair of slices of its one
//! stored group, twenty endpoints learn past their warm-up in the first slice, and the
//! second opens with a value each has never had. Learnt in event order, those are
//! judged against established endpoints and most are reported as anomalies; when a
//! second thread took the second slice while the first was still being learnt (as on
//! main before order1), many endpoints were not established yet when they came, and how
//! many were reported depended on the threads' timing: over 20 rounds of this test's
//! three imports on main's debug binary, no round gave the same threats thrice, and
//! the counts ranged from 2 to 81 (81 in event order; docs/BENCHMARKS.md, order1).

use std::path::Path;

use palisade_core::threat::Threat;

mod common;
#[path = "common/log_file.rs"]
mod log_file;
#[path = "common/stored.rs"]
mod stored;

use log_file::write_lines;
use stored::{palisade_ok as palisade, threats};

/// Events in a slice of the inspector (`SLICE` in `stages/inspector.rs`).
const SLICE: usize = 512;
/// Pairs of slices in the log.
const PAIRS: usize = 4;
/// Lines of the log: one stored group (an import's batch is 5,000 lines) of eight
/// slices, well over the 2,048 events from which the inspector uses its threads.
const LINES: usize = 2 * PAIRS * SLICE;
/// Endpoints per pair, and the requests each learns in the pair's first slice.
const ENDPOINTS: usize = 20;
const LEARNT: usize = 20;
/// The baselines' warm-up in this test (`[baselines] warmup`, its least), so that many
/// endpoints cross it in one slice.
const CONFIG: &str = "[baselines]\nwarmup = 10\n";
/// Where the resumed import's first run stops: one group under 2,048 events, which the
/// inspector judges on one thread.
const STOP: usize = 1_000;

/// Endpoint `k` of pair `pair`.
fn endpoint(pair: usize, k: usize) -> String {
    format!("/p{pair}/e{k}")
}

/// The log (`tools`-free, so the test needs nothing but the binary). Every endpoint is
/// seen once at the start (so that none is new to an established host later); in each
/// pair of slices, the first opens with 20 requests to each of the pair's endpoints
/// (numeric ids, interleaved), and the second with one value each has never had.
fn lines() -> Vec<String> {
    let intro: Vec<(usize, usize)> = (0..PAIRS)
        .flat_map(|p| (0..ENDPOINTS).map(move |k| (p, k)))
        .collect();
    let mut out = Vec::with_capacity(LINES);
    for i in 0..LINES {
        // Ten lines a second from 08:00:00, each from its own address (no scenario).
        let second = i / 10;
        let ts = format!(
            "12/Mar/2024:{:02}:{:02}:{:02} +0000",
            8 + second / 3600,
            (second / 60) % 60,
            second % 60
        );
        let ip = format!("10.{}.{}.{}", i / 65_536, (i / 256) % 256, i % 256);
        let (pair, at) = (i / (2 * SLICE), i % (2 * SLICE));
        let unseen = at
            .checked_sub(SLICE + 4)
            .filter(|d| d % 10 == 0 && d / 10 < ENDPOINTS);
        let target = if let Some(&(p, k)) = intro.get(i) {
            format!("{}?id={}", endpoint(p, k), 1000 + i)
        } else if at < ENDPOINTS * LEARNT {
            format!(
                "{}?id={}",
                endpoint(pair, at % ENDPOINTS),
                1000 + (i * 7) % 9000
            )
        } else if let Some(d) = unseen {
            let k = d / 10;
            format!("{}?id={}", endpoint(pair, k), "zq".repeat(10 + k % 9))
        } else {
            format!("/list-{}?page={}", i % 4, i % 97)
        };
        out.push(format!(
            "{ip} - - [{ts}] \"GET {target} HTTP/1.1\" 200 512 \"-\" \"Mozilla/5.0\""
        ));
    }
    out
}

/// What identifies a threat: its event, category and rules, sorted.
fn keys(threats: &[Threat]) -> Vec<(Option<i64>, String, Vec<u32>)> {
    let mut out: Vec<_> = threats
        .iter()
        .map(|t| (t.event_id, t.category.clone(), t.rule_ids.clone()))
        .collect();
    out.sort();
    out
}

fn anomalies(keys: &[(Option<i64>, String, Vec<u32>)]) -> Vec<Option<i64>> {
    keys.iter()
        .filter(|k| k.1 == "anomaly")
        .map(|k| k.0)
        .collect()
}

/// `palisade ingest` of `log` into `data` with the test's configuration (in `files`).
fn ingest(files: &Path, data: &Path, log: &str) -> std::process::Output {
    let config = files.join("palisade.toml");
    std::fs::write(&config, CONFIG).expect("write config");
    let config = config.to_str().expect("utf8");
    palisade(
        data,
        &[
            "ingest", "--quiet", "--config", config, "--source", "web", log,
        ],
    )
}

/// The threat keys of an uninterrupted import of `all`.
fn whole(files: &Path, name: &str, all: &[String]) -> Vec<(Option<i64>, String, Vec<u32>)> {
    let log = files.join(name);
    write_lines(&log, all, false);
    let data = tempfile::tempdir().expect("tempdir");
    let log = log.to_str().expect("utf8");
    ingest(files, data.path(), log);
    keys(&threats(data.path()))
}

/// The threat keys of an import stopped after `STOP` lines and run again on the
/// completed file (it resumes from the checkpoint and replays the first part).
fn resumed(files: &Path, all: &[String]) -> Vec<(Option<i64>, String, Vec<u32>)> {
    let log = files.join("resumed.log");
    let data = tempfile::tempdir().expect("tempdir");
    let (first, rest) = all.split_at(STOP);
    write_lines(&log, first, false);
    let log = log.to_str().expect("utf8");
    ingest(files, data.path(), log);
    write_lines(Path::new(log), rest, true);
    let out = ingest(files, data.path(), log);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("resumed after line {STOP}")),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    keys(&threats(data.path()))
}

#[test]
fn imports_of_one_log_store_the_same_anomalies_however_the_threads_ran() {
    let files = tempfile::tempdir().expect("tempdir");
    let all = lines();
    let first = whole(files.path(), "first.log", &all);
    // Learnt in event order, each pair's endpoints are established when their unseen
    // values come: most of these are anomalies (80 values, 4 pairs of 20).
    let found = anomalies(&first);
    assert!(found.len() >= 60, "{found:?}");
    let second = whole(files.path(), "second.log", &all);
    assert_eq!(anomalies(&second), found, "two uninterrupted imports");
    assert_eq!(second, first, "two uninterrupted imports");
    let again = resumed(files.path(), &all);
    assert_eq!(anomalies(&again), found, "stopped and resumed");
    assert_eq!(again, first, "stopped and resumed");
}
