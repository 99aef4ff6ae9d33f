//! [`SecurityStore`] for the SQLite backend.
//!
//! A child module of `sqlite` so that it shares that backend's connection handling:
//! writes go through the single writer connection, reads through the reader pool, all on
//! Tokio's blocking pool. Text values pass through [`clean`] exactly as in the
//! PostgreSQL backend, so that both store (and find) the same thing.

use async_trait::async_trait;
use palisade_core::Timestamp;
use palisade_core::security::{
    ApiKey, AuditEntry, NewApiKey, NewAudit, NewUser, RefreshToken, SecretRecord, User,
};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::{SqliteStore, count, lock, params_of, sqlite_err};
use crate::codec::clean;
use crate::codec::security::{
    API_KEY_SELECT_COLUMNS, ApiKeyColumns, REFRESH_SELECT_COLUMNS, SECRET_SELECT_COLUMNS,
    USER_SELECT_COLUMNS, UserColumns, api_key_conflict, scopes_to_text,
};
use crate::sqlgen::{self, Dialect};
use crate::{AuditQuery, Cursor, Page, SecurityStore, StoreError};

/// The unique-constraint violation (not a primary key or foreign key one) behind `e`,
/// with SQLite's message (which names the column), if that is what `e` is.
fn unique_violation(e: &rusqlite::Error) -> Option<String> {
    match e {
        rusqlite::Error::SqliteFailure(f, msg)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
        {
            Some(msg.clone().unwrap_or_default())
        }
        _ => None,
    }
}

fn user_from_row(row: &Row<'_>) -> rusqlite::Result<UserColumns> {
    Ok(UserColumns {
        id: row.get(0)?,
        username: row.get(1)?,
        role: row.get(2)?,
        password_hash: row.get(3)?,
        disabled: row.get(4)?,
        tokens_valid_after: row.get(5)?,
        created_at: row.get(6)?,
        updated_at: row.get(7)?,
    })
}

fn refresh_from_row(row: &Row<'_>) -> rusqlite::Result<RefreshToken> {
    Ok(RefreshToken {
        token_hash: row.get(0)?,
        family: row.get(1)?,
        user_id: row.get(2)?,
        issued_at: Timestamp(row.get(3)?),
        expires_at: Timestamp(row.get(4)?),
        used_at: row.get::<_, Option<i64>>(5)?.map(Timestamp),
        revoked_at: row.get::<_, Option<i64>>(6)?.map(Timestamp),
    })
}

fn api_key_from_row(row: &Row<'_>) -> rusqlite::Result<ApiKeyColumns> {
    Ok(ApiKeyColumns {
        id: row.get(0)?,
        name: row.get(1)?,
        prefix: row.get(2)?,
        key_hash: row.get(3)?,
        scopes: row.get(4)?,
        created_by: row.get(5)?,
        created_at: row.get(6)?,
        last_used_at: row.get(7)?,
        revoked_at: row.get(8)?,
    })
}

fn secret_from_row(row: &Row<'_>) -> rusqlite::Result<SecretRecord> {
    Ok(SecretRecord {
        name: row.get(0)?,
        key_id: row.get(1)?,
        nonce: row.get(2)?,
        ciphertext: row.get(3)?,
        updated_at: Timestamp(row.get(4)?),
        updated_by: row.get(5)?,
    })
}

fn audit_from_row(row: &Row<'_>) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        id: row.get(0)?,
        ts: Timestamp(row.get(1)?),
        actor: row.get(2)?,
        action: row.get(3)?,
        target: row.get(4)?,
        outcome: row.get(5)?,
        client_ip: row.get(6)?,
        detail: row.get(7)?,
    })
}

/// Upserts one secret on `conn` (the writer, or a transaction on it).
fn upsert_secret(conn: &Connection, s: &SecretRecord) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO secrets (name, key_id, nonce, ciphertext, updated_at, updated_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (name) DO UPDATE SET
             key_id = excluded.key_id, nonce = excluded.nonce,
             ciphertext = excluded.ciphertext, updated_at = excluded.updated_at,
             updated_by = excluded.updated_by",
    )
    .and_then(|mut st| {
        st.execute(params![
            &*clean(&s.name),
            &*clean(&s.key_id),
            s.nonce,
            s.ciphertext,
            s.updated_at.as_micros(),
            s.updated_by.as_deref().map(clean).as_deref(),
        ])
    })
    .map_err(sqlite_err)?;
    Ok(())
}

