//! Binding the rows of a multi-row statement that is executed again and again (the
//! events' insert), without binding again what is bound already.
//!
//! SQLite keeps a statement's bindings from one execution to the next (`sqlite3_reset`
//! leaves them), and a statement fresh from `prepare_cached` has every parameter NULL
//! (rusqlite's cache clears the bindings of a statement it takes back). So a parameter
//! that is NULL now and is to be NULL again needs no call: a combined log line leaves
//! five or six of an event's 19 columns NULL, each bind costs ~150 instructions through
//! rusqlite, and the events' insert binds every column of every row
//! (docs/BENCHMARKS.md, ingest7).

use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{CachedStatement, ToSql};

use super::sqlite_err;
use crate::StoreError;

/// Which parameters of one statement hold a value other than NULL: valid from the
/// moment the statement comes from `prepare_cached` for as long as every bind goes
/// through [`Binder::bind`].
pub(super) struct Binder {
    /// `bound[i]`: parameter `i + 1` holds a value other than NULL.
    bound: Vec<bool>,
}

impl Binder {
    /// The state of a statement fresh from `prepare_cached` (or `prepare`), whose
    /// `parameters` parameters are all NULL.
    pub(super) fn new(parameters: usize) -> Binder {
        Binder {
            bound: vec![false; parameters],
        }
    }

    /// Binds `value` to parameter `index` (1-based), or does nothing when it is NULL
    /// and the parameter holds NULL already.
    pub(super) fn bind(
        &mut self,
        stmt: &mut CachedStatement<'_>,
        index: usize,
        value: &dyn ToSql,
    ) -> Result<(), StoreError> {
        let value = value.to_sql().map_err(sqlite_err)?;
        let null = is_null(&value);
        match self.bound.get_mut(index.wrapping_sub(1)) {
            Some(bound) if null && !*bound => return Ok(()),
            Some(bound) => *bound = !null,
            // Not a parameter of the statement: SQLite says so.
            None => {}
        }
        stmt.raw_bind_parameter(index, value).map_err(sqlite_err)
    }
}

/// Whether a value converted for binding is SQL NULL.
fn is_null(value: &ToSqlOutput<'_>) -> bool {
    matches!(
        value,
        ToSqlOutput::Borrowed(ValueRef::Null) | ToSqlOutput::Owned(Value::Null)
    )
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// Rows bound through a binder, NULLs skipped where NULL was left, are stored
    /// exactly as the values bound: 4,096 patterns of NULL and values in three columns
    /// of a two-row statement over four executions (every change and non-change from
    /// one execution to the next), each pattern on the statement taken back from the
    /// cache (its bindings cleared) and a new binder.
    #[test]
    fn skipped_nulls_store_what_full_binds_store() -> TestResult {
        let conn = Connection::open_in_memory()?;
        conn.execute_batch("CREATE TABLE t (n INTEGER, a TEXT, b INTEGER, c BLOB)")?;
        let sql = "INSERT INTO t (n, a, b, c) VALUES (?1, ?2, ?3, ?4), (?5, ?6, ?7, ?8)";
        let mut expected = Vec::new();
        let mut n = 0i64;
        for pattern in 0..4096u32 {
            // 24 bits, one per (execution, row, column): set means a value.
            let bits = pattern.wrapping_mul(0x9E37_79B9) >> 8;
            let mut stmt = conn.prepare_cached(sql)?;
            let mut binder = Binder::new(8);
            for execution in 0..4 {
                for row in 0..2 {
                    let set = |column: usize| (bits >> (execution * 6 + row * 3 + column)) & 1 == 1;
                    n += 1;
                    let a = set(0).then(|| format!("{n}"));
                    let b = set(1).then_some(n * 10);
                    let c = set(2).then(|| n.to_le_bytes().to_vec());
                    let at = row * 4;
                    binder.bind(&mut stmt, at + 1, &n)?;
                    binder.bind(&mut stmt, at + 2, &a)?;
                    binder.bind(&mut stmt, at + 3, &b)?;
                    binder.bind(&mut stmt, at + 4, &c)?;
                    expected.push((n, a, b, c));
                }
                stmt.raw_execute()?;
            }
        }
        let mut stmt = conn.prepare("SELECT n, a, b, c FROM t ORDER BY n")?;
        let stored = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<Result<Vec<(i64, Option<String>, Option<i64>, Option<Vec<u8>>)>, _>>()?;
        assert_eq!(stored, expected);
        Ok(())
    }
}
