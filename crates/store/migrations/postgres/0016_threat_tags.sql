-- Palisade schema, version 16 (PostgreSQL): the tags of the rules a threat matched
-- (OWASP CRS: attack-sqli, paranoia-level/1, OWASP_CRS/..., capec/...), as a JSON array
-- of strings, each once, in rule order. Threats stored before this version have none.
-- Filtered with LIKE on the quoted element (`GET /api/v1/threats?tag=`).

ALTER TABLE threats ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
