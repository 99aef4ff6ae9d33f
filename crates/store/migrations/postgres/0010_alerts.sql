-- Palisade schema, version 10 (PostgreSQL): alert rules, channels, alerts with their
-- history and threats, the durable notification queue, and the activity feed.
-- Timestamps are microseconds since the Unix epoch (UTC).

-- Rules and channels: a name, a kind and the alerts component's own JSON spec.
CREATE TABLE alert_rules (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    kind       TEXT    NOT NULL,
    enabled    BOOLEAN NOT NULL,
    spec       TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL
);

CREATE TABLE alert_channels (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    kind       TEXT    NOT NULL,
    enabled    BOOLEAN NOT NULL,
    spec       TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL
);

-- No foreign key to the rule: an alert and its history outlive a deleted rule.
CREATE TABLE alerts (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule_id        BIGINT  NOT NULL,
    rule_name      TEXT    NOT NULL,
    group_key      TEXT    NOT NULL,
    title          TEXT    NOT NULL,
    severity       TEXT    NOT NULL,
    category       TEXT    NOT NULL,
    state          TEXT    NOT NULL,
    count          BIGINT  NOT NULL,
    first_seen     BIGINT  NOT NULL,
    last_seen      BIGINT  NOT NULL,
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL,
    state_at       BIGINT  NOT NULL,
    state_by       TEXT,
    state_comment  TEXT,
    notified_at    BIGINT,
    next_notify_at BIGINT
);
CREATE INDEX alerts_group   ON alerts (rule_id, group_key, id);
CREATE INDEX alerts_created ON alerts (created_at, id);
CREATE INDEX alerts_state   ON alerts (state, created_at);
CREATE INDEX alerts_due     ON alerts (next_notify_at) WHERE next_notify_at IS NOT NULL;

CREATE TABLE alert_threats (
    alert_id  BIGINT  NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    threat_id BIGINT  NOT NULL,
    PRIMARY KEY (alert_id, threat_id)
);

CREATE TABLE alert_history (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id   BIGINT  NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    at         BIGINT  NOT NULL,
    action     TEXT    NOT NULL,
    actor      TEXT,
    from_state TEXT,
    to_state   TEXT    NOT NULL,
    comment    TEXT
);
CREATE INDEX alert_history_alert ON alert_history (alert_id, id);

-- The durable notification queue and the delivery log: a row per (notification,
-- channel); `next_at` is the next attempt while pending (a claim moves it past the
-- attempt's lease, so a crash mid-send is retried).
CREATE TABLE alert_deliveries (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id        BIGINT,
    channel_id      BIGINT  NOT NULL,
    message_id      TEXT    NOT NULL UNIQUE,
    event           TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    attempts        BIGINT  NOT NULL,
    next_at         BIGINT  NOT NULL,
    created_at      BIGINT  NOT NULL,
    last_attempt_at BIGINT,
    last_status     BIGINT,
    last_error      TEXT,
    delivered_at    BIGINT
);
CREATE INDEX alert_deliveries_due   ON alert_deliveries (next_at) WHERE state = 'pending';
CREATE INDEX alert_deliveries_alert ON alert_deliveries (alert_id, id);

CREATE TABLE activities (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      BIGINT  NOT NULL,
    kind    TEXT    NOT NULL,
    actor   TEXT,
    summary TEXT    NOT NULL,
    detail  TEXT    NOT NULL
);
CREATE INDEX activities_at ON activities (at, id);
