//! Admin passwords and API keys unused for a long time (90 days by default): a
//! forgotten credential still opens the door, and nobody would notice it being used.
//! Password logins are recorded per user (`user_logins`); keys keep their last use.

use async_trait::async_trait;
use palisade_core::severity::Severity;
use serde::Serialize;

use crate::posture::{CheckContext, Finding, PostureCheck};

/// The check.
pub struct StaleCredentials;

#[derive(Serialize)]
struct Stale<'a> {
    kind: &'a str,
    name: &'a str,
    last_used_at: Option<palisade_core::Timestamp>,
    created_at: palisade_core::Timestamp,
}

#[async_trait]
impl PostureCheck for StaleCredentials {
    fn id(&self) -> &'static str {
        "stale_credentials"
    }

    fn title(&self) -> &'static str {
        "No admin password or API key left unused"
    }

    fn severity(&self) -> Severity {
        Severity::Error
    }

    async fn run(&self, ctx: &CheckContext<'_>) -> Finding {
        let days = ctx.stale_after.as_secs() / 86_400;
        let checked = format!(
            "the last password login of every enabled admin and the last use of every API \
             key not revoked, against {days} days"
        );
        let list = match ctx.store.credential_use().await {
            Ok(list) => list,
            Err(error) => {
                return Finding::error(checked, format!("cannot read credentials: {error}"));
            }
        };
        let cutoff = ctx.now.add_micros(-ctx.stale_after.as_micros());
        let stale: Vec<Stale<'_>> = list
            .iter()
            .filter(|c| c.last_used_at.unwrap_or(c.created_at) < cutoff)
            .map(|c| Stale {
                kind: c.kind,
                name: &c.name,
                last_used_at: c.last_used_at,
                created_at: c.created_at,
            })
            .collect();
        if stale.is_empty() {
            return Finding::pass(
                checked,
                format!("{} credential(s), each used within {days} days", list.len()),
            );
        }
        let names: Vec<String> = stale
            .iter()
            .map(|s| {
                let what = if s.kind == "user" { "admin" } else { "API key" };
                match s.last_used_at {
                    Some(t) => format!("{what} '{}' (last used {t})", s.name),
                    None => format!("{what} '{}' (never used; created {})", s.name, s.created_at),
                }
            })
            .collect();
        Finding::fail(
            checked,
            format!("unused for more than {days} days: {}", names.join(", ")),
            "disable unused admins (PATCH /api/v1/users/{id} with {\"disabled\": true}) and \
             revoke unused keys (DELETE /api/v1/api-keys/{id}); keep only credentials in use",
        )
        .with_detail(&stale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::posture::checks::testing::Fixed;
    use palisade_core::Timestamp;
    use palisade_core::duration::Span;
    use palisade_core::posture::CheckStatus;
    use palisade_core::security::{NewApiKey, NewUser, Role, Scope};

    #[tokio::test]
    async fn admins_and_keys_unused_past_the_limit_fail() {
        let dir = tempfile::tempdir().unwrap();
        let store = palisade_store::open("sqlite://t.db", dir.path()).unwrap();
        store.migrate().await.unwrap();
        let facts = Fixed::default();
        let now = Timestamp::now();
        let ctx = |at: Timestamp| CheckContext {
            facts: &facts,
            store: &store,
            now: at,
            stale_after: Span::from_secs(90 * 86_400),
            tls_in_front: false,
        };
        let admin = store
            .create_user(NewUser {
                username: "root".into(),
                role: Role::Admin,
                password_hash: "x".into(),
            })
            .await
            .unwrap();
        store
            .create_api_key(NewApiKey {
                name: "sensor".into(),
                prefix: "pal_s".into(),
                key_hash: "h".into(),
                scopes: vec![Scope::Ingest],
                created_by: None,
            })
            .await
            .unwrap();
        // Just created: fine.
        assert_eq!(
            StaleCredentials.run(&ctx(now)).await.status,
            CheckStatus::Pass
        );
        // 100 days on, nothing used: both stale.
        let later = now.add_micros(100 * 86_400_000_000);
        let x = StaleCredentials.run(&ctx(later)).await;
        assert_eq!(x.status, CheckStatus::Fail);
        assert!(
            x.found.contains("admin 'root'") && x.found.contains("API key 'sensor'"),
            "{}",
            x.found
        );
        // The admin logs in at day 95: only the key is left.
        store
            .record_login(admin.id, now.add_micros(95 * 86_400_000_000))
            .await
            .unwrap();
        let x = StaleCredentials.run(&ctx(later)).await;
        assert!(
            !x.found.contains("root") && x.found.contains("sensor"),
            "{}",
            x.found
        );
    }
}
