-- Palisade schema, version 1 (PostgreSQL).
-- Timestamps are microseconds since the Unix epoch (UTC). Client addresses are the
-- 16-byte keys of palisade_core::net::ip_key: bytea compares bytewise, so a CIDR filter
-- is a BETWEEN on the index. path and host use the "C" collation so that a prefix,
-- turned into a [prefix, upper) range, is answered by the btree whatever the database
-- locale. Every secondary index ends in (ts, id) so each filter both narrows the rows
-- and returns them already in (ts DESC, id DESC) order.

CREATE TABLE events (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ts          BIGINT  NOT NULL,
    received_at BIGINT  NOT NULL,
    kind        TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    client_ip   BYTEA,
    host        TEXT COLLATE "C",
    method      TEXT,
    path        TEXT COLLATE "C",
    query       TEXT,
    protocol    TEXT,
    status      INTEGER,
    bytes       BIGINT,
    referer     TEXT,
    user_agent  TEXT,
    user_name   TEXT,
    duration_us BIGINT,
    message     TEXT,
    extra       TEXT
);

CREATE INDEX events_ts        ON events (ts, id);
CREATE INDEX events_client_ip ON events (client_ip, ts, id);
CREATE INDEX events_status    ON events (status, ts, id);
CREATE INDEX events_method    ON events (method, ts, id);
CREATE INDEX events_host      ON events (host, ts, id);
CREATE INDEX events_path      ON events (path, ts, id);

CREATE TABLE dead_letters (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source      TEXT   NOT NULL,
    line_no     BIGINT,
    byte_offset BIGINT,
    raw         TEXT   NOT NULL,
    reason      TEXT   NOT NULL,
    received_at BIGINT NOT NULL
);

CREATE INDEX dead_letters_received_at ON dead_letters (received_at, id);
CREATE INDEX dead_letters_source      ON dead_letters (source, received_at, id);

CREATE TABLE checkpoints (
    source      TEXT PRIMARY KEY,
    file_id     TEXT   NOT NULL,
    byte_offset BIGINT NOT NULL,
    line_no     BIGINT NOT NULL,
    fingerprint BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE ingest_keys (
    key          TEXT PRIMARY KEY,
    events       BIGINT NOT NULL,
    dead_letters BIGINT NOT NULL,
    created_at   BIGINT NOT NULL
);
