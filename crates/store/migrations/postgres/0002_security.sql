-- Palisade schema, version 2 (PostgreSQL): Palisade's own security.
-- Timestamps are microseconds since the Unix epoch (UTC). Roles and scopes are stored
-- by their stable names (palisade_core::security::{Role, Scope}::as_str); scopes as a
-- comma-separated list. Only hashes of passwords, tokens and keys are kept.

CREATE TABLE users (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE,
    role          TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    disabled      BOOLEAN NOT NULL DEFAULT false,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until  BIGINT,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);

CREATE TABLE refresh_tokens (
    token_hash TEXT   PRIMARY KEY,
    family     TEXT   NOT NULL,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    issued_at  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    revoked_at BIGINT
);

CREATE INDEX refresh_tokens_family  ON refresh_tokens (family);
CREATE INDEX refresh_tokens_user_id ON refresh_tokens (user_id);

CREATE TABLE api_keys (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         TEXT   NOT NULL UNIQUE,
    prefix       TEXT   NOT NULL UNIQUE,
    key_hash     TEXT   NOT NULL,
    scopes       TEXT   NOT NULL,
    created_by   TEXT,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);

CREATE TABLE secrets (
    name       TEXT   PRIMARY KEY,
    key_id     TEXT   NOT NULL,
    nonce      BYTEA  NOT NULL,
    ciphertext BYTEA  NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT
);

CREATE TABLE audit_log (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ts        BIGINT NOT NULL,
    actor     TEXT,
    action    TEXT   NOT NULL,
    target    TEXT,
    outcome   TEXT   NOT NULL,
    client_ip TEXT,
    detail    TEXT
);

CREATE INDEX audit_log_ts     ON audit_log (ts, id);
CREATE INDEX audit_log_actor  ON audit_log (actor, ts, id);
CREATE INDEX audit_log_action ON audit_log (action, ts, id);
