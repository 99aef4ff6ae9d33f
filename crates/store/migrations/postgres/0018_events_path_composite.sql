-- The path index leads with the method and the status (issue 16, event queries); see
-- the SQLite script of this version for why. Here too it replaces (path, ts, id), and
-- the store turns a path prefix into one index range per (method, status) pair.
DROP INDEX IF EXISTS events_path;
CREATE INDEX IF NOT EXISTS events_method_status_path ON events (method, status, path, ts, id);
