//! Exact resume of inspection (issue 16): events an import stored but had not inspected
//! when it stopped (killed) are inspected by the next run, and no threat is stored twice.
//! A kill is simulated without timing: `--no-detect` stores the events uninspected, and
//! forgetting the marks it moved leaves them as a kill between the store and the
//! inspector does.

use std::ffi::OsStr;
use std::path::Path;

use palisade_core::threat::Threat;

mod common;
#[path = "common/injection_log.rs"]
mod injection_log;
#[path = "common/stored.rs"]
mod stored;

use stored::{open, palisade_ok as palisade, runtime};

/// Every stored threat, oldest event first.
fn threats(data: &Path) -> Vec<Threat> {
    let mut all = stored::threats(data);
    all.sort_by_key(|t| t.event_id);
    all
}

/// What a kill between the store and the inspector leaves after a `--no-detect` import:
/// the events stored, their source's mark not moved over them.
fn store_uninspected(data: &Path, log: &str) {
    palisade(data, &["ingest", "--quiet", "--no-detect", log]);
    let db = rusqlite::Connection::open(data.join("palisade.db")).expect("open database");
    db.execute("DELETE FROM inspection_marks", [])
        .expect("forget the marks");
}

/// The shared injection log, 7_000 lines.
fn log(dir: &Path) -> std::path::PathBuf {
    injection_log::write(dir, 7_000).expect("write log")
}

/// What identifies a threat's finding: its event and its rules.
fn findings(threats: &[Threat]) -> Vec<(Option<i64>, Vec<u32>)> {
    threats
        .iter()
        .map(|t| (t.event_id, t.rule_ids.clone()))
        .collect()
}

#[test]
fn events_stored_uninspected_are_inspected_by_the_next_run_once() {
    let files = tempfile::tempdir().expect("tempdir");
    let log = log(files.path());
    let log = log.to_str().expect("utf8");

    // An import that nothing stopped.
    let whole = tempfile::tempdir().expect("tempdir");
    palisade(whole.path(), &["ingest", "--quiet", log]);
    let expected = findings(&threats(whole.path()));
    assert_eq!(expected.len(), 1_000, "one line in seven is an attack");

    // Every event stored, none inspected (a kill before the inspector reached them);
    // the next run has no line left to read but inspects them first.
    let killed = tempfile::tempdir().expect("tempdir");
    store_uninspected(killed.path(), log);
    assert!(threats(killed.path()).is_empty());
    palisade(killed.path(), &["ingest", "--quiet", log]);
    assert_eq!(findings(&threats(killed.path())), expected);
    // Once inspected, never again.
    palisade(killed.path(), &["ingest", "--quiet", log]);
    assert_eq!(findings(&threats(killed.path())), expected);
}

#[test]
fn events_whose_threats_were_stored_before_the_kill_get_no_second_threat() {
    let files = tempfile::tempdir().expect("tempdir");
    let log = log(files.path());
    let log = log.to_str().expect("utf8");
    let whole = tempfile::tempdir().expect("tempdir");
    palisade(whole.path(), &["ingest", "--quiet", log]);
    let stored = threats(whole.path());

    // The threats of the first half stored, the mark not moved yet: the kill came
    // between the threats and the mark.
    let killed = tempfile::tempdir().expect("tempdir");
    store_uninspected(killed.path(), log);
    let half: Vec<Threat> = stored[..stored.len() / 2].to_vec();
    runtime().block_on(async {
        open(killed.path())
            .insert_threats(&half)
            .await
            .expect("insert");
    });
    palisade(killed.path(), &["ingest", "--quiet", log]);
    assert_eq!(findings(&threats(killed.path())), findings(&stored));
}

/// Events stored with `--no-detect` were left uninspected by choice: a later import of
/// the same source does not inspect them (nor keeps its new lines waiting on them).
#[test]
fn events_stored_without_detection_stay_uninspected_by_choice() {
    let files = tempfile::tempdir().expect("tempdir");
    let log = log(files.path());
    let more = files.path().join("more.log");
    std::fs::write(
        &more,
        "10.9.0.1 - - [10/Oct/2023:13:56:00 +0000] \"GET /item?id=1%27%20or%201=1-- HTTP/1.1\" 200 5 \"-\" \"Mozilla/5.0\"\n",
    )
    .expect("write log");
    let data = tempfile::tempdir().expect("tempdir");
    let source = ["--source", "web"];
    palisade(
        data.path(),
        &[
            &["ingest", "--quiet", "--no-detect"][..],
            &source,
            &[log.to_str().expect("utf8")],
        ]
        .concat(),
    );
    palisade(
        data.path(),
        &[
            &["ingest", "--quiet"][..],
            &source,
            &[more.to_str().expect("utf8")],
        ]
        .concat(),
    );
    let found = threats(data.path());
    assert_eq!(
        found.len(),
        1,
        "only the new line's attack: {:?}",
        findings(&found)
    );
    assert_eq!(found[0].event_id, Some(7_001));
}

/// The service does the same for its tails: the stored events of a tail past its mark
/// (here stored and never inspected, as a crash of the service leaves them) are
/// inspected at start-up, each attack once.
#[test]
fn the_service_inspects_a_tails_stored_events_left_uninspected() {
    use palisade_core::{Event, EventKind, Timestamp};
    let data = tempfile::tempdir().expect("tempdir");
    let log = data.path().join("tail.log");
    std::fs::write(&log, "").expect("write log");
    let source = log.display().to_string();
    let attacks = runtime().block_on(async {
        let store = open(data.path());
        store.migrate().await.expect("migrate");
        let events: Vec<Event> = (0..70)
            .map(|i| Event {
                kind: EventKind::Http,
                ts: Timestamp::now(),
                source: source.clone(),
                method: Some("GET".into()),
                path: Some("/item".into()),
                query: Some(if i % 7 == 3 {
                    format!("id={i}%27%20or%201=1--")
                } else {
                    format!("page={i}")
                }),
                client_ip: Some("192.0.2.9".parse().expect("ip")),
                ..Event::default()
            })
            .collect();
        let out = store
            .write_batch(palisade_store::IngestBatch {
                events,
                ..palisade_store::IngestBatch::default()
            })
            .await
            .expect("store events");
        let first = out.first_event_id.expect("ids");
        (0..70)
            .filter(|i| i % 7 == 3)
            .map(|i| Some(first + i))
            .collect::<Vec<_>>()
    });
    let mut server = common::palisade(
        data.path(),
        [
            OsStr::new("serve"),
            OsStr::new("--listen"),
            OsStr::new("127.0.0.1:18811"),
            OsStr::new("--format"),
            OsStr::new("combined"),
            OsStr::new("--tail"),
            log.as_os_str(),
        ],
    )
    .stdout(std::process::Stdio::null())
    .spawn()
    .expect("start palisade");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while threats(data.path()).len() < attacks.len() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // A little longer: nothing more may come.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    server.kill().expect("kill");
    server.wait().expect("wait");
    let ids: Vec<Option<i64>> = threats(data.path()).iter().map(|t| t.event_id).collect();
    assert_eq!(ids, attacks);
}
