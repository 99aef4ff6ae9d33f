//! `palisade secrets rotate-key|list`: the encrypted secrets store.

use std::process::ExitCode;

use anyhow::Context as _;
use palisade_auth::secrets::{SecretBox, add_key, load_or_create_keyring, mask};
use palisade_core::Timestamp;
use palisade_core::security::{NewAudit, SecretRecord};

use crate::cli::SecretsCommand;
use crate::config::Overrides;

/// Runs a secrets subcommand.
pub fn run(o: &Overrides, command: SecretsCommand) -> anyhow::Result<ExitCode> {
    let settings = super::settings(o)?;
    crate::telemetry::init("warn", settings.log_format);
    super::runtime()?.block_on(async move {
        let store = crate::app::open_store(&settings)?;
        store.migrate().await.context("preparing the database")?;
        let path = &settings.auth.secrets_key_file;
        match command {
            SecretsCommand::List => {
                let (active, older) = load_or_create_keyring(path)?;
                let boxed = SecretBox::new(active, older);
                for s in store.list_secrets().await? {
                    let shown = boxed
                        .open(&s.name, &s.key_id, &s.nonce, &s.ciphertext)
                        .ok()
                        .and_then(|v| String::from_utf8(v).ok())
                        .map_or_else(|| "(unreadable)".to_owned(), |v| mask(&v));
                    println!("{:<32} {shown:<12} key {}", s.name, s.key_id);
                }
            }
            SecretsCommand::RotateKey => {
                if settings.auth.secrets_key.is_some() {
                    anyhow::bail!("PALISADE_SECRETS_KEY is set: rotate by setting a new key there and adding the old one to {}", path.display());
                }
                let (old_active, old_older) = load_or_create_keyring(path)?;
                let old_box = SecretBox::new(old_active, old_older);
                let (active, older) = add_key(path)?;
                let new_box = SecretBox::new(active, older);
                let mut rotated = Vec::new();
                for s in store.list_secrets().await? {
                    let plain = old_box
                        .open(&s.name, &s.key_id, &s.nonce, &s.ciphertext)
                        .with_context(|| format!("secret '{}' cannot be decrypted with the keyring; nothing was changed", s.name))?;
                    let sealed = new_box.seal(&s.name, &plain)?;
                    rotated.push(SecretRecord { name: s.name, key_id: sealed.key_id, nonce: sealed.nonce, ciphertext: sealed.ciphertext, updated_at: Timestamp::now(), updated_by: Some("cli:rotate-key".into()) });
                }
                store.put_secrets(&rotated).await?;
                let _ = store
                    .append_audit(NewAudit { actor: Some("cli".into()), action: "secrets.rotate_key".into(), target: None, outcome: "success".into(), client_ip: None, detail: Some(format!("{} secrets re-encrypted with key {}", rotated.len(), new_box.active_key_id())) })
                    .await;
                println!("new key {} is active; {} secrets re-encrypted. Restart running servers to pick it up.", new_box.active_key_id(), rotated.len());
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
