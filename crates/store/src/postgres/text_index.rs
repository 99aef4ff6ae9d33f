//! The PostgreSQL free-text indexes (see [`crate::sqlgen::text`]): a GIN index of the
//! path bucket and the `pg_trgm` trigrams, and a GIN index of the trigrams tagged with
//! the path's first characters, kept in step with the `[search]` setting at migration.
//! The planner picks the first for `q`; the store adds the bucket key, or the tagged
//! key, for a large path prefix plus `q` (see `postgres::ingest`), which it only does
//! once it knows the index exists ([`sync`]'s answer). The tagged index follows its
//! own setting (`[search] prefix_text_index`, with `text_index` on): a store switched
//! to it gets it at its next start, beside the trigram index it already has.

use super::pg_err;
use crate::StoreError;
use crate::sqlgen::text::{self, PG_INDEX, PG_OLD_INDEX, PG_TAGGED_FN, PG_TAGGED_INDEX};

/// Which of the free-text indexes exist, as [`sync`] left them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct TextIndexes {
    /// The bucket and trigram index ([`PG_INDEX`]).
    pub trigram: bool,
    /// The tagged trigram index ([`PG_TAGGED_INDEX`]).
    pub tagged: bool,
}

/// Builds the indexes, or drops them, so that they exist exactly when `enabled`; an
/// index of the first layout (trigrams only) is replaced, and the tagged index is
/// added beside an existing one. Where `pg_trgm` cannot be installed (not shipped, or
/// no privilege) the store keeps working without the indexes: `q` stays correct,
/// only slower, and a warning says why. Returns which exist afterwards.
pub(super) async fn sync(
    client: &deadpool_postgres::Client,
    search: crate::SearchConfig,
) -> Result<TextIndexes, StoreError> {
    let enabled = search.text_index;
    let tagged_enabled = enabled && search.prefix_text_index;
    let row = client
        .query_one(
            "SELECT to_regclass($1::text) IS NOT NULL, to_regclass($2::text) IS NOT NULL,
                    to_regclass($3::text) IS NOT NULL,
                    to_regprocedure($4::text || '(text, text)') IS NOT NULL",
            &[&PG_INDEX, &PG_OLD_INDEX, &PG_TAGGED_INDEX, &PG_TAGGED_FN],
        )
        .await
        .map_err(pg_err)?;
    let exists: bool = row.try_get(0).map_err(pg_err)?;
    let old_exists: bool = row.try_get(1).map_err(pg_err)?;
    let tagged_exists: bool = row.try_get(2).map_err(pg_err)?;
    let fn_exists: bool = row.try_get(3).map_err(pg_err)?;
    if !enabled {
        if exists || old_exists || tagged_exists || fn_exists {
            tracing::info!("dropping the free-text index of stored events ([search] text_index)");
            client
                .batch_execute(&text::pg_drop())
                .await
                .map_err(pg_err)?;
        }
        return Ok(TextIndexes::default());
    }
    if !tagged_enabled && (tagged_exists || fn_exists) {
        tracing::info!(
            "dropping the tagged free-text index of stored events ([search] prefix_text_index)"
        );
        client
            .batch_execute(&text::pg_drop_tagged())
            .await
            .map_err(pg_err)?;
    }
    if exists {
        if old_exists {
            client
                .batch_execute(&format!("DROP INDEX IF EXISTS {PG_OLD_INDEX}"))
                .await
                .map_err(pg_err)?;
        }
        if tagged_exists || !tagged_enabled {
            return Ok(TextIndexes {
                trigram: true,
                tagged: tagged_enabled,
            });
        }
    }
    // Installed once per database, in any schema; when missing, into the first schema
    // of the search path.
    let mut schema = extension_schema(client).await?;
    if schema.is_none() {
        if let Err(error) = client
            .batch_execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            .await
        {
            return degrade("the pg_trgm extension cannot be installed", error)
                .map(|()| TextIndexes::default());
        }
        schema = extension_schema(client).await?;
    }
    let Some(schema) = schema else {
        return Ok(TextIndexes::default());
    };
    let trigram = if exists {
        true
    } else {
        tracing::info!("building the free-text index of stored events ([search] text_index)");
        match client.batch_execute(&text::pg_create(&schema)).await {
            Ok(()) => true,
            Err(error) => {
                degrade("the trigram index cannot be built", error)?;
                return Ok(TextIndexes::default());
            }
        }
    };
    if !tagged_enabled || tagged_exists {
        return Ok(TextIndexes {
            trigram,
            tagged: tagged_enabled,
        });
    }
    tracing::info!(
        "building the tagged free-text index of stored events ([search] prefix_text_index)"
    );
    let tagged = match client.batch_execute(&text::pg_create_tagged(&schema)).await {
        Ok(()) => true,
        Err(error) => {
            degrade("the tagged trigram index cannot be built", error)?;
            false
        }
    };
    Ok(TextIndexes { trigram, tagged })
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
