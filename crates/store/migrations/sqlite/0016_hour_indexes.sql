-- Ingest speed (issue 16): the client_ip and path indexes take the event's hour
-- (ts / 3600000000: ts is in microseconds) as their first key. A client address or a
-- path lands at a random place in an index over all time, so every group commit
-- rewrote pages all over both indexes and, once they outgrew the page cache, read them
-- back from disk; keyed by hour first, a log (whose times only move forward) inserts
-- into the current hour's part only: nearly append-only, with a small working set.
-- A client or path filter still reads only matching index entries: it seeks once per
-- hour of the queried range (see sqlgen::over_hours); the literal 3600000000 must
-- match that query's expression for SQLite to use these indexes.
DROP INDEX IF EXISTS events_client_ip;
DROP INDEX IF EXISTS events_path;
CREATE INDEX events_hour_client_ip ON events (ts / 3600000000, client_ip, ts);
CREATE INDEX events_hour_path      ON events (ts / 3600000000, path, ts);
