-- Palisade schema, version 8 (PostgreSQL): vulnerabilities (CVE records, assets, software
-- inventories, matches, feed sync positions) and stored reports.
-- Timestamps are microseconds since the Unix epoch (UTC).
--
-- `vuln_cves.doc` is the whole record as JSON (palisade_core::vuln::Cve); the columns
-- beside it are what is filtered or sorted on. `vuln_cve_products` names each
-- vulnerable (vendor, product) of a record's configurations once: matching looks CVEs
-- up by product there. Software `key` is the name for sightings (one entry per name,
-- its version updated) and name@version|purl for uploads (an SBOM may list one package
-- in several versions). A match is one CVE on one asset through one product.

CREATE TABLE vuln_cves (
    id        TEXT    PRIMARY KEY NOT NULL,
    published BIGINT NOT NULL,
    modified BIGINT NOT NULL,
    status    TEXT,
    severity  TEXT    NOT NULL,
    score     DOUBLE PRECISION,
    kev       INTEGER NOT NULL,
    origin    TEXT    NOT NULL,
    doc       TEXT    NOT NULL
);
CREATE INDEX vuln_cves_modified ON vuln_cves (modified);

CREATE TABLE vuln_cve_products (
    product TEXT NOT NULL,
    vendor  TEXT NOT NULL,
    cve_id  TEXT NOT NULL REFERENCES vuln_cves (id) ON DELETE CASCADE,
    PRIMARY KEY (product, vendor, cve_id)
);
CREATE INDEX vuln_cve_products_cve ON vuln_cve_products (cve_id);

CREATE TABLE vuln_assets (
    id         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL
);
CREATE INDEX vuln_assets_first_seen ON vuln_assets (first_seen, id);

CREATE TABLE vuln_software (
    id         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    asset_id   BIGINT  NOT NULL REFERENCES vuln_assets (id) ON DELETE CASCADE,
    source     TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    version    TEXT    NOT NULL,
    purl       TEXT,
    cpe        TEXT,
    distro     TEXT,
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    UNIQUE (asset_id, source, key)
);

CREATE TABLE vuln_matches (
    id             BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    asset_id       BIGINT  NOT NULL REFERENCES vuln_assets (id) ON DELETE CASCADE,
    cve_id         TEXT    NOT NULL,
    product        TEXT    NOT NULL,
    software       TEXT    NOT NULL,
    version        TEXT    NOT NULL,
    severity       TEXT    NOT NULL,
    score          DOUBLE PRECISION,
    confidence     TEXT    NOT NULL,
    kev            INTEGER NOT NULL,
    status         TEXT    NOT NULL,
    status_comment TEXT,
    status_by      TEXT,
    status_at      BIGINT,
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    UNIQUE (asset_id, cve_id, product)
);
-- One index per filter of GET /api/v1/vulnerabilities, each ending in the keyset order.
CREATE INDEX vuln_matches_first_seen ON vuln_matches (first_seen, id);
CREATE INDEX vuln_matches_asset      ON vuln_matches (asset_id, first_seen, id);
CREATE INDEX vuln_matches_cve        ON vuln_matches (cve_id, first_seen, id);
CREATE INDEX vuln_matches_severity   ON vuln_matches (severity, first_seen, id);
CREATE INDEX vuln_matches_status     ON vuln_matches (status, first_seen, id);

CREATE TABLE vuln_sync (
    feed       TEXT    PRIMARY KEY NOT NULL,
    value      TEXT    NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE reports (
    id         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind       TEXT    NOT NULL,
    range_from BIGINT NOT NULL,
    range_to BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT    NOT NULL,
    doc        TEXT    NOT NULL
);
CREATE INDEX reports_created_at ON reports (created_at, id);
-- The security summary's decision counts by creation time.
CREATE INDEX decisions_created_kind ON decisions (created_at, kind, origin);
