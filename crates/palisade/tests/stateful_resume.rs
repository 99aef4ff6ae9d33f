//! Exact resume of the stateful detectors (issue 16): an import stopped part-way and
//! run again stores the same anomaly (per-endpoint baselines) and scenario threats as an
//! import nothing stopped, not only the same signature threats.
//!
//! A stop is simulated without timing: the first part of the log is imported from a file
//! that is then completed in place (same device, inode and first line), so the next run
//! resumes after the first part's checkpoint, as after a kill between two batches. A kill
//! between the store and the stages is simulated on top by moving the inspection mark
//! back and deleting the threats they had stored past it.

use std::path::Path;

use palisade_core::threat::Threat;

mod common;
#[path = "common/log_file.rs"]
mod log_file;
#[path = "common/stored.rs"]
mod stored;

use log_file::write_lines;
use stored::{palisade_ok as palisade, threats};

/// Lines of the log, and where the stop comes. Each run stores its lines in one batch
/// of fewer than 2,048 events, which the inspector judges on one thread, in order (see
/// `resume.rs` on larger groups).
const LINES: usize = 2_000;
const STOP: usize = 1_000;

/// The log: an endpoint learnt from benign lines, values it has never seen (anomalies)
/// before and just after the stop, an address probing missing paths that overflows the
/// probing scenario in the first part, and another whose probes straddle the stop (it
/// overflows only if the scenario remembers the first part's).
fn lines() -> Vec<String> {
    let mut out = Vec::with_capacity(LINES);
    for i in 0..LINES {
        // Twenty lines a second from 13:55:00.
        let second = i / 20;
        let ts = format!(
            "10/Oct/2023:{:02}:{:02}:{:02} +0000",
            13 + (55 + second / 60) / 60,
            (55 + second / 60) % 60,
            second % 60
        );
        let probe = |ip: &str, n: usize| {
            format!("{ip} - - [{ts}] \"GET /missing-{n} HTTP/1.1\" 404 9 \"-\" \"Mozilla/5.0\"")
        };
        let line = match i {
            300..=311 => probe("192.0.2.8", i - 300),
            _ if (STOP - 40..STOP - 33).contains(&i) => probe("192.0.2.7", i),
            _ if (STOP + 10..STOP + 17).contains(&i) => probe("192.0.2.7", i),
            450 | 700 | 900 | 1_005 | 1_030 | 1_060 | 1_400 | 1_900 => format!(
                "10.1.0.{} - - [{ts}] \"GET /item?page={} HTTP/1.1\" 200 5 \"-\" \"Mozilla/5.0\"",
                i % 250,
                "zq".repeat(12 + i % 7)
            ),
            _ => format!(
                "10.0.{}.{} - - [{ts}] \"GET /item?page={} HTTP/1.1\" 200 5 \"-\" \"Mozilla/5.0\"",
                i / 250,
                i % 250,
                i % 97
            ),
        };
        out.push(line);
    }
    out
}

/// What identifies a threat: its event, source, category and rules, sorted.
fn findings(threats: &[Threat]) -> Vec<(Option<i64>, String, String, Vec<u32>)> {
    let mut out: Vec<_> = threats
        .iter()
        .map(|t| {
            (
                t.event_id,
                t.source.clone(),
                t.category.clone(),
                t.rule_ids.clone(),
            )
        })
        .collect();
    out.sort();
    out
}

fn count(found: &[(Option<i64>, String, String, Vec<u32>)], category: &str) -> usize {
    found.iter().filter(|f| f.2 == category).count()
}

/// The threats of an import nothing stopped.
fn whole(files: &Path, all: &[String]) -> Vec<(Option<i64>, String, String, Vec<u32>)> {
    let log = files.join("whole.log");
    write_lines(&log, all, false);
    let data = tempfile::tempdir().expect("tempdir");
    palisade(
        data.path(),
        &[
            "ingest",
            "--quiet",
            "--source",
            "web",
            log.to_str().expect("utf8"),
        ],
    );
    findings(&threats(data.path()))
}

