//! The job queue contract: enqueue, claim (also racing), leases, retries, cancellation,
//! logs, outputs and schedules.

use std::collections::HashSet;
use std::sync::Arc;

use palisade_core::Timestamp;
use palisade_core::job::{
    AttemptOutcome, JobState, LogLevel, NewJob, NewLogLine, NewSchedule, ScheduleOrigin,
};
use palisade_store::{
    AttemptEnd, CancelOutcome, Cursor, JobClaim, JobFinish, JobQuery, MAX_INTERRUPTIONS,
    SharedStore, StoreError,
};
use serde_json::json;

use crate::harness::{Db, T0, contract};

contract!(
    jobs_round_trip_through_claim_progress_and_success,
    claims_take_ready_jobs_of_free_kinds_in_order,
    failed_attempts_are_retried_after_backoff_and_all_kept,
    expired_leases_are_taken_up_again_as_interrupted,
    cancellation_of_pending_and_running_jobs,
    two_claimers_racing_never_take_the_same_job,
    jobs_are_filtered_and_paginated,
    logs_and_outputs_page_in_order_and_delete,
    schedules_crud_sync_and_fire_once,
);

const SEC: i64 = 1_000_000;

fn at(secs: i64) -> Timestamp {
    Timestamp(T0 + secs * SEC)
}

fn new_job(kind: &str, max_attempts: u32) -> NewJob {
    NewJob {
        kind: kind.into(),
        params: json!({"path": "/var/log/a.log"}),
        max_attempts,
        created_by: "alice".into(),
        schedule_id: None,
        run_after: at(0),
    }
}

fn claim(worker: &str, now: i64, kinds: &[&str]) -> JobClaim {
    JobClaim {
        worker: worker.into(),
        now: at(now),
        lease_until: at(now + 30),
        kinds: kinds.iter().map(|k| (*k).to_owned()).collect(),
        only_id: None,
    }
}

fn finish(id: i64, attempt: u32, worker: &str, now: i64, end: AttemptEnd) -> JobFinish {
    JobFinish {
        id,
        attempt,
        worker: worker.into(),
        now: at(now),
        end,
    }
}

async fn enqueue(s: &SharedStore, job: NewJob, now: i64) -> i64 {
    s.enqueue_job(&job, at(now)).await.unwrap().id
}

