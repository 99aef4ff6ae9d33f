-- Palisade schema, version 4 (SQLite): IP decisions, bans and allow-list entries.
-- Timestamps are microseconds since the Unix epoch (UTC). `value` is the canonical
-- address or CIDR text (palisade_core::decision::DecisionTarget); `net_first` and
-- `net_last` are the 16-byte keys (palisade_core::net::ip_key) of the first and last
-- address it covers. `expires_at` NULL means for good. Rows are never erased:
-- `deleted_at` is set when a decision is deleted (or, by the expiry job, to the time it
-- expired), so that bouncers can be told what was removed. `updated_at` changes on
-- every create, extension and deletion: bouncers are sent what changed since their
-- last pull.

CREATE TABLE decisions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT    NOT NULL,
    scope      TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    net_first  BLOB    NOT NULL,
    net_last   BLOB    NOT NULL,
    origin     TEXT    NOT NULL,
    scenario   TEXT    NOT NULL,
    created_by TEXT    NOT NULL,
    threat_id  INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    expires_at INTEGER,
    deleted_at INTEGER,
    deleted_by TEXT
);

-- One decision of each kind in force (not yet removed) per value; also the scan of
-- live decisions that loads the enforcement set.
CREATE UNIQUE INDEX decisions_live ON decisions (kind, value) WHERE deleted_at IS NULL;
-- Listing, newest first.
CREATE INDEX decisions_created ON decisions (created_at, id);
-- The address filter (overlap of key ranges).
CREATE INDEX decisions_net ON decisions (net_first, net_last);
-- What changed since a bouncer's last pull, and what expired in a window.
CREATE INDEX decisions_updated ON decisions (updated_at);
CREATE INDEX decisions_expires ON decisions (expires_at);
-- The expiry job: live decisions that are due.
CREATE INDEX decisions_due ON decisions (expires_at) WHERE deleted_at IS NULL;
