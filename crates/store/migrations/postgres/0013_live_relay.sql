-- Palisade schema, version 13 (PostgreSQL): the live bus relay of a scale-out
-- topology (`palisade serve --role api|worker`).
--
-- Every node forwards the events it publishes on its live bus (threats, alerts, jobs,
-- activities, traffic…) with NOTIFY on the channel `palisade_live`. A NOTIFY payload is
-- limited to 8000 bytes, so a batch larger than that is written here and the
-- notification carries only its id; listeners read the row, and rows are deleted once
-- older than a few minutes (listeners that were disconnected that long resume from now).
CREATE TABLE live_relay (
    id         BIGSERIAL PRIMARY KEY,
    node       TEXT   NOT NULL,
    payload    TEXT   NOT NULL,
    created_us BIGINT NOT NULL
);
CREATE INDEX live_relay_created ON live_relay (created_us);
