-- The path index leads with the method and the status (issue 16, event queries). A
-- path prefix matches many rows in an investigation ("/tienda1/" was 38% of a store)
-- and the filters that come with it are correlated with it (no GET under "/admin$",
-- no 2xx under "/cgi-bin/"): with (path, ts) proving such a page empty meant reading
-- every row under the prefix. With (method, status, path, ts) the store seeks each
-- (method, status) pair the query allows and reads only the rows under the prefix
-- that match both, from the index alone. It replaces (path, ts), so ingest still
-- maintains the same number of indexes.
DROP INDEX IF EXISTS events_path;
CREATE INDEX IF NOT EXISTS events_method_status_path ON events (method, status, path, ts);
