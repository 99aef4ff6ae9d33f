-- Palisade schema, version 12 (SQLite): network flows from packet captures.
-- Times are microseconds since the Unix epoch (UTC); addresses are stored as text (to
-- show) and as their 16-byte sortable key (to filter by CIDR with a range scan).
-- `detail` is the flow's application details and MACs as JSON.
CREATE TABLE flows (
    id           INTEGER PRIMARY KEY,
    start_ts     INTEGER NOT NULL,
    end_ts       INTEGER NOT NULL,
    source       TEXT    NOT NULL,
    protocol     TEXT    NOT NULL,
    src_ip       TEXT    NOT NULL,
    src_key      BLOB    NOT NULL,
    src_port     INTEGER NOT NULL,
    dst_ip       TEXT    NOT NULL,
    dst_key      BLOB    NOT NULL,
    dst_port     INTEGER NOT NULL,
    orig_packets INTEGER NOT NULL,
    orig_bytes   INTEGER NOT NULL,
    resp_packets INTEGER NOT NULL,
    resp_bytes   INTEGER NOT NULL,
    orig_flags   INTEGER NOT NULL,
    resp_flags   INTEGER NOT NULL,
    state        TEXT    NOT NULL,
    app          TEXT,
    app_by_port  INTEGER NOT NULL,
    detail       TEXT    NOT NULL
);

-- One index per documented filter, each ending in the listing order.
CREATE INDEX flows_start ON flows (start_ts, id);
CREATE INDEX flows_src ON flows (src_key, start_ts);
CREATE INDEX flows_dst ON flows (dst_key, start_ts);
CREATE INDEX flows_dst_port ON flows (dst_port, start_ts);
CREATE INDEX flows_app ON flows (app, start_ts);
