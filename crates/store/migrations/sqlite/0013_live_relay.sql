-- Palisade schema, version 13 (SQLite): the live bus relay table of a scale-out
-- topology. Scale-out roles need PostgreSQL (a SQLite file belongs to one process), so
-- this table stays empty here; it exists so both backends have the same schema
-- versions.
CREATE TABLE live_relay (
    id         INTEGER PRIMARY KEY,
    node       TEXT    NOT NULL,
    payload    TEXT    NOT NULL,
    created_us INTEGER NOT NULL
);