impl SqliteStore {
    /// Runs one statement on the writer and returns how many rows it changed.
    async fn write_execute<F>(&self, f: F) -> Result<usize, StoreError>
    where
        F: FnOnce(&Connection) -> rusqlite::Result<usize> + Send + 'static,
    {
        self.blocking(move |inner| f(&lock(&inner.writer)).map_err(sqlite_err))
            .await
    }

    /// One user by a `WHERE` clause on a single parameter.
    async fn user_where<P>(
        &self,
        clause: &'static str,
        param: P,
    ) -> Result<Option<User>, StoreError>
    where
        P: rusqlite::ToSql + Send + 'static,
    {
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {USER_SELECT_COLUMNS} FROM users WHERE {clause}"
            ))
            .and_then(|mut s| s.query_row([param], user_from_row).optional())
            .map_err(sqlite_err)?
            .map(UserColumns::into_user)
            .transpose()
        })
        .await
    }
}

#[async_trait]
impl SecurityStore for SqliteStore {
    async fn create_user(&self, user: NewUser) -> Result<User, StoreError> {
        let now = Timestamp::now();
        self.blocking(move |inner| {
            let conn = lock(&inner.writer);
            let username = clean(&user.username).into_owned();
            conn.prepare_cached(
                "INSERT INTO users (username, role, password_hash, disabled,
                                    tokens_valid_after, created_at, updated_at)
                 VALUES (?1, ?2, ?3, 0, NULL, ?4, ?4)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    username,
                    user.role.as_str(),
                    user.password_hash,
                    now.as_micros()
                ])
            })
            .map_err(|e| match unique_violation(&e) {
                Some(_) => StoreError::Conflict(format!("username '{username}'")),
                None => sqlite_err(e),
            })?;
            Ok(User {
                id: conn.last_insert_rowid(),
                username,
                role: user.role,
                password_hash: user.password_hash,
                disabled: false,
                tokens_valid_after: None,
                created_at: now,
                updated_at: now,
            })
        })
        .await
    }

    async fn user_by_name(&self, username: &str) -> Result<Option<User>, StoreError> {
        self.user_where("username = ?1", clean(username).into_owned())
            .await
    }

    async fn user_by_id(&self, id: i64) -> Result<Option<User>, StoreError> {
        self.user_where("id = ?1", id).await
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {USER_SELECT_COLUMNS} FROM users ORDER BY username"
                ))
                .map_err(sqlite_err)?;
            let rows = stmt.query_map([], user_from_row).map_err(sqlite_err)?;
            rows.map(|r| r.map_err(sqlite_err)?.into_user()).collect()
        })
        .await
    }

    async fn update_user(&self, user: &User) -> Result<bool, StoreError> {
        let user = user.clone();
        let now = Timestamp::now();
        let changed = self
            .write_execute(move |conn| {
                conn.prepare_cached(
                    "UPDATE users SET role = ?1, password_hash = ?2, disabled = ?3, updated_at = ?4
                     WHERE id = ?5",
                )?
                .execute(params![
                    user.role.as_str(),
                    user.password_hash,
                    user.disabled,
                    now.as_micros(),
                    user.id
                ])
            })
            .await?;
        Ok(changed > 0)
    }

    async fn revoke_access_tokens(&self, user_id: i64, at: Timestamp) -> Result<bool, StoreError> {
        // One statement on the single writer; `max` keeps the cut-off from moving back.
        let changed = self
            .write_execute(move |conn| {
                conn.prepare_cached(
                    "UPDATE users SET tokens_valid_after = max(coalesce(tokens_valid_after, ?1), ?1)
                     WHERE id = ?2",
                )?
                .execute(params![at.as_micros(), user_id])
            })
            .await?;
        Ok(changed > 0)
    }

    async fn delete_user(&self, id: i64) -> Result<bool, StoreError> {
        // Its refresh tokens go by ON DELETE CASCADE (foreign_keys is on for every
        // connection this store opens).
        let changed = self
            .write_execute(move |conn| {
                conn.prepare_cached("DELETE FROM users WHERE id = ?1")?
                    .execute([id])
            })
            .await?;
        Ok(changed > 0)
    }

    async fn count_active_admins(&self) -> Result<u64, StoreError> {
        let n = self
            .read(|conn| {
                conn.prepare_cached("SELECT count(*) FROM users WHERE role = ?1 AND disabled = 0")
                    .and_then(|mut s| {
                        s.query_row([palisade_core::security::Role::Admin.as_str()], |r| {
                            r.get::<_, i64>(0)
                        })
                    })
                    .map_err(sqlite_err)
            })
            .await?;
        count(n)
    }

    async fn insert_refresh_token(&self, token: &RefreshToken) -> Result<(), StoreError> {
        let t = token.clone();
        self.write_execute(move |conn| {
            conn.prepare_cached(
                "INSERT INTO refresh_tokens
                     (token_hash, family, user_id, issued_at, expires_at, used_at, revoked_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                &*clean(&t.token_hash),
                &*clean(&t.family),
                t.user_id,
                t.issued_at.as_micros(),
                t.expires_at.as_micros(),
                t.used_at.map(|v| v.as_micros()),
                t.revoked_at.map(|v| v.as_micros()),
            ])
        })
        .await?;
        Ok(())
    }

    async fn refresh_token(&self, token_hash: &str) -> Result<Option<RefreshToken>, StoreError> {
        let hash = clean(token_hash).into_owned();
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {REFRESH_SELECT_COLUMNS} FROM refresh_tokens WHERE token_hash = ?1"
            ))
            .and_then(|mut s| s.query_row([hash], refresh_from_row).optional())
            .map_err(sqlite_err)
        })
        .await
    }

    async fn use_refresh_token(&self, token_hash: &str, at: Timestamp) -> Result<bool, StoreError> {
        let hash = clean(token_hash).into_owned();
        // One statement: the single writer serialises it, and the WHERE clause makes
        // only the first exchange of a token change a row.
        let changed = self
            .write_execute(move |conn| {
                conn.prepare_cached(
                    "UPDATE refresh_tokens SET used_at = ?1
                     WHERE token_hash = ?2 AND used_at IS NULL AND revoked_at IS NULL",
                )?
                .execute(params![at.as_micros(), hash])
            })
            .await?;
        Ok(changed == 1)
    }

    async fn revoke_refresh_family(&self, family: &str, at: Timestamp) -> Result<u64, StoreError> {
        let family = clean(family).into_owned();
        let changed = self
            .write_execute(move |conn| {
                conn.prepare_cached(
                    "UPDATE refresh_tokens SET revoked_at = ?1
                     WHERE family = ?2 AND revoked_at IS NULL",
                )?
                .execute(params![at.as_micros(), family])
            })
            .await?;
        Ok(changed as u64)
    }

    async fn revoke_user_refresh_tokens(
        &self,
        user_id: i64,
        at: Timestamp,
    ) -> Result<u64, StoreError> {
        let changed = self
            .write_execute(move |conn| {
                conn.prepare_cached(
                    "UPDATE refresh_tokens SET revoked_at = ?1
                     WHERE user_id = ?2 AND revoked_at IS NULL",
                )?
                .execute(params![at.as_micros(), user_id])
            })
            .await?;
        Ok(changed as u64)
    }

    async fn create_api_key(&self, key: NewApiKey) -> Result<ApiKey, StoreError> {
        let now = Timestamp::now();
        self.blocking(move |inner| {
            let conn = lock(&inner.writer);
            let name = clean(&key.name).into_owned();
            let prefix = clean(&key.prefix).into_owned();
            let created_by = key.created_by.as_deref().map(|s| clean(s).into_owned());
            conn.prepare_cached(
                "INSERT INTO api_keys (name, prefix, key_hash, scopes, created_by, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    name,
                    prefix,
                    key.key_hash,
                    scopes_to_text(&key.scopes),
                    created_by,
                    now.as_micros()
                ])
            })
            .map_err(|e| match unique_violation(&e) {
                Some(msg) => api_key_conflict(&msg, &name, &prefix),
                None => sqlite_err(e),
            })?;
            Ok(ApiKey {
                id: conn.last_insert_rowid(),
                name,
                prefix,
                key_hash: key.key_hash,
                scopes: key.scopes,
                created_by,
                created_at: now,
                last_used_at: None,
                revoked_at: None,
            })
        })
        .await
    }

    async fn api_key_by_prefix(&self, prefix: &str) -> Result<Option<ApiKey>, StoreError> {
        let prefix = clean(prefix).into_owned();
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {API_KEY_SELECT_COLUMNS} FROM api_keys WHERE prefix = ?1"
            ))
            .and_then(|mut s| s.query_row([prefix], api_key_from_row).optional())
            .map_err(sqlite_err)?
            .map(ApiKeyColumns::into_api_key)
            .transpose()
        })
        .await
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {API_KEY_SELECT_COLUMNS} FROM api_keys
                     ORDER BY created_at DESC, id DESC"
                ))
                .map_err(sqlite_err)?;
            let rows = stmt.query_map([], api_key_from_row).map_err(sqlite_err)?;
            rows.map(|r| r.map_err(sqlite_err)?.into_api_key())
                .collect()
        })
        .await
    }

    async fn revoke_api_key(&self, id: i64, at: Timestamp) -> Result<bool, StoreError> {
        let changed = self
            .write_execute(move |conn| {
                conn.prepare_cached(
                    "UPDATE api_keys SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL",
                )?
                .execute(params![at.as_micros(), id])
            })
            .await?;
        Ok(changed > 0)
    }

    async fn touch_api_key(&self, id: i64, at: Timestamp) -> Result<(), StoreError> {
        self.write_execute(move |conn| {
            conn.prepare_cached("UPDATE api_keys SET last_used_at = ?1 WHERE id = ?2")?
                .execute(params![at.as_micros(), id])
        })
        .await?;
        Ok(())
    }

    async fn put_secret(&self, secret: &SecretRecord) -> Result<(), StoreError> {
        let secret = secret.clone();
        self.blocking(move |inner| upsert_secret(&lock(&inner.writer), &secret))
            .await
    }

    async fn secret(&self, name: &str) -> Result<Option<SecretRecord>, StoreError> {
        let name = clean(name).into_owned();
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {SECRET_SELECT_COLUMNS} FROM secrets WHERE name = ?1"
            ))
            .and_then(|mut s| s.query_row([name], secret_from_row).optional())
            .map_err(sqlite_err)
        })
        .await
    }

    async fn list_secrets(&self) -> Result<Vec<SecretRecord>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {SECRET_SELECT_COLUMNS} FROM secrets ORDER BY name"
                ))
                .map_err(sqlite_err)?;
            let rows = stmt.query_map([], secret_from_row).map_err(sqlite_err)?;
            rows.map(|r| r.map_err(sqlite_err)).collect()
        })
        .await
    }

    async fn delete_secret(&self, name: &str) -> Result<bool, StoreError> {
        let name = clean(name).into_owned();
        let changed = self
            .write_execute(move |conn| {
                conn.prepare_cached("DELETE FROM secrets WHERE name = ?1")?
                    .execute([name])
            })
            .await?;
        Ok(changed > 0)
    }

    async fn put_secrets(&self, secrets: &[SecretRecord]) -> Result<(), StoreError> {
        let secrets = secrets.to_vec();
        self.blocking(move |inner| {
            let mut conn = lock(&inner.writer);
            // Dropping `tx` without commit (any `?` below) rolls everything back.
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sqlite_err)?;
            for s in &secrets {
                upsert_secret(&tx, s)?;
            }
            tx.commit().map_err(sqlite_err)
        })
        .await
    }

    async fn append_audit(&self, entry: NewAudit) -> Result<(), StoreError> {
        let now = Timestamp::now();
        self.write_execute(move |conn| {
            let opt = |s: &Option<String>| s.as_deref().map(|v| clean(v).into_owned());
            conn.prepare_cached(
                "INSERT INTO audit_log (ts, actor, action, target, outcome, client_ip, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                now.as_micros(),
                opt(&entry.actor),
                &*clean(&entry.action),
                opt(&entry.target),
                &*clean(&entry.outcome),
                opt(&entry.client_ip),
                opt(&entry.detail),
            ])
        })
        .await?;
        Ok(())
    }

    async fn query_audit(&self, query: &AuditQuery) -> Result<Page<AuditEntry>, StoreError> {
        let sql = sqlgen::audit_query(Dialect::Sqlite, query);
        let limit = query.limit;
        let rows = self
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(&sql.text).map_err(sqlite_err)?;
                let rows = stmt
                    .query_map(&params_of(&sql)[..], audit_from_row)
                    .map_err(sqlite_err)?;
                rows.map(|r| r.map_err(sqlite_err))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
        Ok(sqlgen::into_page(rows, limit, |a| Cursor {
            ts: a.ts.as_micros(),
            id: a.id,
        }))
    }
}
