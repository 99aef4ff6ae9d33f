//! The upkeep contract: retention deletes in batches, and integrity checks that pass on
//! a sound database and name what is wrong on a broken one.

use palisade_core::Timestamp;
use palisade_core::job::{JobState, LogLevel, NewJob, NewLogLine};
use palisade_core::security::NewAudit;
use palisade_core::severity::Severity;
use palisade_core::threat::Threat;
use palisade_core::verdict::Action;
use palisade_store::{AttemptEnd, DataKind, JobClaim, JobFinish, SharedStore};
use serde_json::json;

use crate::harness::{Db, T0, contract, ev, write};

contract!(
    retention_deletes_in_batches_per_kind,
    finished_jobs_and_their_logs_expire_but_live_ones_stay,
    integrity_checks_pass_then_name_what_is_broken,
);

const SEC: i64 = 1_000_000;

fn at(secs: i64) -> Timestamp {
    Timestamp(T0 + secs * SEC)
}

/// Deletes everything older than `before`, batch by batch; returns the batch sizes.
async fn drain(s: &SharedStore, kind: DataKind, before: Timestamp, batch: u32) -> Vec<u64> {
    let mut sizes = Vec::new();
    loop {
        let n = s.delete_older_than(kind, before, batch).await.unwrap();
        sizes.push(n);
        if n < u64::from(batch) {
            return sizes;
        }
    }
}

fn threat(ts: i64, event_id: Option<i64>) -> Threat {
    Threat {
        tags: Vec::new(),
        ts: at(ts),
        category: "sqli".into(),
        severity: Severity::Error,
        score: 5,
        rule_ids: vec![942100],
        client_ip: None,
        method: None,
        uri: None,
        source: "check".into(),
        event_id,
        decision: Action::Detect,
        evidence: Vec::new(),
    }
}

async fn retention_deletes_in_batches_per_kind(db: Db) {
    let s = &db.store;
    write(s, (0..7).map(|i| ev(i * SEC)).collect()).await;
    assert_eq!(drain(s, DataKind::Events, at(5), 2).await, vec![2, 2, 1]);
    assert_eq!(s.count_events().await.unwrap(), 2);
    assert_eq!(drain(s, DataKind::Events, at(5), 2).await, vec![0]);

    s.insert_threats(&[threat(1, None), threat(2, None), threat(9, None)])
        .await
        .unwrap();
    assert_eq!(drain(s, DataKind::Threats, at(5), 10).await, vec![2]);
    let left = s
        .query_threats(&palisade_store::ThreatQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(left.items.len(), 1);

    s.append_audit(NewAudit {
        actor: Some("a".into()),
        action: "user.create".into(),
        target: None,
        outcome: "success".into(),
        client_ip: None,
        detail: None,
    })
    .await
    .unwrap();
    let future = Timestamp::now().add_micros(3_600 * SEC);
    assert_eq!(drain(s, DataKind::Audit, future, 10).await, vec![1]);
    assert_eq!(drain(s, DataKind::DeadLetters, future, 10).await, vec![0]);
}

async fn finished_jobs_and_their_logs_expire_but_live_ones_stay(db: Db) {
    let s = &db.store;
    let job = |kind: &str| NewJob {
        kind: kind.into(),
        params: json!({}),
        max_attempts: 1,
        created_by: "t".into(),
        schedule_id: None,
        run_after: at(0),
    };
    let done = s.enqueue_job(&job("a"), at(0)).await.unwrap().id;
    let waiting = s.enqueue_job(&job("b"), at(0)).await.unwrap().id;
    s.claim_job(&JobClaim {
        worker: "w".into(),
        now: at(1),
        lease_until: at(30),
        kinds: vec!["a".into()],
        only_id: None,
    })
    .await
    .unwrap()
    .unwrap();
    let line = |t| NewLogLine {
        ts: at(t),
        level: LogLevel::Info,
        message: "x".into(),
    };
    s.append_job_logs(done, 1, &[line(1), line(2), line(50)])
        .await
        .unwrap();
    s.append_job_logs(waiting, 1, &[line(1)]).await.unwrap();
    s.finish_job(&JobFinish {
        id: done,
        attempt: 1,
        worker: "w".into(),
        now: at(3),
        end: AttemptEnd::Succeeded,
    })
    .await
    .unwrap()
    .unwrap();
    // Old lines of finished jobs go; the pending job's line stays.
    assert_eq!(drain(s, DataKind::JobLogs, at(10), 10).await, vec![2]);
    assert_eq!(s.job_logs(done, 0, 10).await.unwrap().items.len(), 1);
    assert_eq!(s.job_logs(waiting, 0, 10).await.unwrap().items.len(), 1);
    // Finished jobs go with what is left of theirs; the pending one stays.
    assert_eq!(drain(s, DataKind::Jobs, at(2), 10).await, vec![0]);
    assert_eq!(drain(s, DataKind::Jobs, at(10), 10).await, vec![1]);
    assert!(s.get_job(done).await.unwrap().is_none());
    assert!(s.job_logs(done, 0, 10).await.unwrap().items.is_empty());
    assert!(s.job_attempts(done).await.unwrap().is_empty());
    assert_eq!(
        s.get_job(waiting).await.unwrap().unwrap().state,
        JobState::Pending
    );
}

async fn integrity_checks_pass_then_name_what_is_broken(db: Db) {
    let s = &db.store;
    write(s, vec![ev(0), ev(1)]).await;
    let now = Timestamp::now();
    let checks = s.integrity_checks(now).await.unwrap();
    let bad: Vec<_> = checks.iter().filter(|c| !c.ok).collect();
    assert!(bad.is_empty(), "{bad:?}");
    let events = checks.iter().find(|c| c.check == "count:events").unwrap();
    assert_eq!(events.count, Some(2));
    assert!(
        checks
            .iter()
            .any(|c| c.check == "integrity_check" || c.check == "index_validity")
    );

    // A threat pointing at a missing event, and a checkpoint that cannot be resumed.
    s.insert_threats(&[threat(1, Some(999_999))]).await.unwrap();
    db.exec_raw(
        "INSERT INTO checkpoints (source, file_id, byte_offset, line_no, fingerprint, updated_at)
         VALUES ('broken', '', -5, 0, 0, 0)",
    )
    .await;
    let checks = s.integrity_checks(now).await.unwrap();
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.check.as_str())
        .collect();
    assert_eq!(failed, ["orphans:threats.event_id", "checkpoints"]);
    let orphan = checks
        .iter()
        .find(|c| c.check == "orphans:threats.event_id")
        .unwrap();
    assert_eq!(orphan.count, Some(1));
}