/// The threats of an import stopped after `STOP` lines; `lag` runs between the two runs
/// on the database (simulating what a kill left undone).
fn resumed(
    files: &Path,
    all: &[String],
    lag: impl FnOnce(&rusqlite::Connection),
) -> Vec<(Option<i64>, String, String, Vec<u32>)> {
    let log = files.join("resumed.log");
    let data = tempfile::tempdir().expect("tempdir");
    let (first, rest) = all.split_at(STOP);
    write_lines(&log, first, false);
    let log = log.to_str().expect("utf8");
    palisade(data.path(), &["ingest", "--quiet", "--source", "web", log]);
    {
        let db =
            rusqlite::Connection::open(data.path().join("palisade.db")).expect("open database");
        lag(&db);
    }
    write_lines(Path::new(log), rest, true);
    let out = palisade(data.path(), &["ingest", "--quiet", "--source", "web", log]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("resumed after line {STOP}")),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    findings(&threats(data.path()))
}

#[test]
fn a_resumed_import_gives_the_anomaly_and_scenario_threats_of_an_uninterrupted_one() {
    let files = tempfile::tempdir().expect("tempdir");
    let all = lines();
    let expected = whole(files.path(), &all);
    // The log does what it is for: anomalies on both sides of the stop, one probing
    // overflow in the first part and one that needs the first part's probes.
    assert!(count(&expected, "anomaly") >= 4, "{expected:?}");
    assert_eq!(count(&expected, "scanner"), 2, "{expected:?}");

    let stopped_between_batches = resumed(files.path(), &all, |_| {});
    assert_eq!(stopped_between_batches, expected);

    // The stages had not reached the last 400 lines of the first part: their mark is
    // behind, and the threats they had stored past it (none of the scenarios', here
    // the second overflow comes after the stop) are half there.
    let stopped_before_the_stages = resumed(files.path(), &all, |db| {
        db.execute("UPDATE inspection_marks SET event_id = 600", [])
            .expect("move the mark back");
        db.execute(
            "DELETE FROM threats WHERE event_id > 800 AND source <> 'scenario'",
            [],
        )
        .expect("forget threats");
    });
    assert_eq!(stopped_before_the_stages, expected);
}

/// The marker an import of `source` sets under `data` while under way (the name
/// ARCHITECTURE.md documents: the source's 64-bit FNV-1a digest).
fn running_marker(data: &Path, source: &str) -> std::path::PathBuf {
    let digest = source.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    data.join("imports").join(format!("{digest:016x}.running"))
}

/// `palisade ingest --source web LOG` with info logs: what the run printed.
fn ingest_logged(data: &Path, log: &str) -> String {
    let out = common::palisade(data, ["ingest", "--source", "web", log])
        .env("PALISADE_LOG", "info")
        .output()
        .expect("run palisade");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    text
}

#[test]
fn a_finished_import_run_again_is_replayed_only_when_the_last_one_was_killed() {
    let files = tempfile::tempdir().expect("tempdir");
    let data = tempfile::tempdir().expect("tempdir");
    let log = files.path().join("finished.log");
    write_lines(&log, &lines(), false);
    let log = log.to_str().expect("utf8");
    palisade(data.path(), &["ingest", "--quiet", "--source", "web", log]);
    let marker = running_marker(data.path(), "web");
    assert!(!marker.exists(), "a clean end clears its marker");
    let expected = findings(&threats(data.path()));

    // Nothing to read, nothing uninspected, a clean last run: no replay.
    let rerun = ingest_logged(data.path(), log);
    assert!(!rerun.contains("Replayed the stored events"), "{rerun}");
    assert_eq!(findings(&threats(data.path())), expected);

    // The marker a killed run leaves (perhaps in its final drain): replayed, and
    // nothing stored twice.
    std::fs::write(&marker, b"").expect("leave the marker");
    let after_kill = ingest_logged(data.path(), log);
    assert!(
        after_kill.contains("Replayed the stored events"),
        "{after_kill}"
    );
    assert!(!marker.exists(), "the rerun ended cleanly");
    assert_eq!(findings(&threats(data.path())), expected);
}
