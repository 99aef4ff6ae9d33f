//! [`LoginStore`] for the PostgreSQL backend: counting is one `INSERT … ON CONFLICT DO
//! UPDATE … RETURNING`, which takes the row lock, so concurrent failures (from any
//! number of API nodes) all count.

use async_trait::async_trait;
use palisade_core::Timestamp;
use palisade_core::security::LoginFailures;
use tokio_postgres::types::ToSql;

use super::{PgStore, corrupt, pg_err};
use crate::codec::clean;
use crate::codec::logins::{
    PRUNE_ADDRESSES, RECORD_FAILURE_POSTGRES, failures_from_columns, postgres_placeholders,
};
use crate::{KNOWN_ADDRESSES_PER_USER, LoginStore, StoreError};

impl PgStore {
    /// Runs one statement and returns how many rows it changed.
    async fn login_execute(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(sql).await.map_err(pg_err)?;
        client.execute(&stmt, params).await.map_err(pg_err)
    }

    /// The rows of one query.
    async fn login_rows(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(sql).await.map_err(pg_err)?;
        client.query(&stmt, params).await.map_err(pg_err)
    }
}

fn run_from_row(row: &tokio_postgres::Row) -> Result<LoginFailures, StoreError> {
    failures_from_columns(
        row.try_get(0).map_err(corrupt)?,
        row.try_get(1).map_err(corrupt)?,
    )
}

#[async_trait]
impl LoginStore for PgStore {
    async fn record_login_failure(
        &self,
        username: &str,
        client: &str,
        at: Timestamp,
        forget_before: Timestamp,
    ) -> Result<LoginFailures, StoreError> {
        let (username, client) = (clean(username), clean(client));
        let (username, client): (&str, &str) = (&username, &client);
        let rows = self
            .login_rows(
                RECORD_FAILURE_POSTGRES,
                &[
                    &username,
                    &client,
                    &at.as_micros(),
                    &forget_before.as_micros(),
                ],
            )
            .await?;
        let row = rows
            .first()
            .ok_or_else(|| StoreError::Database("the failure count returned no row".into()))?;
        run_from_row(row)
    }

    async fn login_failures(
        &self,
        username: &str,
        client: &str,
        forget_before: Timestamp,
    ) -> Result<Option<LoginFailures>, StoreError> {
        let (username, client) = (clean(username), clean(client));
        let (username, client): (&str, &str) = (&username, &client);
        let rows = self
            .login_rows(
                "SELECT failures, last_failure_at FROM login_failures
                 WHERE username = $1 AND client = $2 AND last_failure_at >= $3",
                &[&username, &client, &forget_before.as_micros()],
            )
            .await?;
        rows.first().map(run_from_row).transpose()
    }

    async fn clear_login_failures(
        &self,
        username: &str,
        client: Option<&str>,
    ) -> Result<u64, StoreError> {
        let username = clean(username);
        let username: &str = &username;
        match client.map(clean) {
            Some(client) => {
                let client: &str = &client;
                self.login_execute(
                    "DELETE FROM login_failures WHERE username = $1 AND client = $2",
                    &[&username, &client],
                )
                .await
            }
            None => {
                self.login_execute(
                    "DELETE FROM login_failures WHERE username = $1",
                    &[&username],
                )
                .await
            }
        }
    }

    async fn forget_login_failures(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.login_execute(
            "DELETE FROM login_failures WHERE last_failure_at < $1",
            &[&before.as_micros()],
        )
        .await
    }

    async fn remember_login_address(
        &self,
        user_id: i64,
        client: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let client = clean(client);
        let client: &str = &client;
        let mut conn = self.client().await?;
        // Dropping `tx` without commit (any `?` below) rolls back.
        let tx = conn.transaction().await.map_err(pg_err)?;
        tx.execute(
            "INSERT INTO login_addresses (user_id, client, last_success_at)
             VALUES ($1, $2, $3)
             ON CONFLICT (user_id, client) DO UPDATE SET
                 last_success_at = GREATEST(login_addresses.last_success_at,
                                            excluded.last_success_at)",
            &[&user_id, &client, &at.as_micros()],
        )
        .await
        .map_err(pg_err)?;
        tx.execute(
            &postgres_placeholders(PRUNE_ADDRESSES),
            &[&user_id, &i64::from(KNOWN_ADDRESSES_PER_USER)],
        )
        .await
        .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)
    }

    async fn is_known_login_address(&self, user_id: i64, client: &str) -> Result<bool, StoreError> {
        let client = clean(client);
        let client: &str = &client;
        let rows = self
            .login_rows(
                "SELECT 1 FROM login_addresses WHERE user_id = $1 AND client = $2",
                &[&user_id, &client],
            )
            .await?;
        Ok(!rows.is_empty())
    }
}
