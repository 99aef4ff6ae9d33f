-- Palisade schema, version 3 (PostgreSQL): detection findings and run-time settings.
-- Timestamps are microseconds since the Unix epoch (UTC); client_ip is the 16-byte key
-- of palisade_core::net::ip_key. `evidence` is the JSON array of
-- palisade_core::threat::Evidence and `rule_ids` the JSON array of the matched rule ids
-- in detection order; `threat_rules` holds each distinct rule id once per threat, for
-- the rule filter and the per-rule statistics (rule ids are stored as the 32-bit
-- two's-complement value of the u32 id).

CREATE TABLE threats (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ts        BIGINT  NOT NULL,
    category  TEXT    NOT NULL,
    severity  TEXT    NOT NULL,
    score     INTEGER NOT NULL,
    client_ip BYTEA,
    method    TEXT,
    uri       TEXT,
    source    TEXT    NOT NULL,
    event_id  BIGINT,
    decision  TEXT    NOT NULL,
    evidence  TEXT    NOT NULL,
    rule_ids  TEXT    NOT NULL
);

CREATE INDEX threats_ts        ON threats (ts, id);
CREATE INDEX threats_category  ON threats (category, ts);
CREATE INDEX threats_severity  ON threats (severity, ts);
CREATE INDEX threats_client_ip ON threats (client_ip, ts);

CREATE TABLE threat_rules (
    threat_id BIGINT  NOT NULL REFERENCES threats (id) ON DELETE CASCADE,
    rule_id   INTEGER NOT NULL,
    ts        BIGINT  NOT NULL,
    PRIMARY KEY (rule_id, ts, threat_id)
);

CREATE INDEX threat_rules_threat_id ON threat_rules (threat_id);
CREATE INDEX threat_rules_ts        ON threat_rules (ts);

CREATE TABLE settings (
    key        TEXT   PRIMARY KEY,
    value      TEXT   NOT NULL,
    updated_at BIGINT NOT NULL
);
