//! [`SecurityStore`] for the PostgreSQL backend.
//!
//! A child module of `postgres` so that it shares that backend's pool and error
//! mapping. Text values pass through [`clean`] (PostgreSQL rejects NUL in text), exactly
//! as in the SQLite backend, so that both store (and find) the same thing.

use std::borrow::Cow;

use async_trait::async_trait;
use palisade_core::Timestamp;
use palisade_core::security::{
    ApiKey, AuditEntry, NewApiKey, NewAudit, NewUser, RefreshToken, Role, SecretRecord, User,
};
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use super::{PgStore, corrupt, count, pg_err};
use crate::codec::clean;
use crate::codec::security::{
    API_KEY_SELECT_COLUMNS, ApiKeyColumns, REFRESH_SELECT_COLUMNS, SECRET_SELECT_COLUMNS,
    USER_SELECT_COLUMNS, UserColumns, api_key_conflict, scopes_to_text,
};
use crate::sqlgen::{self, Dialect};
use crate::{AuditQuery, Cursor, Page, SecurityStore, StoreError};

/// The unique-constraint violation behind `e`, with its constraint name (which names
/// the column, e.g. `api_keys_prefix_key`) and message, if that is what `e` is.
fn unique_violation(e: &tokio_postgres::Error) -> Option<String> {
    let db = e.as_db_error()?;
    (db.code() == &SqlState::UNIQUE_VIOLATION).then(|| {
        format!(
            "{} {}",
            db.constraint().unwrap_or_default(),
            db.detail().unwrap_or_default()
        )
    })
}

fn user_from_row(r: &Row) -> Result<User, StoreError> {
    UserColumns {
        id: r.try_get(0).map_err(corrupt)?,
        username: r.try_get(1).map_err(corrupt)?,
        role: r.try_get(2).map_err(corrupt)?,
        password_hash: r.try_get(3).map_err(corrupt)?,
        disabled: r.try_get(4).map_err(corrupt)?,
        tokens_valid_after: r.try_get(5).map_err(corrupt)?,
        created_at: r.try_get(6).map_err(corrupt)?,
        updated_at: r.try_get(7).map_err(corrupt)?,
    }
    .into_user()
}

fn refresh_from_row(r: &Row) -> Result<RefreshToken, tokio_postgres::Error> {
    Ok(RefreshToken {
        token_hash: r.try_get(0)?,
        family: r.try_get(1)?,
        user_id: r.try_get(2)?,
        issued_at: Timestamp(r.try_get(3)?),
        expires_at: Timestamp(r.try_get(4)?),
        used_at: r.try_get::<_, Option<i64>>(5)?.map(Timestamp),
        revoked_at: r.try_get::<_, Option<i64>>(6)?.map(Timestamp),
    })
}

fn api_key_from_row(r: &Row) -> Result<ApiKey, StoreError> {
    ApiKeyColumns {
        id: r.try_get(0).map_err(corrupt)?,
        name: r.try_get(1).map_err(corrupt)?,
        prefix: r.try_get(2).map_err(corrupt)?,
        key_hash: r.try_get(3).map_err(corrupt)?,
        scopes: r.try_get(4).map_err(corrupt)?,
        created_by: r.try_get(5).map_err(corrupt)?,
        created_at: r.try_get(6).map_err(corrupt)?,
        last_used_at: r.try_get(7).map_err(corrupt)?,
        revoked_at: r.try_get(8).map_err(corrupt)?,
    }
    .into_api_key()
}

fn secret_from_row(r: &Row) -> Result<SecretRecord, tokio_postgres::Error> {
    Ok(SecretRecord {
        name: r.try_get(0)?,
        key_id: r.try_get(1)?,
        nonce: r.try_get(2)?,
        ciphertext: r.try_get(3)?,
        updated_at: Timestamp(r.try_get(4)?),
        updated_by: r.try_get(5)?,
    })
}

fn audit_from_row(r: &Row) -> Result<AuditEntry, tokio_postgres::Error> {
    Ok(AuditEntry {
        id: r.try_get(0)?,
        ts: Timestamp(r.try_get(1)?),
        actor: r.try_get(2)?,
        action: r.try_get(3)?,
        target: r.try_get(4)?,
        outcome: r.try_get(5)?,
        client_ip: r.try_get(6)?,
        detail: r.try_get(7)?,
    })
}

/// `clean` for an optional text column.
fn clean_opt(s: &Option<String>) -> Option<Cow<'_, str>> {
    s.as_deref().map(clean)
}

