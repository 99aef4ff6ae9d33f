//! [`LoginStore`] for the SQLite backend: every write is one statement (or one
//! transaction) on the single writer connection, so counting is atomic.

use async_trait::async_trait;
use palisade_core::Timestamp;
use palisade_core::security::LoginFailures;
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::{SqliteStore, lock, sqlite_err};
use crate::codec::clean;
use crate::codec::logins::{PRUNE_ADDRESSES, RECORD_FAILURE_SQLITE, failures_from_columns};
use crate::{KNOWN_ADDRESSES_PER_USER, LoginStore, StoreError};

#[async_trait]
impl LoginStore for SqliteStore {
    async fn record_login_failure(
        &self,
        username: &str,
        client: &str,
        at: Timestamp,
        forget_before: Timestamp,
    ) -> Result<LoginFailures, StoreError> {
        let (username, client) = (clean(username).into_owned(), clean(client).into_owned());
        let (failures, last) = self
            .blocking(move |inner| {
                lock(&inner.writer)
                    .prepare_cached(RECORD_FAILURE_SQLITE)
                    .and_then(|mut s| {
                        s.query_row(
                            params![username, client, at.as_micros(), forget_before.as_micros()],
                            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
                        )
                    })
                    .map_err(sqlite_err)
            })
            .await?;
        failures_from_columns(failures, last)
    }

    async fn login_failures(
        &self,
        username: &str,
        client: &str,
        forget_before: Timestamp,
    ) -> Result<Option<LoginFailures>, StoreError> {
        let (username, client) = (clean(username).into_owned(), clean(client).into_owned());
        let row = self
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT failures, last_failure_at FROM login_failures
                     WHERE username = ?1 AND client = ?2 AND last_failure_at >= ?3",
                )
                .and_then(|mut s| {
                    s.query_row(params![username, client, forget_before.as_micros()], |r| {
                        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
                    })
                    .optional()
                })
                .map_err(sqlite_err)
            })
            .await?;
        row.map(|(failures, last)| failures_from_columns(failures, last))
            .transpose()
    }

    async fn clear_login_failures(
        &self,
        username: &str,
        client: Option<&str>,
    ) -> Result<u64, StoreError> {
        let username = clean(username).into_owned();
        let client = client.map(|c| clean(c).into_owned());
        let changed = self
            .blocking(move |inner| {
                let conn = lock(&inner.writer);
                match client {
                    Some(client) => conn
                        .prepare_cached(
                            "DELETE FROM login_failures WHERE username = ?1 AND client = ?2",
                        )
                        .and_then(|mut s| s.execute(params![username, client])),
                    None => conn
                        .prepare_cached("DELETE FROM login_failures WHERE username = ?1")
                        .and_then(|mut s| s.execute(params![username])),
                }
                .map_err(sqlite_err)
            })
            .await?;
        Ok(changed as u64)
    }

    async fn forget_login_failures(&self, before: Timestamp) -> Result<u64, StoreError> {
        let changed = self
            .blocking(move |inner| {
                lock(&inner.writer)
                    .prepare_cached("DELETE FROM login_failures WHERE last_failure_at < ?1")
                    .and_then(|mut s| s.execute([before.as_micros()]))
                    .map_err(sqlite_err)
            })
            .await?;
        Ok(changed as u64)
    }

    async fn remember_login_address(
        &self,
        user_id: i64,
        client: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let client = clean(client).into_owned();
        self.blocking(move |inner| {
            let mut conn = lock(&inner.writer);
            // Dropping `tx` without commit (any `?` below) rolls back.
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sqlite_err)?;
            tx.prepare_cached(
                "INSERT INTO login_addresses (user_id, client, last_success_at)
                 VALUES (?1, ?2, ?3)
                 ON CONFLICT (user_id, client) DO UPDATE SET
                     last_success_at = max(login_addresses.last_success_at,
                                           excluded.last_success_at)",
            )
            .and_then(|mut s| s.execute(params![user_id, client, at.as_micros()]))
            .map_err(sqlite_err)?;
            tx.prepare_cached(PRUNE_ADDRESSES)
                .and_then(|mut s| s.execute(params![user_id, KNOWN_ADDRESSES_PER_USER]))
                .map_err(sqlite_err)?;
            tx.commit().map_err(sqlite_err)
        })
        .await
    }

    async fn is_known_login_address(&self, user_id: i64, client: &str) -> Result<bool, StoreError> {
        let client = clean(client).into_owned();
        self.read(move |conn| {
            conn.prepare_cached("SELECT 1 FROM login_addresses WHERE user_id = ?1 AND client = ?2")
                .and_then(|mut s| s.query_row(params![user_id, client], |_| Ok(())).optional())
                .map(|found| found.is_some())
                .map_err(sqlite_err)
        })
        .await
    }
}
