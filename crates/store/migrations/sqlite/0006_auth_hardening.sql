-- Palisade schema, version 6 (SQLite): authentication hardening.
-- Failed logins move off the users row into runs per submitted username and client
-- address (or '*' for all addresses together), counted atomically; the usernames need
-- not exist, so a lock answers the same for every name. Addresses a user logged in from
-- are remembered (the known-good path past an account-wide lock). Access tokens issued
-- before users.tokens_valid_after are refused. Timestamps are microseconds since the
-- Unix epoch (UTC).

ALTER TABLE users ADD COLUMN tokens_valid_after INTEGER;
ALTER TABLE users DROP COLUMN failed_logins;
ALTER TABLE users DROP COLUMN locked_until;

CREATE TABLE login_failures (
    username        TEXT    NOT NULL,
    client          TEXT    NOT NULL,
    failures        INTEGER NOT NULL,
    last_failure_at INTEGER NOT NULL,
    PRIMARY KEY (username, client)
) WITHOUT ROWID;

CREATE INDEX login_failures_last ON login_failures (last_failure_at);

CREATE TABLE login_addresses (
    user_id         INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client          TEXT    NOT NULL,
    last_success_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, client)
) WITHOUT ROWID;
