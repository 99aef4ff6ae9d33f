-- Palisade schema, version 2 (SQLite): Palisade's own security.
-- Timestamps are microseconds since the Unix epoch (UTC). Roles and scopes are stored
-- by their stable names (palisade_core::security::{Role, Scope}::as_str); scopes as a
-- comma-separated list. Only hashes of passwords, tokens and keys are kept.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL UNIQUE,
    role          TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until  INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE refresh_tokens (
    token_hash TEXT    PRIMARY KEY NOT NULL,
    family     TEXT    NOT NULL,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    revoked_at INTEGER
);

CREATE INDEX refresh_tokens_family  ON refresh_tokens (family);
CREATE INDEX refresh_tokens_user_id ON refresh_tokens (user_id);

CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT    NOT NULL UNIQUE,
    prefix       TEXT    NOT NULL UNIQUE,
    key_hash     TEXT    NOT NULL,
    scopes       TEXT    NOT NULL,
    created_by   TEXT,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);

CREATE TABLE secrets (
    name       TEXT    PRIMARY KEY NOT NULL,
    key_id     TEXT    NOT NULL,
    nonce      BLOB    NOT NULL,
    ciphertext BLOB    NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by TEXT
);

CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    ts        INTEGER NOT NULL,
    actor     TEXT,
    action    TEXT    NOT NULL,
    target    TEXT,
    outcome   TEXT    NOT NULL,
    client_ip TEXT,
    detail    TEXT
);

CREATE INDEX audit_log_ts     ON audit_log (ts, id);
CREATE INDEX audit_log_actor  ON audit_log (actor, ts, id);
CREATE INDEX audit_log_action ON audit_log (action, ts, id);
