//! `palisade apikey create|list|revoke`: API keys on the configured store.

use std::process::ExitCode;

use anyhow::Context as _;
use palisade_core::Timestamp;
use palisade_core::security::{NewApiKey, NewAudit, Scope};

use crate::cli::ApiKeyCommand;
use crate::config::Overrides;

/// Runs an apikey subcommand.
pub fn run(o: &Overrides, command: ApiKeyCommand) -> anyhow::Result<ExitCode> {
    let settings = super::settings(o)?;
    crate::telemetry::init("warn", settings.log_format);
    super::runtime()?.block_on(async move {
        let store = crate::app::open_store(&settings)?;
        store.migrate().await.context("preparing the database")?;
        let audit = |action: &'static str, target: String| {
            let store = store.clone();
            async move {
                let _ = store
                    .append_audit(NewAudit {
                        actor: Some("cli".into()),
                        action: action.into(),
                        target: Some(target),
                        outcome: "success".into(),
                        client_ip: None,
                        detail: None,
                    })
                    .await;
            }
        };
        match command {
            ApiKeyCommand::Create { name, scope, quiet } => {
                if name.trim().is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
                    anyhow::bail!("--name: must be 1 to 64 printable characters");
                }
                let mut scopes = Vec::new();
                for s in scope.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let parsed = Scope::parse(s).ok_or_else(|| {
                        anyhow::anyhow!("--scope: '{s}' is not one of ingest, check, read, bouncer")
                    })?;
                    if !scopes.contains(&parsed) {
                        scopes.push(parsed);
                    }
                }
                if scopes.is_empty() {
                    anyhow::bail!("--scope: give at least one of ingest, check, read, bouncer");
                }
                let (key, prefix) = palisade_auth::tokens::new_api_key()?;
                store
                    .create_api_key(NewApiKey {
                        name: name.clone(),
                        prefix,
                        key_hash: palisade_auth::tokens::sha256_hex(&key),
                        scopes,
                        created_by: Some("cli".into()),
                    })
                    .await
                    .map_err(|e| match e {
                        palisade_store::StoreError::Conflict(_) => {
                            anyhow::anyhow!("a key named '{name}' exists")
                        }
                        other => other.into(),
                    })?;
                audit("apikey.create", name.clone()).await;
                if quiet {
                    println!("{key}");
                } else {
                    println!(
                        "created key '{name}'. Store it now; it is not shown again:\n\n    {key}\n"
                    );
                }
            }
            ApiKeyCommand::List => {
                println!(
                    "{:<6} {:<24} {:<10} {:<20} {:<8} last used",
                    "id", "name", "prefix", "scopes", "state"
                );
                for k in store.list_api_keys().await? {
                    let scopes: Vec<&str> = k.scopes.iter().map(|s| s.as_str()).collect();
                    let state = if k.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    };
                    let used = k
                        .last_used_at
                        .map_or_else(|| "never".to_owned(), |t| t.to_string());
                    println!(
                        "{:<6} {:<24} {:<10} {:<20} {:<8} {used}",
                        k.id,
                        k.name,
                        k.prefix,
                        scopes.join(","),
                        state
                    );
                }
            }
            ApiKeyCommand::Revoke { id } => {
                if !store.revoke_api_key(id, Timestamp::now()).await? {
                    anyhow::bail!("no live key with id {id} (see `palisade apikey list`)");
                }
                audit("apikey.revoke", format!("id {id}")).await;
                println!("revoked key {id}");
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
