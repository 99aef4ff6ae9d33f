-- Palisade schema, version 9: what each source has stored, over all time and every
-- process (an import and the service alike), kept in the same transaction as the rows
-- it counts, so /api/v1/sources shows figures that match the store without counting
-- millions of rows (events have no index on source). Duplicates (a retried push with
-- the same idempotency key) store nothing and count nothing.
CREATE TABLE source_totals (
    source       TEXT   PRIMARY KEY NOT NULL,
    events       BIGINT NOT NULL DEFAULT 0,
    dead_letters BIGINT NOT NULL DEFAULT 0,
    updated_at   BIGINT NOT NULL
);

-- Existing data, counted once.
INSERT INTO source_totals (source, events, dead_letters, updated_at)
SELECT source, SUM(events), SUM(dead_letters), 0
FROM (
    SELECT source, COUNT(*) AS events, 0 AS dead_letters FROM events GROUP BY source
    UNION ALL
    SELECT source, 0 AS events, COUNT(*) AS dead_letters FROM dead_letters GROUP BY source
) AS counted
GROUP BY source;
