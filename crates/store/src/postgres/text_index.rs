//! The PostgreSQL free-text index (see [`crate::sqlgen::text`]): a `pg_trgm` GIN index
//! kept in step with the `[search]` setting at migration. The events query needs no
//! probe: it always tests the indexed expression and the planner picks the index.

use super::pg_err;
use crate::StoreError;
use crate::sqlgen::text::{self, PG_INDEX};

/// Builds the index, or drops it, so that it exists exactly when `enabled`. Where
/// `pg_trgm` cannot be installed (not shipped, or no privilege) the store keeps working
/// without the index: `q` stays correct, only slower, and a warning says why.
pub(super) async fn sync(
    client: &deadpool_postgres::Client,
    enabled: bool,
) -> Result<(), StoreError> {
    let exists: bool = client
        .query_one("SELECT to_regclass($1::text) IS NOT NULL", &[&PG_INDEX])
        .await
        .map_err(pg_err)?
        .try_get(0)
        .map_err(pg_err)?;
    if exists == enabled {
        return Ok(());
    }
    if !enabled {
        tracing::info!("dropping the free-text index of stored events ([search] text_index)");
        return client.batch_execute(&text::pg_drop()).await.map_err(pg_err);
    }
    // Installed once per database, in any schema; when missing, into the first schema
    // of the search path.
    let mut schema = extension_schema(client).await?;
    if schema.is_none() {
        if let Err(error) = client
            .batch_execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            .await
        {
            return degrade("the pg_trgm extension cannot be installed", error);
        }
        schema = extension_schema(client).await?;
    }
    let Some(schema) = schema else {
        return Ok(());
    };
    tracing::info!("building the free-text index of stored events ([search] text_index)");
    match client.batch_execute(&text::pg_create(&schema)).await {
        Ok(()) => Ok(()),
        Err(error) => degrade("the trigram index cannot be built", error),
    }
}

/// The quoted name of the schema holding `pg_trgm`, `None` when it is not installed.
async fn extension_schema(
    client: &deadpool_postgres::Client,
) -> Result<Option<String>, StoreError> {
    client
        .query_opt(text::PG_EXTENSION_SCHEMA, &[])
        .await
        .map_err(pg_err)?
        .map(|row| row.try_get(0).map_err(pg_err))
        .transpose()
}

/// Logs why the index is missing and carries on without it, unless the database
/// itself is unreachable (then the migration is retried like any other).
fn degrade(what: &str, error: tokio_postgres::Error) -> Result<(), StoreError> {
    match pg_err(error) {
        StoreError::Unavailable(e) => Err(StoreError::Unavailable(e)),
        other => {
            tracing::warn!(
                error = %other,
                "{what}: [search] text_index is on but q is answered without an index"
            );
            Ok(())
        }
    }
}
