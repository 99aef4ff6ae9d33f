-- Palisade schema, version 15 (SQLite): the network device inventory, and which threats
-- were raised over which flows.
-- A device row keeps the columns its filters use beside the whole device as JSON
-- (`detail`); `hostnames` is its names joined by spaces (for the name filter).
-- `device_addrs` holds each address of a device as its 16-byte sortable key, so an
-- address or CIDR finds the device, and a device finds its flows, by index.
CREATE TABLE devices (
    id         INTEGER PRIMARY KEY,
    dkey       TEXT    NOT NULL UNIQUE,
    mac        TEXT,
    vendor     TEXT,
    hostnames  TEXT    NOT NULL,
    os         TEXT,
    first_seen INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    detail     TEXT    NOT NULL
);

CREATE INDEX devices_last_seen ON devices (last_seen, id);
CREATE INDEX devices_mac ON devices (mac);

CREATE TABLE device_addrs (
    device_id INTEGER NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    ip_key    BLOB    NOT NULL,
    PRIMARY KEY (ip_key, device_id)
);

CREATE INDEX device_addrs_device ON device_addrs (device_id);

CREATE TABLE flow_threats (
    flow_id   INTEGER NOT NULL,
    threat_id INTEGER NOT NULL,
    PRIMARY KEY (flow_id, threat_id)
);

CREATE INDEX flow_threats_threat ON flow_threats (threat_id);
