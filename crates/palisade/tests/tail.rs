//! The file tail, driven through the real binary: rotation, truncation and `kill -9`
//! with an exact row count at the end (no line lost, none stored twice).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use palisade_store::SharedStore;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_palisade")
}

fn start(data: &Path, log: &Path) -> Child {
    Command::new(bin())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--format",
            "combined",
            "--tail",
        ])
        .arg(log)
        .arg("--data-dir")
        .arg(data)
        .env("PALISADE_LOG", "warn")
        .env_remove("PALISADE_DATABASE_URL")
        .env_remove("PALISADE_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start palisade")
}

fn lines(from: usize, to: usize) -> String {
    let mut s = String::new();
    for n in from..to {
        s.push_str(&format!(
            "10.0.{}.{} - - [10/Oct/2023:13:55:36 +0000] \"GET /l/{n} HTTP/1.1\" 200 {n} \"-\" \"tail-test\"\n",
            (n / 250) % 250,
            n % 250
        ));
    }
    s
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open log");
    f.write_all(text.as_bytes()).expect("append");
}

async fn count(store: &SharedStore) -> u64 {
    store.count_events().await.unwrap_or(0)
}

/// Waits until exactly `want` events are stored and the count stays there.
async fn settle_at(store: &SharedStore, want: u64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = count(store).await;
        assert!(
            n <= want,
            "{what}: {n} events stored, more than the {want} lines written (duplicates)"
        );
        if n == want {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            assert_eq!(count(store).await, want, "{what}: count moved past {want}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: only {n} of {want} events stored"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_survives_rotation_truncation_and_kill_9_with_an_exact_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data: PathBuf = dir.path().join("data");
    let log = dir.path().join("access.log");
    let rotated = dir.path().join("access.log.1");
    append(&log, &lines(0, 1000));

    let mut server = start(&data, &log);
    // The server creates and migrates the database; wait for the file to exist.
    let db = data.join("palisade.db");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !db.exists() {
        assert!(Instant::now() < deadline, "database never created");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let store = palisade_store::open("sqlite://palisade.db", &data).expect("open store");
    settle_at(&store, 1000, "initial file").await;

    // Rename-rotation while running, with late writes to the old file.
    std::fs::rename(&log, &rotated).expect("rotate");
    append(&rotated, &lines(1000, 1200));
    append(&log, &lines(1200, 1500));
    settle_at(&store, 1500, "rotation while running").await;

    // kill -9 in the middle of a stream of writes.
    let writer_log = log.clone();
    let writer = std::thread::spawn(move || {
        for chunk in 0..30 {
            append(&writer_log, &lines(1500 + chunk * 100, 1600 + chunk * 100));
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    tokio::time::sleep(Duration::from_millis(60)).await;
    server.kill().expect("kill -9");
    let _ = server.wait();
    writer.join().expect("writer");
    let at_kill = count(&store).await;
    assert!(
        at_kill < 4500,
        "the kill should land mid-stream (stored {at_kill})"
    );

    // Rotation while stopped: the rest of the old file must still be read.
    std::fs::rename(&log, &rotated).expect("rotate while down");
    append(&log, &lines(4500, 4750));
    let mut server = start(&data, &log);
    settle_at(&store, 4750, "restart after kill -9 and rotation").await;

    // copytruncate: the file is emptied in place and written again.
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&log)
        .expect("truncate");
    append(&log, &lines(4750, 4850));
    settle_at(&store, 4850, "truncation").await;

    // Graceful stop flushes and exits 0.
    let pid = server.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let status = server.wait().expect("wait");
    assert!(status.success(), "graceful shutdown exited with {status}");
    assert_eq!(count(&store).await, 4850);
    let sources = store.checkpoints().await.expect("checkpoints");
    assert_eq!(sources.len(), 1);
}
