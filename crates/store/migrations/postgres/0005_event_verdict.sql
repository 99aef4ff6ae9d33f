-- What a live front (the protecting proxy) decided about a request it stored as an
-- event: allow, detect, block or ban. NULL for events read from logs, which the ingest
-- inspector judges after the fact; an event with a verdict is not inspected again.
-- No index: the API does not filter on it.
ALTER TABLE events ADD COLUMN verdict TEXT;