async fn jobs_round_trip_through_claim_progress_and_success(db: Db) {
    let s = &db.store;
    let job = s
        .enqueue_job(&new_job("import_logs", 3), at(0))
        .await
        .unwrap();
    assert_eq!(job.state, JobState::Pending);
    assert_eq!((job.attempt, job.max_attempts, job.failures), (0, 3, 0));
    assert_eq!(job.params, json!({"path": "/var/log/a.log"}));
    assert_eq!(job.created_by, "alice");
    assert_eq!((job.created_at, job.run_after), (at(0), at(0)));
    assert_eq!(
        (job.started_at, job.finished_at, job.worker.clone()),
        (None, None, None)
    );
    assert_eq!(s.get_job(job.id).await.unwrap(), Some(job.clone()));
    assert_eq!(s.get_job(job.id + 100).await.unwrap(), None);

    let got = s
        .claim_job(&claim("w1", 5, &["import_logs"]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.id, job.id);
    assert_eq!(got.state, JobState::Running);
    assert_eq!(got.attempt, 1);
    assert_eq!(got.worker.as_deref(), Some("w1"));
    assert_eq!(got.lease_until, Some(at(35)));
    assert_eq!(got.started_at, Some(at(5)));
    assert!(
        s.claim_job(&claim("w2", 6, &["import_logs"]))
            .await
            .unwrap()
            .is_none()
    );

    s.set_job_progress(job.id, "w1", 40, Some("half\0way"), at(7))
        .await
        .unwrap();
    s.set_job_progress(job.id, "w2", 90, Some("not mine"), at(7))
        .await
        .unwrap();
    let mid = s.get_job(job.id).await.unwrap().unwrap();
    assert_eq!(
        (mid.progress, mid.progress_message.as_deref()),
        (40, Some("half\u{fffd}way"))
    );
    let lease = s.renew_job_lease(job.id, "w1", at(60)).await.unwrap();
    assert!(lease.held && !lease.cancel_requested);
    assert!(!s.renew_job_lease(job.id, "w2", at(60)).await.unwrap().held);
    assert_eq!(
        s.get_job(job.id).await.unwrap().unwrap().lease_until,
        Some(at(60))
    );

    // A report from another worker or for another attempt changes nothing.
    let wrong = finish(job.id, 1, "w2", 8, AttemptEnd::Succeeded);
    assert!(s.finish_job(&wrong).await.unwrap().is_none());
    let stale = finish(job.id, 2, "w1", 8, AttemptEnd::Succeeded);
    assert!(s.finish_job(&stale).await.unwrap().is_none());

    let done = s
        .finish_job(&finish(job.id, 1, "w1", 9, AttemptEnd::Succeeded))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.state, JobState::Succeeded);
    assert_eq!(done.progress, 100);
    assert_eq!(done.finished_at, Some(at(9)));
    assert_eq!((done.worker, done.lease_until), (None, None));
    let attempts = s.job_attempts(job.id).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].worker, "w1");
    assert_eq!(attempts[0].started_at, at(5));
    assert_eq!(attempts[0].finished_at, Some(at(9)));
    assert_eq!(attempts[0].outcome, Some(AttemptOutcome::Succeeded));
    // Finished jobs are never claimed again.
    assert!(
        s.claim_job(&claim("w1", 100, &["import_logs"]))
            .await
            .unwrap()
            .is_none()
    );
    let counts = s.job_counts().await.unwrap();
    assert_eq!(
        (counts.succeeded, counts.pending, counts.running),
        (1, 0, 0)
    );
}

