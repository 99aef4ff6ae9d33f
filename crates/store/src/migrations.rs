//! The versioned schema scripts, embedded in the binary so that a deployment is one file.
//! A schema change is a new file appended to the right list, never an edit of an old one.

/// One schema change.
pub(crate) struct Migration {
    /// Strictly increasing; stored in `schema_migrations` once applied.
    pub version: i64,
    /// The file name, for `schema_migrations` and error messages.
    pub name: &'static str,
    /// The script (several statements).
    pub sql: &'static str,
}

/// SQLite migrations, oldest first.
pub(crate) const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_init",
        sql: include_str!("../migrations/sqlite/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "0002_security",
        sql: include_str!("../migrations/sqlite/0002_security.sql"),
    },
    Migration {
        version: 3,
        name: "0003_threats",
        sql: include_str!("../migrations/sqlite/0003_threats.sql"),
    },
    Migration {
        version: 4,
        name: "0004_decisions",
        sql: include_str!("../migrations/sqlite/0004_decisions.sql"),
    },
    Migration {
        version: 8,
        name: "0008_vulnerabilities",
        sql: include_str!("../migrations/sqlite/0008_vulnerabilities.sql"),
    },
];

/// PostgreSQL migrations, oldest first.
pub(crate) const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_init",
        sql: include_str!("../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "0002_security",
        sql: include_str!("../migrations/postgres/0002_security.sql"),
    },
    Migration {
        version: 3,
        name: "0003_threats",
        sql: include_str!("../migrations/postgres/0003_threats.sql"),
    },
    Migration {
        version: 4,
        name: "0004_decisions",
        sql: include_str!("../migrations/postgres/0004_decisions.sql"),
    },
    Migration {
        version: 8,
        name: "0008_vulnerabilities",
        sql: include_str!("../migrations/postgres/0008_vulnerabilities.sql"),
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_increase_and_backends_agree() {
        for list in [SQLITE, POSTGRES] {
            assert!(list.windows(2).all(|w| w[0].version < w[1].version));
        }
        let names = |l: &[Migration]| l.iter().map(|m| (m.version, m.name)).collect::<Vec<_>>();
        assert_eq!(names(SQLITE), names(POSTGRES));
    }
}
