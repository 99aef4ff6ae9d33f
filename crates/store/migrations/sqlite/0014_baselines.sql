-- Palisade schema, version 14 (SQLite): per-endpoint anomaly baselines (issue 15).
-- One row per endpoint (`host METHOD /route-template`); `profile` is the learnt
-- profile as JSON, replaced whole at each periodic snapshot; `updated_at` is
-- microseconds since the Unix epoch (UTC).
CREATE TABLE endpoint_baselines (
    endpoint   TEXT    PRIMARY KEY,
    requests   INTEGER NOT NULL,
    profile    TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);
