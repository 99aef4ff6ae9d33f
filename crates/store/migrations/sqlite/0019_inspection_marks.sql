-- Palisade schema, version 19 (SQLite): how far the signature inspector has gone in each
-- source's stored events. `event_id` is the highest event id of the source whose
-- inspection is over and whose threats are stored (it is written after them), so that a
-- restart after a crash inspects the source's events past it again rather than leaving
-- them uninspected (issue 16). Events stored before this version count as inspected.
-- `threats_event_id` finds the events among them that already have their threat, so
-- that inspecting them again stores nothing twice.

CREATE TABLE inspection_marks (
    source     TEXT    PRIMARY KEY NOT NULL,
    event_id   INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

INSERT INTO inspection_marks (source, event_id, updated_at)
SELECT source, (SELECT coalesce(max(id), 0) FROM events), 0 FROM source_totals;

CREATE INDEX threats_event_id ON threats (event_id) WHERE event_id IS NOT NULL;
