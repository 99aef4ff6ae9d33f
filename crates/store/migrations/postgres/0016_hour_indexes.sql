-- Ingest speed (issue 16). SQLite's client_ip and path indexes now lead with the hour
-- (see migrations/sqlite/0016_hour_indexes.sql). PostgreSQL keeps (client_ip, ts, id)
-- and (path, ts, id): its planner has no skip scan before version 18, so an hour-
-- leading index would not serve a client or path filter without rewriting every such
-- query, and its B-tree inserts stay in shared buffers between checkpoints. This
-- version only keeps both backends' schema histories in step.
SELECT 1;
