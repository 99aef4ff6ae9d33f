//! `palisade user add|list|passwd|remove|unlock`: user management on the configured
//! store, without a running server.

use std::io::Read as _;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use palisade_core::Timestamp;
use palisade_core::security::{NewAudit, NewUser, Role};
use palisade_store::SharedStore;

use crate::cli::UserCommand;
use crate::config::Overrides;

fn read_password(from_stdin: bool, username: &str) -> anyhow::Result<(String, bool)> {
    if !from_stdin {
        return Ok((palisade_auth::password::generate()?, true));
    }
    let mut text = String::new();
    std::io::stdin()
        .take(4096)
        .read_to_string(&mut text)
        .context("reading the password from stdin")?;
    let password = text.trim_end_matches(['\n', '\r']).to_owned();
    palisade_auth::password::check_strength(&password, username)
        .map_err(|why| anyhow::anyhow!("password: {why}"))?;
    Ok((password, false))
}

async fn audit(store: &SharedStore, action: &str, target: &str) {
    let _ = store
        .append_audit(NewAudit {
            actor: Some("cli".into()),
            action: action.into(),
            target: Some(target.into()),
            outcome: "success".into(),
            client_ip: None,
            detail: None,
        })
        .await;
}

/// Runs a user subcommand.
pub fn run(o: &Overrides, command: UserCommand) -> anyhow::Result<ExitCode> {
    let settings = super::settings(o)?;
    crate::telemetry::init("warn", settings.log_format);
    super::runtime()?.block_on(async move {
        let store = crate::app::open_store(&settings)?;
        store.migrate().await.context("preparing the database")?;
        match command {
            UserCommand::List => {
                println!(
                    "{:<6} {:<24} {:<8} {:<9} created",
                    "id", "username", "role", "state"
                );
                for u in store.list_users().await? {
                    let state = if u.disabled {
                        "disabled"
                    } else if account_locked(&store, &u.username).await? {
                        "locked"
                    } else {
                        "active"
                    };
                    println!(
                        "{:<6} {:<24} {:<8} {:<9} {}",
                        u.id,
                        u.username,
                        u.role.as_str(),
                        state,
                        u.created_at
                    );
                }
            }
            UserCommand::Add {
                username,
                role,
                password_stdin,
            } => {
                crate::commands::user::valid_username(&username)?;
                let role = Role::parse(&role)
                    .ok_or_else(|| anyhow::anyhow!("--role: must be viewer, analyst or admin"))?;
                let (password, generated) = read_password(password_stdin, &username)?;
                let password_hash = palisade_auth::password::hash(&password)?;
                store
                    .create_user(NewUser {
                        username: username.clone(),
                        role,
                        password_hash,
                    })
                    .await
                    .map_err(|e| match e {
                        palisade_store::StoreError::Conflict(_) => {
                            anyhow::anyhow!("a user named '{username}' exists")
                        }
                        other => other.into(),
                    })?;
                audit(&store, "user.create", &username).await;
                println!("created {} user '{username}'", role.as_str());
                if generated {
                    println!("password (shown once): {password}");
                }
            }
            UserCommand::Passwd {
                username,
                password_stdin,
            } => {
                let mut user = store
                    .user_by_name(&username)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("no user named '{username}'"))?;
                let (password, generated) = read_password(password_stdin, &username)?;
                user.password_hash = palisade_auth::password::hash(&password)?;
                store.update_user(&user).await?;
                let now = Timestamp::now();
                store.revoke_user_refresh_tokens(user.id, now).await?;
                store.revoke_access_tokens(user.id, now).await?;
                store.clear_login_failures(&username, None).await?;
                audit(&store, "password.change", &username).await;
                println!("password of '{username}' changed; their sessions were ended");
                if generated {
                    println!("password (shown once): {password}");
                }
            }
            UserCommand::Remove { username } => {
                let user = store
                    .user_by_name(&username)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("no user named '{username}'"))?;
                if user.role == Role::Admin
                    && !user.disabled
                    && store.count_active_admins().await? <= 1
                {
                    bail!("'{username}' is the last enabled admin; add another admin first");
                }
                store.delete_user(user.id).await?;
                audit(&store, "user.delete", &username).await;
                println!("removed '{username}'");
            }
            UserCommand::Unlock { username } => {
                let cleared = store.clear_login_failures(&username, None).await?;
                audit(&store, "user.unlock", &username).await;
                let known = store.user_by_name(&username).await?.is_some();
                println!(
                    "unlocked '{username}': {cleared} failed-password record(s) cleared{}",
                    if known {
                        ""
                    } else {
                        " (no user has this name)"
                    }
                );
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Whether the account-wide lock (failures from many addresses) is in force for a name.
async fn account_locked(store: &SharedStore, username: &str) -> anyhow::Result<bool> {
    use palisade_auth::lockout::{FORGET_AFTER_SECS, LockoutPolicy};
    let now = Timestamp::now();
    let horizon = now.add_micros(-FORGET_AFTER_SECS * 1_000_000);
    let run = store
        .login_failures(
            username,
            palisade_api::auth::attempts::ALL_ADDRESSES,
            horizon,
        )
        .await?;
    Ok(run
        .and_then(|r| {
            LockoutPolicy::account_wide().lock_after_failure(r.failures, r.last_failure_at)
        })
        .is_some_and(|until| until > now))
}

/// The same username rule as the API.
pub fn valid_username(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !ok {
        bail!("username: must be 1 to 64 letters, digits, '.', '_' or '-'");
    }
    Ok(())
}
