//! `palisade ingest` into PostgreSQL with detection on (issue 16, `pgingest3`): a large
//! import sets the events indexes aside and builds them at its end, as it does without
//! detection. An import killed (SIGKILL) in the middle and run again stores exactly one
//! event per line, ends with every index of an import that kept them, and has
//! the same findings. On a schema of `PALISADE_TEST_DATABASE_URL`.

use std::path::Path;
use std::time::{Duration, Instant};

use tokio_postgres::{Client, NoTls};

mod common;
#[path = "common/injection_log.rs"]
mod injection_log;

const LINES: usize = 60_000;

/// The shared injection log, LINES lines.
fn log(dir: &Path) -> std::path::PathBuf {
    injection_log::write(dir, LINES).expect("write log")
}

/// A fresh schema of the test database, and the URL that uses it.
async fn schema(admin: &Client, base: &str, name: &str) -> String {
    admin
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"
        ))
        .await
        .expect("create schema");
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{name}")
}

fn ingest(data: &Path, url: &str, log: &Path, extra: &[&str]) -> std::process::Command {
    let mut command = common::palisade(data, ["ingest", "--quiet", "--database-url", url]);
    command.args(extra).arg(log);
    command
}

fn run(mut command: std::process::Command) {
    let o = command.output().expect("run palisade");
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

async fn one_i64(client: &Client, sql: &str) -> i64 {
    client
        .query_one(sql, &[])
        .await
        .expect(sql)
        .get::<_, i64>(0)
}

/// The secondary indexes of `events` in `schema`, as (name, definition less the schema).
async fn indexes(client: &Client, schema: &str) -> Vec<(String, String)> {
    client
        .query(
            "SELECT indexname::text, replace(indexdef, $1, '') FROM pg_indexes
              WHERE schemaname = $2 AND tablename = 'events' ORDER BY indexname",
            &[&format!("{schema}."), &schema],
        )
        .await
        .expect("indexes")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// Each threat's event, named by its client address (one per line of the log, so the
/// same in every run; event ids are not: a killed `COPY` may have drawn ids that the
/// rerun skips), with its rule ids.
async fn findings(client: &Client, schema: &str) -> Vec<(String, Vec<i32>)> {
    client
        .query(
            &format!(
                "SELECT e.client_ip::text, array_agg(r.rule_id ORDER BY r.rule_id)
                   FROM {schema}.threats t
                   JOIN {schema}.events e ON e.id = t.event_id
                   JOIN {schema}.threat_rules r ON r.threat_id = t.id
                  GROUP BY t.id, e.client_ip ORDER BY 1, 2"
            ),
            &[],
        )
        .await
        .expect("findings")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_import_with_detection_resumes_exactly_with_every_index() {
    if std::env::var("PALISADE_SKIP_POSTGRES").is_ok_and(|v| v == "1") {
        eprintln!("PALISADE_SKIP_POSTGRES=1: skipped");
        return;
    }
    let base = std::env::var("PALISADE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let (admin, conn) = tokio_postgres::connect(&base, NoTls)
        .await
        .expect("PostgreSQL must be reachable for this test");
    tokio::spawn(conn);
    let tag = std::process::id();
    let (kept, bulk) = (format!("bulk_kept_{tag}"), format!("bulk_killed_{tag}"));
    let files = tempfile::tempdir().expect("tempdir");
    let log = log(files.path());

    // The reference: an import that kept its indexes and that nothing stopped.
    let kept_url = schema(&admin, &base, &kept).await;
    let data = tempfile::tempdir().expect("tempdir");
    run(ingest(data.path(), &kept_url, &log, &["--keep-indexes"]));
    let expected = findings(&admin, &kept).await;
    assert_eq!(expected.len(), (0..LINES).filter(|i| i % 7 == 3).count());

    // Killed once some events are stored, with the indexes aside.
    let bulk_url = schema(&admin, &base, &bulk).await;
    let data = tempfile::tempdir().expect("tempdir");
    let mut child = ingest(data.path(), &bulk_url, &log, &[])
        .spawn()
        .expect("start palisade");
    let deadline = Instant::now() + Duration::from_secs(120);
    let stored = loop {
        let n = admin
            .query_one(&format!("SELECT count(*) FROM {bulk}.events"), &[])
            .await
            .map(|r| r.get::<_, i64>(0))
            .unwrap_or(0);
        if n > 0 {
            break n;
        }
        assert!(Instant::now() < deadline, "no event stored in 120 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    child.kill().expect("kill palisade");
    let _ = child.wait();
    let stored_at_kill = one_i64(&admin, &format!("SELECT count(*) FROM {bulk}.events")).await;
    assert!(
        stored_at_kill < i64::try_from(LINES).expect("lines"),
        "the kill came after the import ({stored} then {stored_at_kill} events)"
    );
    assert_eq!(
        indexes(&admin, &bulk).await.len(),
        1,
        "only the primary key while the indexes are aside"
    );

    // The next run builds them, resumes after the checkpoint and inspects the rest.
    run(ingest(data.path(), &bulk_url, &log, &[]));
    let count = one_i64(&admin, &format!("SELECT count(*) FROM {bulk}.events")).await;
    // No line lost, none stored twice (ids may skip the values a killed COPY drew).
    assert_eq!(
        count,
        i64::try_from(LINES).expect("lines"),
        "one event per line"
    );
    assert_eq!(indexes(&admin, &bulk).await, indexes(&admin, &kept).await);
    let listed = one_i64(
        &admin,
        &format!("SELECT count(*) FROM {bulk}.settings WHERE key = 'bulk_load.events_indexes'"),
    )
    .await;
    assert_eq!(listed, 0, "nothing left aside");
    assert_eq!(findings(&admin, &bulk).await, expected);

    let _ = admin
        .batch_execute(&format!(
            "DROP SCHEMA {kept} CASCADE; DROP SCHEMA {bulk} CASCADE"
        ))
        .await;
}