async fn claims_take_ready_jobs_of_free_kinds_in_order(db: Db) {
    let s = &db.store;
    let a = enqueue(s, new_job("a", 1), 0).await;
    let b = enqueue(s, new_job("b", 1), 1).await;
    let later = enqueue(
        s,
        NewJob {
            run_after: at(20),
            ..new_job("a", 1)
        },
        2,
    )
    .await;
    let a2 = enqueue(s, new_job("a", 1), 3).await;
    assert!(s.claim_job(&claim("w", 10, &[])).await.unwrap().is_none());
    assert!(
        s.claim_job(&claim("w", 10, &["c"]))
            .await
            .unwrap()
            .is_none()
    );
    let only_b = s.claim_job(&claim("w", 10, &["b"])).await.unwrap().unwrap();
    assert_eq!(only_b.id, b);
    let first = s
        .claim_job(&claim("w", 10, &["a", "b"]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.id, a);
    let second = s.claim_job(&claim("w", 10, &["a"])).await.unwrap().unwrap();
    assert_eq!(
        second.id, a2,
        "the job waiting for t=20 is not ready at t=10"
    );
    assert!(
        s.claim_job(&claim("w", 10, &["a"]))
            .await
            .unwrap()
            .is_none()
    );
    let third = s.claim_job(&claim("w", 20, &["a"])).await.unwrap().unwrap();
    assert_eq!(third.id, later);
    // Only one job when asked for one.
    let x = enqueue(s, new_job("a", 1), 21).await;
    let y = enqueue(s, new_job("a", 1), 22).await;
    let mut only = claim("cli", 25, &["a"]);
    only.only_id = Some(y);
    assert_eq!(s.claim_job(&only).await.unwrap().unwrap().id, y);
    assert!(s.claim_job(&only).await.unwrap().is_none());
    assert_eq!(
        s.claim_job(&claim("w", 25, &["a"]))
            .await
            .unwrap()
            .unwrap()
            .id,
        x
    );
}

async fn failed_attempts_are_retried_after_backoff_and_all_kept(db: Db) {
    let s = &db.store;
    let id = enqueue(s, new_job("command", 2), 0).await;
    let one = s
        .claim_job(&claim("w1", 1, &["command"]))
        .await
        .unwrap()
        .unwrap();
    let line = |t: i64, m: &str| NewLogLine {
        ts: at(t),
        level: LogLevel::Stderr,
        message: m.into(),
    };
    s.append_job_logs(id, one.attempt, &[line(1, "first try")])
        .await
        .unwrap();
    let failed = AttemptEnd::Failed {
        outcome: AttemptOutcome::Failed,
        error: "exit status 3".into(),
        retry_at: Some(at(20)),
    };
    let back = s
        .finish_job(&finish(id, 1, "w1", 2, failed))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back.state, JobState::Pending);
    assert_eq!((back.failures, back.run_after), (1, at(20)));
    assert_eq!(back.error.as_deref(), Some("exit status 3"));
    assert!(back.worker.is_none());
    assert!(
        s.claim_job(&claim("w2", 10, &["command"]))
            .await
            .unwrap()
            .is_none()
    );
    let two = s
        .claim_job(&claim("w2", 20, &["command"]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(two.attempt, 2);
    assert_eq!(
        two.started_at,
        Some(at(1)),
        "started_at is the first attempt's"
    );
    s.append_job_logs(id, 2, &[line(21, "second try")])
        .await
        .unwrap();
    let timed_out = AttemptEnd::Failed {
        outcome: AttemptOutcome::TimedOut,
        error: "ran longer than 10s".into(),
        retry_at: None,
    };
    let dead = s
        .finish_job(&finish(id, 2, "w2", 30, timed_out))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(dead.state, JobState::Failed);
    assert_eq!((dead.failures, dead.finished_at), (2, Some(at(30))));

    // A manual retry keeps every attempt and log line and allows more failures.
    let again = s.retry_job(id, 1, at(40)).await.unwrap().unwrap();
    assert_eq!(again.state, JobState::Pending);
    assert_eq!(
        (again.max_attempts, again.run_after, again.finished_at),
        (3, at(40), None)
    );
    let three = s
        .claim_job(&claim("w3", 41, &["command"]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(three.attempt, 3);
    s.finish_job(&finish(id, 3, "w3", 42, AttemptEnd::Succeeded))
        .await
        .unwrap();
    let attempts = s.job_attempts(id).await.unwrap();
    let outcomes: Vec<_> = attempts.iter().map(|a| (a.attempt, a.outcome)).collect();
    assert_eq!(
        outcomes,
        vec![
            (1, Some(AttemptOutcome::Failed)),
            (2, Some(AttemptOutcome::TimedOut)),
            (3, Some(AttemptOutcome::Succeeded)),
        ]
    );
    assert_eq!(attempts[1].error.as_deref(), Some("ran longer than 10s"));
    let logs = s.job_logs(id, 0, 100).await.unwrap().items;
    let seen: Vec<_> = logs
        .iter()
        .map(|l| (l.attempt, l.message.as_str()))
        .collect();
    assert_eq!(seen, vec![(1, "first try"), (2, "second try")]);
    // Only failed or cancelled jobs are retried.
    let done = s.retry_job(id, 1, at(50)).await.unwrap().unwrap();
    assert_eq!(done.state, JobState::Succeeded);
    assert!(s.retry_job(id + 1000, 1, at(50)).await.unwrap().is_none());
}

async fn expired_leases_are_taken_up_again_as_interrupted(db: Db) {
    let s = &db.store;
    let id = enqueue(s, new_job("import_logs", 1), 0).await;
    let mut short = claim("dead", 1, &["import_logs"]);
    short.lease_until = at(3);
    s.claim_job(&short).await.unwrap().unwrap();
    // Still held at t=2.
    assert!(
        s.claim_job(&claim("alive", 2, &["import_logs"]))
            .await
            .unwrap()
            .is_none()
    );
    // Cut off: taken up again at t=4, and a cut-off attempt does not use up a retry.
    let again = s
        .claim_job(&claim("alive", 4, &["import_logs"]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((again.id, again.attempt, again.interruptions), (id, 2, 1));
    assert_eq!(again.failures, 0);
    assert_eq!(again.worker.as_deref(), Some("alive"));
    assert!(!s.renew_job_lease(id, "dead", at(60)).await.unwrap().held);
    let late = finish(id, 1, "dead", 5, AttemptEnd::Succeeded);
    assert!(s.finish_job(&late).await.unwrap().is_none());
    let attempts = s.job_attempts(id).await.unwrap();
    assert_eq!(attempts[0].outcome, Some(AttemptOutcome::Interrupted));
    assert_eq!(attempts[0].finished_at, Some(at(4)));
    assert!(attempts[1].outcome.is_none());
    // A graceful stop hands the job back at once.
    let handed = s
        .finish_job(&finish(
            id,
            2,
            "alive",
            6,
            AttemptEnd::Interrupted {
                reason: "shutting down".into(),
            },
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((handed.state, handed.interruptions), (JobState::Pending, 2));
    assert_eq!(handed.run_after, at(6));

    // A job that keeps killing its process is failed after MAX_INTERRUPTIONS.
    let mut now = 10;
    let mut claims = 0;
    loop {
        let mut c = claim("crashy", now, &["import_logs"]);
        c.lease_until = at(now + 1);
        if s.claim_job(&c).await.unwrap().is_none() {
            break;
        }
        claims += 1;
        now += 5;
        assert!(claims < 20, "never given up");
    }
    // Two interruptions so far: three more claims, then it is failed.
    assert_eq!(claims, MAX_INTERRUPTIONS - 2);
    let failed = s.get_job(id).await.unwrap().unwrap();
    assert_eq!(failed.state, JobState::Failed);
    assert_eq!(failed.interruptions, MAX_INTERRUPTIONS);
    assert!(failed.error.unwrap().contains("cut off"));

    // A cut-off job that was asked to stop is cancelled, not run again.
    let other = enqueue(s, new_job("import_logs", 1), 100).await;
    let mut c = claim("dead", 100, &["import_logs"]);
    c.lease_until = at(101);
    s.claim_job(&c).await.unwrap().unwrap();
    assert!(matches!(
        s.cancel_job(other, at(100)).await.unwrap(),
        Some(CancelOutcome::Requested(_))
    ));
    assert!(
        s.claim_job(&claim("w", 102, &["import_logs"]))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        s.get_job(other).await.unwrap().unwrap().state,
        JobState::Cancelled
    );
}

async fn cancellation_of_pending_and_running_jobs(db: Db) {
    let s = &db.store;
    let pending = enqueue(s, new_job("k", 1), 0).await;
    match s.cancel_job(pending, at(1)).await.unwrap() {
        Some(CancelOutcome::Cancelled(j)) => {
            assert_eq!(j.state, JobState::Cancelled);
            assert_eq!(j.finished_at, Some(at(1)));
            assert!(j.cancel_requested);
        }
        other => panic!("{other:?}"),
    }
    assert!(s.claim_job(&claim("w", 2, &["k"])).await.unwrap().is_none());

    let running = enqueue(s, new_job("k", 3), 3).await;
    s.claim_job(&claim("w", 4, &["k"])).await.unwrap().unwrap();
    match s.cancel_job(running, at(5)).await.unwrap() {
        Some(CancelOutcome::Requested(j)) => {
            assert_eq!(j.state, JobState::Running);
            assert!(j.cancel_requested);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        s.renew_job_lease(running, "w", at(40))
            .await
            .unwrap()
            .cancel_requested
    );
    // A failure reported after a cancel request is not retried.
    let failed = AttemptEnd::Failed {
        outcome: AttemptOutcome::Failed,
        error: "killed".into(),
        retry_at: Some(at(6)),
    };
    let end = s
        .finish_job(&finish(running, 1, "w", 6, failed))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(end.state, JobState::Failed);
    assert!(matches!(
        s.cancel_job(running, at(7)).await.unwrap(),
        Some(CancelOutcome::Finished(_))
    ));
    assert!(s.cancel_job(running + 100, at(7)).await.unwrap().is_none());

    let third = enqueue(s, new_job("k", 1), 8).await;
    s.claim_job(&claim("w", 9, &["k"])).await.unwrap().unwrap();
    s.cancel_job(third, at(9)).await.unwrap();
    let cancelled = s
        .finish_job(&finish(third, 1, "w", 10, AttemptEnd::Cancelled))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cancelled.state, JobState::Cancelled);
    assert_eq!(
        s.job_attempts(third).await.unwrap()[0].outcome,
        Some(AttemptOutcome::Cancelled)
    );
    // A cancelled job can be retried.
    let again = s.retry_job(third, 1, at(11)).await.unwrap().unwrap();
    assert_eq!(again.state, JobState::Pending);
    assert!(!again.cancel_requested);
}

async fn two_claimers_racing_never_take_the_same_job(db: Db) {
    let s = db.store.clone();
    // One job, eight claimers at once: exactly one wins.
    enqueue(&s, new_job("race", 1), 0).await;
    let mut tasks = Vec::new();
    for w in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.claim_job(&claim(&format!("w{w}"), 1, &["race"])).await
        }));
    }
    let mut winners = 0;
    for t in tasks {
        if t.await.unwrap().unwrap().is_some() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);

    // Forty jobs, four claimers looping: every job is taken exactly once.
    let mut want = HashSet::new();
    for _ in 0..40 {
        want.insert(enqueue(&s, new_job("many", 1), 2).await);
    }
    let taken = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for w in 0..4 {
        let (s, taken) = (s.clone(), taken.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                match s.claim_job(&claim(&format!("m{w}"), 3, &["many"])).await {
                    Ok(Some(job)) => taken.lock().unwrap().push(job.id),
                    Ok(None) => return,
                    // SQLite may report the file busy under contention: try again.
                    Err(StoreError::Unavailable(_)) => {}
                    Err(e) => panic!("{e}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let taken = taken.lock().unwrap().clone();
    let unique: HashSet<i64> = taken.iter().copied().collect();
    assert_eq!(taken.len(), unique.len(), "a job was claimed twice");
    assert_eq!(unique, want);
}

async fn jobs_are_filtered_and_paginated(db: Db) {
    let s = &db.store;
    let mut ids = Vec::new();
    for i in 0..6 {
        let kind = if i % 2 == 0 { "even" } else { "odd" };
        ids.push(enqueue(s, new_job(kind, 1), i).await);
    }
    // The same second twice: pages still walk each once.
    ids.push(enqueue(s, new_job("even", 1), 5).await);
    s.claim_job(&claim("w", 10, &["odd"]))
        .await
        .unwrap()
        .unwrap();
    let list = |q: JobQuery| async move {
        s.query_jobs(&JobQuery { limit: 100, ..q })
            .await
            .unwrap()
            .items
            .iter()
            .map(|j| j.id)
            .collect::<Vec<_>>()
    };
    let all = list(JobQuery::default()).await;
    let mut newest_first = ids.clone();
    newest_first.sort_by_key(|id| std::cmp::Reverse(*id));
    assert_eq!(all, newest_first);
    let even = list(JobQuery {
        kind: Some("even".into()),
        ..JobQuery::default()
    })
    .await;
    assert_eq!(even, vec![ids[6], ids[4], ids[2], ids[0]]);
    let running = list(JobQuery {
        state: Some(JobState::Running),
        ..JobQuery::default()
    })
    .await;
    assert_eq!(running, vec![ids[1]]);
    let window = list(JobQuery {
        from: Some(at(2)),
        to: Some(at(5)),
        ..JobQuery::default()
    })
    .await;
    assert_eq!(window, vec![ids[4], ids[3], ids[2]]);
    let mut walked = Vec::new();
    let mut cursor: Option<Cursor> = None;
    loop {
        let page = s
            .query_jobs(&JobQuery {
                cursor,
                limit: 2,
                ..JobQuery::default()
            })
            .await
            .unwrap();
        walked.extend(page.items.iter().map(|j| j.id));
        match page.next_cursor {
            Some(c) => cursor = Cursor::decode(&c),
            None => break,
        }
    }
    assert_eq!(walked, newest_first);
}

async fn logs_and_outputs_page_in_order_and_delete(db: Db) {
    let s = &db.store;
    let a = enqueue(s, new_job("k", 1), 0).await;
    let b = enqueue(s, new_job("k", 1), 0).await;
    let lines: Vec<NewLogLine> = (0..5)
        .map(|i| NewLogLine {
            ts: at(i),
            level: if i % 2 == 0 {
                LogLevel::Stdout
            } else {
                LogLevel::Info
            },
            message: format!("line {i}"),
        })
        .collect();
    s.append_job_logs(a, 1, &lines).await.unwrap();
    s.append_job_logs(b, 1, &lines[..2]).await.unwrap();
    s.append_job_logs(a, 1, &[]).await.unwrap();
    let first = s.job_logs(a, 0, 3).await.unwrap();
    let msgs: Vec<_> = first.items.iter().map(|l| l.message.clone()).collect();
    assert_eq!(msgs, ["line 0", "line 1", "line 2"]);
    assert_eq!(first.items[0].level, LogLevel::Stdout);
    assert_eq!(first.items[1].ts, at(1));
    let cursor = Cursor::decode(&first.next_cursor.unwrap()).unwrap();
    let rest = s.job_logs(a, cursor.id, 3).await.unwrap();
    assert_eq!(rest.items.len(), 2);
    assert!(rest.next_cursor.is_none());
    let long = "é".repeat(9000);
    s.append_job_logs(
        b,
        1,
        &[NewLogLine {
            ts: at(9),
            level: LogLevel::Info,
            message: long,
        }],
    )
    .await
    .unwrap();
    let kept = s.job_logs(b, 0, 100).await.unwrap().items;
    assert_eq!(kept.last().unwrap().message.chars().count(), 8193);

    s.append_job_outputs(
        a,
        1,
        &[(at(1), json!({"rows": 1})), (at(2), json!({"rows": 2}))],
    )
    .await
    .unwrap();
    let out = s.job_outputs(a, 0, 10).await.unwrap().items;
    assert_eq!(out.len(), 2);
    assert_eq!(out[1].value, json!({"rows": 2}));
    assert_eq!((out[0].attempt, out[0].ts), (1, at(1)));

    // Finishing `a` makes its logs deletable with "all finished jobs' logs".
    s.claim_job(&claim("w", 1, &["k"])).await.unwrap().unwrap();
    s.finish_job(&finish(a, 1, "w", 2, AttemptEnd::Succeeded))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.delete_finished_job_logs().await.unwrap(), 5);
    assert!(s.job_logs(a, 0, 10).await.unwrap().items.is_empty());
    assert_eq!(s.job_logs(b, 0, 10).await.unwrap().items.len(), 3);
    assert_eq!(s.delete_job_logs(b).await.unwrap(), 3);
    assert_eq!(s.job_outputs(a, 0, 10).await.unwrap().items.len(), 2);
}

fn schedule(name: &str, cron: &str, next: i64) -> NewSchedule {
    NewSchedule {
        name: name.into(),
        kind: "validate_data".into(),
        params: json!({}),
        cron: cron.into(),
        timezone: "UTC".into(),
        enabled: true,
        origin: ScheduleOrigin::Api,
        created_by: "admin".into(),
        next_run_at: Some(at(next)),
    }
}

async fn schedules_crud_sync_and_fire_once(db: Db) {
    let s = &db.store;
    let nightly = s
        .create_schedule(&schedule("nightly", "0 3 * * *", 100), at(0))
        .await
        .unwrap();
    assert_eq!(nightly.name, "nightly");
    assert_eq!(nightly.origin, ScheduleOrigin::Api);
    assert_eq!(nightly.next_run_at, Some(at(100)));
    assert!(matches!(
        s.create_schedule(&schedule("nightly", "* * * * *", 1), at(0))
            .await,
        Err(StoreError::Conflict(_))
    ));
    let changed = s
        .update_schedule(
            nightly.id,
            &NewSchedule {
                timezone: "Europe/Paris".into(),
                params: json!({"x": 1}),
                ..schedule("nightly", "0 4 * * *", 200)
            },
            at(1),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (changed.cron.as_str(), changed.timezone.as_str()),
        ("0 4 * * *", "Europe/Paris")
    );
    assert_eq!(
        (changed.params.clone(), changed.updated_at),
        (json!({"x": 1}), at(1))
    );
    assert!(
        s.update_schedule(9999, &schedule("x", "* * * * *", 1), at(1))
            .await
            .unwrap()
            .is_none()
    );

    // The configuration's schedules: created, kept when unchanged, replaced, removed.
    let config = |name: &str, cron: &str, next: i64| NewSchedule {
        origin: ScheduleOrigin::Config,
        created_by: "config".into(),
        ..schedule(name, cron, next)
    };
    s.sync_config_schedules(&[config("retention", "30 3 * * *", 300)], at(2))
        .await
        .unwrap();
    s.sync_config_schedules(&[config("retention", "30 3 * * *", 999)], at(3))
        .await
        .unwrap();
    let list = s.list_schedules().await.unwrap();
    let names: Vec<_> = list.iter().map(|x| x.name.as_str()).collect();
    assert_eq!(names, ["nightly", "retention"]);
    assert_eq!(list[1].next_run_at, Some(at(300)), "unchanged: time kept");
    assert_eq!(list[1].origin, ScheduleOrigin::Config);
    s.sync_config_schedules(&[config("retention", "45 3 * * *", 400)], at(4))
        .await
        .unwrap();
    let r = s.list_schedules().await.unwrap().pop().unwrap();
    assert_eq!(
        (r.cron.as_str(), r.next_run_at),
        ("45 3 * * *", Some(at(400)))
    );
    assert!(matches!(
        s.sync_config_schedules(&[config("nightly", "* * * * *", 1)], at(5))
            .await,
        Err(StoreError::Conflict(_))
    ));
    s.sync_config_schedules(&[], at(6)).await.unwrap();
    assert_eq!(s.list_schedules().await.unwrap().len(), 1);

    // Due schedules fire once even when two processes try.
    assert!(s.due_schedules(at(199)).await.unwrap().is_empty());
    let due = s.due_schedules(at(200)).await.unwrap();
    assert_eq!(due.len(), 1);
    let job = NewJob {
        schedule_id: Some(nightly.id),
        created_by: "schedule:nightly".into(),
        ..new_job("validate_data", 1)
    };
    let fired = s
        .fire_schedule(nightly.id, at(200), Some(at(86_600)), &job, at(201))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fired.schedule_id, Some(nightly.id));
    assert!(
        s.fire_schedule(nightly.id, at(200), Some(at(86_600)), &job, at(201))
            .await
            .unwrap()
            .is_none()
    );
    let after = s.get_schedule(nightly.id).await.unwrap().unwrap();
    assert_eq!(after.next_run_at, Some(at(86_600)));
    assert_eq!(
        (after.last_run_at, after.last_job_id),
        (Some(at(201)), Some(fired.id))
    );
    let by_schedule = s
        .query_jobs(&JobQuery {
            schedule_id: Some(nightly.id),
            limit: 10,
            ..JobQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(by_schedule.items.len(), 1);
    // Disabled schedules are never due.
    s.update_schedule(
        nightly.id,
        &NewSchedule {
            enabled: false,
            ..schedule("nightly", "0 4 * * *", 10)
        },
        at(7),
    )
    .await
    .unwrap();
    assert!(s.due_schedules(at(100_000)).await.unwrap().is_empty());
    assert!(s.delete_schedule(nightly.id).await.unwrap());
    assert!(!s.delete_schedule(nightly.id).await.unwrap());
    assert!(s.get_schedule(nightly.id).await.unwrap().is_none());
    // Its job stays.
    assert!(s.get_job(fired.id).await.unwrap().is_some());
}
