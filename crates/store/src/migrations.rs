//! The versioned schema scripts, embedded in the binary so that a deployment is one file.
//! A schema change is a new file `NNNN_name.sql` in both `migrations/sqlite` and
//! `migrations/postgres`, plus one line in the [`migrations!`] list below; never an
//! edit of an old file. Versions are applied by number (a gap is fine: each applied
//! version is recorded in `schema_migrations`).

/// One schema change.
pub(crate) struct Migration {
    /// Strictly increasing; stored in `schema_migrations` once applied.
    pub version: i64,
    /// The file name, for `schema_migrations` and error messages.
    pub name: &'static str,
    /// The script (several statements).
    pub sql: &'static str,
}

/// Both backends' lists from one list of `(version, "file name")`.
macro_rules! migrations {
    ($($version:literal $name:literal),* $(,)?) => {
        /// SQLite migrations, oldest first.
        pub(crate) const SQLITE: &[Migration] = &[$(Migration {
            version: $version,
            name: $name,
            sql: include_str!(concat!("../migrations/sqlite/", $name, ".sql")),
        }),*];
        /// PostgreSQL migrations, oldest first.
        pub(crate) const POSTGRES: &[Migration] = &[$(Migration {
            version: $version,
            name: $name,
            sql: include_str!(concat!("../migrations/postgres/", $name, ".sql")),
        }),*];
    };
}

migrations! {
    1 "0001_init",
    2 "0002_security",
    3 "0003_threats",
    4 "0004_decisions",
    5 "0005_event_verdict",
    6 "0006_auth_hardening",
    7 "0007_jobs",
    8 "0008_vulnerabilities",
    9 "0009_source_totals",
    10 "0010_alerts",
    11 "0011_analytics",
    12 "0012_flows",
    13 "0013_live_relay",
    14 "0014_baselines",
    15 "0015_devices",
    16 "0016_threat_tags",
    18 "0018_events_path_composite",
    19 "0019_inspection_marks",
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_increase_and_match_their_file_names() {
        for list in [SQLITE, POSTGRES] {
            assert!(list.windows(2).all(|w| w[0].version < w[1].version));
            for m in list {
                let number: i64 = m.name[..4].parse().unwrap();
                assert_eq!(number, m.version, "{}", m.name);
                assert!(!m.sql.trim().is_empty());
            }
        }
    }
}