/// The secret upsert, shared by `put_secret` and `put_secrets`.
const UPSERT_SECRET: &str =
    "INSERT INTO secrets (name, key_id, nonce, ciphertext, updated_at, updated_by)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (name) DO UPDATE SET
         key_id = excluded.key_id, nonce = excluded.nonce,
         ciphertext = excluded.ciphertext, updated_at = excluded.updated_at,
         updated_by = excluded.updated_by";

/// Upserts one secret with a prepared [`UPSERT_SECRET`] on `client` (a connection or a
/// transaction).
async fn upsert_secret<C: deadpool_postgres::GenericClient>(
    client: &C,
    stmt: &tokio_postgres::Statement,
    s: &SecretRecord,
) -> Result<(), StoreError> {
    let name = clean(&s.name);
    let key_id = clean(&s.key_id);
    let updated_by = clean_opt(&s.updated_by);
    let (name, key_id, updated_by): (&str, &str, Option<&str>) =
        (&name, &key_id, updated_by.as_deref());
    client
        .execute(
            stmt,
            &[
                &name,
                &key_id,
                &s.nonce,
                &s.ciphertext,
                &s.updated_at.as_micros(),
                &updated_by,
            ],
        )
        .await
        .map_err(pg_err)?;
    Ok(())
}

impl PgStore {
    /// Runs one statement and returns how many rows it changed.
    async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(sql).await.map_err(pg_err)?;
        client.execute(&stmt, params).await.map_err(pg_err)
    }

    /// The rows of one query.
    async fn rows(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(sql).await.map_err(pg_err)?;
        client.query(&stmt, params).await.map_err(pg_err)
    }
}

