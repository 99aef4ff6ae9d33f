-- Palisade schema, version 7 (SQLite): the job queue.
-- Timestamps are microseconds since the Unix epoch (UTC). `params` and output `value`
-- are JSON text. States, outcomes, levels and origins are the stable names of
-- palisade_core::job. A job is claimed by setting `lease_owner`/`lease_until`; a
-- `running` job whose lease ran out was cut off and is taken up again. Flags are 0/1.

CREATE TABLE jobs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    kind             TEXT    NOT NULL,
    params           TEXT    NOT NULL,
    state            TEXT    NOT NULL,
    attempt          INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    failures         INTEGER NOT NULL DEFAULT 0,
    interruptions    INTEGER NOT NULL DEFAULT 0,
    progress         INTEGER NOT NULL DEFAULT 0,
    progress_message TEXT,
    error            TEXT,
    created_by       TEXT    NOT NULL,
    schedule_id      INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_until      INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    run_after        INTEGER NOT NULL,
    started_at       INTEGER,
    finished_at      INTEGER
);

-- The claim: ready pending jobs in order, and running jobs by lease end.
CREATE INDEX jobs_ready    ON jobs (state, run_after, id);
CREATE INDEX jobs_lease    ON jobs (state, lease_until);
-- Listing, newest first, and its filters.
CREATE INDEX jobs_created  ON jobs (created_at, id);
CREATE INDEX jobs_kind     ON jobs (kind, created_at, id);
CREATE INDEX jobs_state    ON jobs (state, created_at, id);
CREATE INDEX jobs_schedule ON jobs (schedule_id, created_at, id);
-- Retention of finished jobs.
CREATE INDEX jobs_finished ON jobs (finished_at);

CREATE TABLE job_attempts (
    job_id      INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL,
    worker      TEXT    NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    outcome     TEXT,
    error       TEXT,
    PRIMARY KEY (job_id, attempt)
);

CREATE TABLE job_logs (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id  INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    attempt INTEGER NOT NULL,
    ts      INTEGER NOT NULL,
    level   TEXT    NOT NULL,
    message TEXT    NOT NULL
);

CREATE INDEX job_logs_job ON job_logs (job_id, id);
CREATE INDEX job_logs_ts  ON job_logs (ts);

CREATE TABLE job_outputs (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id  INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    attempt INTEGER NOT NULL,
    ts      INTEGER NOT NULL,
    value   TEXT    NOT NULL
);

CREATE INDEX job_outputs_job ON job_outputs (job_id, id);

CREATE TABLE job_schedules (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL UNIQUE,
    kind        TEXT    NOT NULL,
    params      TEXT    NOT NULL,
    cron        TEXT    NOT NULL,
    timezone    TEXT    NOT NULL,
    enabled     INTEGER NOT NULL,
    origin      TEXT    NOT NULL,
    created_by  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    next_run_at INTEGER,
    last_run_at INTEGER,
    last_job_id INTEGER
);

-- The scheduler's scan of due schedules.
CREATE INDEX job_schedules_due ON job_schedules (next_run_at) WHERE enabled = 1;
