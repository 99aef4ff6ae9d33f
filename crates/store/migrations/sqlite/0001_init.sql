-- Palisade schema, version 1 (SQLite).
-- Timestamps are microseconds since the Unix epoch (UTC). Client addresses are the
-- 16-byte keys of palisade_core::net::ip_key, so a CIDR filter is a BETWEEN on bytes.
-- Every secondary index ends in ts (and, implicitly in SQLite, the rowid = id), so each
-- filter both narrows the rows and returns them already in (ts DESC, id DESC) order.

CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    ts          INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    client_ip   BLOB,
    host        TEXT,
    method      TEXT,
    path        TEXT,
    query       TEXT,
    protocol    TEXT,
    status      INTEGER,
    bytes       INTEGER,
    referer     TEXT,
    user_agent  TEXT,
    user_name   TEXT,
    duration_us INTEGER,
    message     TEXT,
    extra       TEXT
);

CREATE INDEX events_ts        ON events (ts);
CREATE INDEX events_client_ip ON events (client_ip, ts);
CREATE INDEX events_status    ON events (status, ts);
CREATE INDEX events_method    ON events (method, ts);
CREATE INDEX events_host      ON events (host, ts);
CREATE INDEX events_path      ON events (path, ts);

CREATE TABLE dead_letters (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    source      TEXT    NOT NULL,
    line_no     INTEGER,
    byte_offset INTEGER,
    raw         TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    received_at INTEGER NOT NULL
);

CREATE INDEX dead_letters_received_at ON dead_letters (received_at);
CREATE INDEX dead_letters_source      ON dead_letters (source, received_at);

CREATE TABLE checkpoints (
    source      TEXT PRIMARY KEY NOT NULL,
    file_id     TEXT    NOT NULL,
    byte_offset INTEGER NOT NULL,
    line_no     INTEGER NOT NULL,
    fingerprint INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE ingest_keys (
    key          TEXT PRIMARY KEY NOT NULL,
    events       INTEGER NOT NULL,
    dead_letters INTEGER NOT NULL,
    created_at   INTEGER NOT NULL
);