#[async_trait]
impl SecurityStore for PgStore {
    async fn create_user(&self, user: NewUser) -> Result<User, StoreError> {
        let now = Timestamp::now();
        let username = clean(&user.username).into_owned();
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "INSERT INTO users (username, role, password_hash, disabled,
                                    tokens_valid_after, created_at, updated_at)
                 VALUES ($1, $2, $3, false, NULL, $4, $4)
                 RETURNING id",
            )
            .await
            .map_err(pg_err)?;
        let row = client
            .query_one(
                &stmt,
                &[
                    &username.as_str(),
                    &user.role.as_str(),
                    &user.password_hash.as_str(),
                    &now.as_micros(),
                ],
            )
            .await
            .map_err(|e| match unique_violation(&e) {
                Some(_) => StoreError::Conflict(format!("username '{username}'")),
                None => pg_err(e),
            })?;
        let id: i64 = row.try_get(0).map_err(corrupt)?;
        Ok(User {
            id,
            username,
            role: user.role,
            password_hash: user.password_hash,
            disabled: false,
            tokens_valid_after: None,
            created_at: now,
            updated_at: now,
        })
    }

    async fn user_by_name(&self, username: &str) -> Result<Option<User>, StoreError> {
        let username = clean(username);
        let username: &str = &username;
        let rows = self
            .rows(
                &format!("SELECT {USER_SELECT_COLUMNS} FROM users WHERE username = $1"),
                &[&username],
            )
            .await?;
        rows.first().map(user_from_row).transpose()
    }

    async fn user_by_id(&self, id: i64) -> Result<Option<User>, StoreError> {
        let rows = self
            .rows(
                &format!("SELECT {USER_SELECT_COLUMNS} FROM users WHERE id = $1"),
                &[&id],
            )
            .await?;
        rows.first().map(user_from_row).transpose()
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        // "C" collation: the same bytewise order as SQLite, whatever the locale.
        let rows = self
            .rows(
                &format!("SELECT {USER_SELECT_COLUMNS} FROM users ORDER BY username COLLATE \"C\""),
                &[],
            )
            .await?;
        rows.iter().map(user_from_row).collect()
    }

    async fn update_user(&self, user: &User) -> Result<bool, StoreError> {
        let changed = self
            .execute(
                "UPDATE users SET role = $1, password_hash = $2, disabled = $3, updated_at = $4
                 WHERE id = $5",
                &[
                    &user.role.as_str(),
                    &user.password_hash.as_str(),
                    &user.disabled,
                    &Timestamp::now().as_micros(),
                    &user.id,
                ],
            )
            .await?;
        Ok(changed > 0)
    }

    async fn revoke_access_tokens(&self, user_id: i64, at: Timestamp) -> Result<bool, StoreError> {
        // One statement (the row lock serialises concurrent ones); GREATEST keeps the
        // cut-off from moving back.
        let changed = self
            .execute(
                "UPDATE users SET tokens_valid_after = GREATEST(tokens_valid_after, $1)
                 WHERE id = $2",
                &[&at.as_micros(), &user_id],
            )
            .await?;
        Ok(changed > 0)
    }

    async fn delete_user(&self, id: i64) -> Result<bool, StoreError> {
        // Its refresh tokens go by ON DELETE CASCADE.
        let changed = self
            .execute("DELETE FROM users WHERE id = $1", &[&id])
            .await?;
        Ok(changed > 0)
    }

    async fn count_active_admins(&self) -> Result<u64, StoreError> {
        let rows = self
            .rows(
                "SELECT count(*) FROM users WHERE role = $1 AND NOT disabled",
                &[&Role::Admin.as_str()],
            )
            .await?;
        let n: i64 = rows
            .first()
            .ok_or_else(|| StoreError::Database("count(*) gave no row".into()))?
            .try_get(0)
            .map_err(corrupt)?;
        count(n)
    }

    async fn insert_refresh_token(&self, token: &RefreshToken) -> Result<(), StoreError> {
        let hash = clean(&token.token_hash);
        let family = clean(&token.family);
        let (hash, family): (&str, &str) = (&hash, &family);
        self.execute(
            "INSERT INTO refresh_tokens
                 (token_hash, family, user_id, issued_at, expires_at, used_at, revoked_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &hash,
                &family,
                &token.user_id,
                &token.issued_at.as_micros(),
                &token.expires_at.as_micros(),
                &token.used_at.map(|v| v.as_micros()),
                &token.revoked_at.map(|v| v.as_micros()),
            ],
        )
        .await?;
        Ok(())
    }

    async fn refresh_token(&self, token_hash: &str) -> Result<Option<RefreshToken>, StoreError> {
        let hash = clean(token_hash);
        let hash: &str = &hash;
        let rows = self
            .rows(
                &format!(
                    "SELECT {REFRESH_SELECT_COLUMNS} FROM refresh_tokens WHERE token_hash = $1"
                ),
                &[&hash],
            )
            .await?;
        rows.first()
            .map(|r| refresh_from_row(r).map_err(corrupt))
            .transpose()
    }

    async fn use_refresh_token(&self, token_hash: &str, at: Timestamp) -> Result<bool, StoreError> {
        let hash = clean(token_hash);
        let hash: &str = &hash;
        // One statement: a concurrent exchange of the same token waits on the row lock,
        // then re-checks the WHERE clause and changes nothing.
        let changed = self
            .execute(
                "UPDATE refresh_tokens SET used_at = $1
                 WHERE token_hash = $2 AND used_at IS NULL AND revoked_at IS NULL",
                &[&at.as_micros(), &hash],
            )
            .await?;
        Ok(changed == 1)
    }

    async fn revoke_refresh_family(&self, family: &str, at: Timestamp) -> Result<u64, StoreError> {
        let family = clean(family);
        let family: &str = &family;
        self.execute(
            "UPDATE refresh_tokens SET revoked_at = $1 WHERE family = $2 AND revoked_at IS NULL",
            &[&at.as_micros(), &family],
        )
        .await
    }

    async fn revoke_user_refresh_tokens(
        &self,
        user_id: i64,
        at: Timestamp,
    ) -> Result<u64, StoreError> {
        self.execute(
            "UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
            &[&at.as_micros(), &user_id],
        )
        .await
    }

    async fn create_api_key(&self, key: NewApiKey) -> Result<ApiKey, StoreError> {
        let now = Timestamp::now();
        let name = clean(&key.name).into_owned();
        let prefix = clean(&key.prefix).into_owned();
        let created_by = key.created_by.as_deref().map(|s| clean(s).into_owned());
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "INSERT INTO api_keys (name, prefix, key_hash, scopes, created_by, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 RETURNING id",
            )
            .await
            .map_err(pg_err)?;
        let row = client
            .query_one(
                &stmt,
                &[
                    &name.as_str(),
                    &prefix.as_str(),
                    &key.key_hash.as_str(),
                    &scopes_to_text(&key.scopes),
                    &created_by.as_deref(),
                    &now.as_micros(),
                ],
            )
            .await
            .map_err(|e| match unique_violation(&e) {
                Some(detail) => api_key_conflict(&detail, &name, &prefix),
                None => pg_err(e),
            })?;
        Ok(ApiKey {
            id: row.try_get(0).map_err(corrupt)?,
            name,
            prefix,
            key_hash: key.key_hash,
            scopes: key.scopes,
            created_by,
            created_at: now,
            last_used_at: None,
            revoked_at: None,
        })
    }

    async fn api_key_by_prefix(&self, prefix: &str) -> Result<Option<ApiKey>, StoreError> {
        let prefix = clean(prefix);
        let prefix: &str = &prefix;
        let rows = self
            .rows(
                &format!("SELECT {API_KEY_SELECT_COLUMNS} FROM api_keys WHERE prefix = $1"),
                &[&prefix],
            )
            .await?;
        rows.first().map(api_key_from_row).transpose()
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let rows = self
            .rows(
                &format!(
                    "SELECT {API_KEY_SELECT_COLUMNS} FROM api_keys \
                     ORDER BY created_at DESC, id DESC"
                ),
                &[],
            )
            .await?;
        rows.iter().map(api_key_from_row).collect()
    }

    async fn revoke_api_key(&self, id: i64, at: Timestamp) -> Result<bool, StoreError> {
        let changed = self
            .execute(
                "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                &[&at.as_micros(), &id],
            )
            .await?;
        Ok(changed > 0)
    }

    async fn touch_api_key(&self, id: i64, at: Timestamp) -> Result<(), StoreError> {
        self.execute(
            "UPDATE api_keys SET last_used_at = $1 WHERE id = $2",
            &[&at.as_micros(), &id],
        )
        .await?;
        Ok(())
    }

    async fn put_secret(&self, secret: &SecretRecord) -> Result<(), StoreError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(UPSERT_SECRET).await.map_err(pg_err)?;
        upsert_secret(&client, &stmt, secret).await
    }

    async fn secret(&self, name: &str) -> Result<Option<SecretRecord>, StoreError> {
        let name = clean(name);
        let name: &str = &name;
        let rows = self
            .rows(
                &format!("SELECT {SECRET_SELECT_COLUMNS} FROM secrets WHERE name = $1"),
                &[&name],
            )
            .await?;
        rows.first()
            .map(|r| secret_from_row(r).map_err(corrupt))
            .transpose()
    }

    async fn list_secrets(&self) -> Result<Vec<SecretRecord>, StoreError> {
        let rows = self
            .rows(
                &format!("SELECT {SECRET_SELECT_COLUMNS} FROM secrets ORDER BY name COLLATE \"C\""),
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| secret_from_row(r).map_err(corrupt))
            .collect()
    }

    async fn delete_secret(&self, name: &str) -> Result<bool, StoreError> {
        let name = clean(name);
        let name: &str = &name;
        let changed = self
            .execute("DELETE FROM secrets WHERE name = $1", &[&name])
            .await?;
        Ok(changed > 0)
    }

    async fn put_secrets(&self, secrets: &[SecretRecord]) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        // Dropping `tx` without commit (any `?` below, or a dropped future) rolls back.
        let tx = client.transaction().await.map_err(pg_err)?;
        let stmt = tx.prepare_cached(UPSERT_SECRET).await.map_err(pg_err)?;
        for s in secrets {
            upsert_secret(&tx, &stmt, s).await?;
        }
        tx.commit().await.map_err(pg_err)
    }

    async fn append_audit(&self, entry: NewAudit) -> Result<(), StoreError> {
        let actor = clean_opt(&entry.actor);
        let action = clean(&entry.action);
        let target = clean_opt(&entry.target);
        let outcome = clean(&entry.outcome);
        let client_ip = clean_opt(&entry.client_ip);
        let detail = clean_opt(&entry.detail);
        let (action, outcome): (&str, &str) = (&action, &outcome);
        self.execute(
            "INSERT INTO audit_log (ts, actor, action, target, outcome, client_ip, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &Timestamp::now().as_micros(),
                &actor.as_deref(),
                &action,
                &target.as_deref(),
                &outcome,
                &client_ip.as_deref(),
                &detail.as_deref(),
            ],
        )
        .await?;
        Ok(())
    }

    async fn query_audit(&self, query: &AuditQuery) -> Result<Page<AuditEntry>, StoreError> {
        let sql = sqlgen::audit_query(Dialect::Postgres, query);
        let rows = self.query_generated(&sql).await?;
        let items = rows
            .iter()
            .map(|r| audit_from_row(r).map_err(corrupt))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(sqlgen::into_page(items, query.limit, |a| Cursor {
            ts: a.ts.as_micros(),
            id: a.id,
        }))
    }
}
