-- Palisade schema, version 11 (PostgreSQL): analytics roll-ups and posture checks.
-- Timestamps and bucket starts are microseconds since the Unix epoch (UTC).
--
-- analytics_counts: additive counters per minute (width 60) and per hour (width 3600).
-- Stored series are rolled up from events, threats and threat_rules by id watermark
-- (each row exactly once, whatever its time); live series (requests, latency buckets)
-- are added by each node's sampler. The three dimensions are per series:
--   events   (kind, status, status class)     threats  (category, severity, decision)
--   rules    (rule id, '', '')                 requests (front, proxy, outcome)
--   latency  (front, bucket upper bound, '')
CREATE TABLE analytics_counts (
    width  BIGINT NOT NULL,
    series TEXT    NOT NULL,
    bucket BIGINT NOT NULL,
    dim1   TEXT COLLATE "C" NOT NULL,
    dim2   TEXT COLLATE "C" NOT NULL,
    dim3   TEXT COLLATE "C" NOT NULL,
    value  BIGINT NOT NULL,
    PRIMARY KEY (width, series, bucket, dim1, dim2, dim3)
);

-- Watermarks (last rolled-up id); the oldest row time last seen (`*_min`) and the
-- deletion floor it gives (`*_floor`: the oldest row time had risen, so retention
-- deleted everything before it and older buckets no longer match the rows); roll-up
-- horizons (oldest bucket kept per width).
CREATE TABLE analytics_state (
    name  TEXT   PRIMARY KEY,
    value BIGINT NOT NULL
);

INSERT INTO analytics_state (name, value) VALUES
    ('events_id', 0), ('threats_id', 0), ('events_floor', 0), ('threats_floor', 0),
    ('events_min', 9223372036854775807), ('threats_min', 9223372036854775807),
    ('minute_horizon', 0), ('hour_horizon', 0);

-- The most frequent keys (client address as hex of its 16-byte key, path) of each
-- closed hour, recomputed from the events when the hour changes.
CREATE TABLE analytics_top (
    dimension TEXT    NOT NULL,
    hour      BIGINT NOT NULL,
    item      TEXT COLLATE "C" NOT NULL,
    value     BIGINT NOT NULL,
    PRIMARY KEY (dimension, hour, item)
);

-- One row per hour and dimension whose top keys are computed: how many distinct keys
-- the hour had, how many were kept (fewer: the hour's list is cut) and rows counted.
CREATE TABLE analytics_top_hours (
    dimension TEXT    NOT NULL,
    hour      BIGINT NOT NULL,
    key_count BIGINT NOT NULL,
    kept      BIGINT NOT NULL,
    row_count BIGINT NOT NULL,
    PRIMARY KEY (dimension, hour)
);

-- Hours that received rows since their top keys were computed.
CREATE TABLE analytics_dirty_hours (
    hour       BIGINT PRIMARY KEY,
    touched_at BIGINT NOT NULL
);

-- Posture check runs (all checks, or one) and their results; the current posture is
-- the latest result of each check.
CREATE TABLE posture_runs (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT NOT NULL,
    cause       TEXT    NOT NULL,
    score       BIGINT,
    passed      BIGINT NOT NULL,
    warned      BIGINT NOT NULL,
    failed      BIGINT NOT NULL,
    skipped     BIGINT NOT NULL
);

CREATE INDEX posture_runs_started ON posture_runs (started_at, id);

CREATE TABLE posture_results (
    run_id   BIGINT NOT NULL REFERENCES posture_runs (id) ON DELETE CASCADE,
    check_id TEXT    NOT NULL,
    title    TEXT    NOT NULL,
    status   TEXT    NOT NULL,
    severity TEXT    NOT NULL,
    checked  TEXT    NOT NULL,
    found    TEXT    NOT NULL,
    fix      TEXT,
    detail   TEXT    NOT NULL,
    PRIMARY KEY (check_id, run_id)
);

CREATE INDEX posture_results_run ON posture_results (run_id);

-- Last successful password login per user (for the stale-credentials check), seeded
-- from the audit log.
CREATE TABLE user_logins (
    user_id       BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    last_login_at BIGINT NOT NULL
);

INSERT INTO user_logins (user_id, last_login_at)
SELECT u.id, max(a.ts)
FROM users u JOIN audit_log a ON a.actor = u.username
WHERE a.action = 'login' AND a.outcome = 'success'
GROUP BY u.id;
