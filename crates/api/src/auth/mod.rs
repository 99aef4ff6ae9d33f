//! Authentication and authorisation of every request: who is calling (a user's JWT or
//! an API key), whether the route's declared access ([`policy`]) lets them, and whether
//! they are within their rate limit.

pub mod attempts;
pub mod middleware;
pub mod policy;
pub mod tickets;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use palisade_auth::hash_pool::HashPool;
use palisade_auth::jwt::JwtKeys;
use palisade_auth::lockout::LockoutPolicy;
use palisade_auth::ratelimit::RateLimiter;
use palisade_auth::secrets::SecretBox;
use palisade_core::config::{ConfigProblem, Validate};
use palisade_core::duration::Span;
use palisade_core::security::{Role, Scope};

use policy::{Access, RateClass};

/// `[rate_limit]`: requests per window for each rate class, per client.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimits {
    /// Login and refresh attempts per minute per client.
    pub login_per_minute: u32,
    /// Ingest requests per second per client.
    pub ingest_per_second: u32,
    /// Reads per second per client.
    pub read_per_second: u32,
    /// Changes per second per client.
    pub write_per_second: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            login_per_minute: 10,
            ingest_per_second: 200,
            read_per_second: 50,
            write_per_second: 20,
        }
    }
}

impl Validate for RateLimits {
    fn finish(&mut self) -> Vec<ConfigProblem> {
        [
            ("login_per_minute", self.login_per_minute),
            ("ingest_per_second", self.ingest_per_second),
            ("read_per_second", self.read_per_second),
            ("write_per_second", self.write_per_second),
        ]
        .into_iter()
        .filter(|(_, v)| *v == 0)
        .map(|(key, _)| ConfigProblem::new(key, "must be at least 1"))
        .collect()
    }
}

/// `[auth]`: token lifetimes, key files and policies.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Access token lifetime.
    #[serde(alias = "access_ttl_secs")]
    pub access_ttl: Span,
    /// Refresh token lifetime.
    #[serde(alias = "refresh_ttl_secs")]
    pub refresh_ttl: Span,
    /// Whether `/metrics` is open (for a Prometheus without credentials).
    pub metrics_public: bool,
    /// The JWT signing key file (relative paths are inside the data directory; created
    /// 0600 at first start).
    pub jwt_key_file: PathBuf,
    /// The secrets keyring file (same rules).
    pub secrets_key_file: PathBuf,
    /// Password checks computed at once (each holds about 19 MiB while it runs); 0
    /// means two per core, at most 16.
    pub password_hashers: usize,
    /// Password checks that may wait for a free hasher; beyond that a login is answered
    /// 503 with `Retry-After` at once, so a login flood cannot grow memory.
    pub password_queue: usize,
    /// Rate limits (`[rate_limit]`, a section of its own).
    #[serde(skip)]
    pub limits: RateLimits,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            access_ttl: Span::from_secs(15 * 60),
            refresh_ttl: Span::from_secs(14 * 24 * 3600),
            metrics_public: false,
            jwt_key_file: PathBuf::from("jwt.key"),
            secrets_key_file: PathBuf::from("secrets.key"),
            password_hashers: 0,
            password_queue: 32,
            limits: RateLimits::default(),
        }
    }
}

impl AuthConfig {
    /// Access token lifetime in seconds.
    pub fn access_ttl_secs(&self) -> i64 {
        self.access_ttl.as_secs() as i64
    }

    /// Refresh token lifetime in seconds.
    pub fn refresh_ttl_secs(&self) -> i64 {
        self.refresh_ttl.as_secs() as i64
    }

    /// Password hashers to run: `password_hashers`, or two per core when it is 0.
    pub fn hashers(&self) -> usize {
        match self.password_hashers {
            0 => HashPool::default_hashers(),
            n => n,
        }
    }
}

impl Validate for AuthConfig {
    fn finish(&mut self) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        if !self
            .access_ttl
            .within(Span::from_secs(60), Span::from_secs(86_400))
        {
            problems.push(ConfigProblem::new(
                "access_ttl",
                "must be between 1m and 1d",
            ));
        }
        if !self
            .refresh_ttl
            .within(Span::from_secs(300), Span::from_secs(90 * 86_400))
        {
            problems.push(ConfigProblem::new(
                "refresh_ttl",
                "must be between 5m and 90d",
            ));
        }
        for (key, path) in [
            ("jwt_key_file", &self.jwt_key_file),
            ("secrets_key_file", &self.secrets_key_file),
        ] {
            if path.as_os_str().is_empty() {
                problems.push(ConfigProblem::new(key, "must not be empty"));
            }
        }
        palisade_core::config::check_range(
            &mut problems,
            "password_hashers",
            self.password_hashers,
            0..=256,
        );
        palisade_core::config::check_range(
            &mut problems,
            "password_queue",
            self.password_queue,
            0..=100_000,
        );
        problems
    }
}

/// Everything authentication needs at run time.
pub struct AuthContext {
    /// Signs and verifies access tokens.
    pub jwt: JwtKeys,
    /// Encrypts secrets; replaced on key rotation.
    pub secrets: RwLock<Arc<SecretBox>>,
    /// Lifetimes and limits.
    pub config: AuthConfig,
    /// Lock schedule for one username from one address.
    pub lockout: LockoutPolicy,
    /// Lock schedule for one username from all addresses together (not applied to
    /// addresses the user logged in from before).
    pub account_lockout: LockoutPolicy,
    /// Bounded concurrency and memory for password hashing.
    pub hashing: HashPool,
    /// Password checks in progress, so that one username from one address is checked
    /// one attempt at a time (see [`attempts`]).
    pub attempts: attempts::InFlight,
    /// Short-lived WebSocket tickets.
    pub tickets: tickets::Tickets,
    limiters: [RateLimiter; 4],
    /// Set once an enabled admin has been seen in the store (it never goes back).
    admin_seen: AtomicBool,
}

impl AuthContext {
    /// Builds the context; rate limiters hold at most 100k clients each.
    pub fn new(jwt: JwtKeys, secrets: SecretBox, config: AuthConfig) -> Self {
        let l = &config.limits;
        let per_sec =
            |n: u32| RateLimiter::new(n.max(1).saturating_mul(2), f64::from(n.max(1)), 100_000);
        let limiters = [
            RateLimiter::new(
                l.login_per_minute.max(1),
                f64::from(l.login_per_minute.max(1)) / 60.0,
                100_000,
            ),
            per_sec(l.ingest_per_second),
            per_sec(l.read_per_second),
            per_sec(l.write_per_second),
        ];
        AuthContext {
            jwt,
            secrets: RwLock::new(Arc::new(secrets)),
            hashing: HashPool::new(config.hashers(), config.password_queue),
            config,
            lockout: LockoutPolicy::per_address(),
            account_lockout: LockoutPolicy::account_wide(),
            attempts: attempts::InFlight::default(),
            tickets: tickets::Tickets::default(),
            limiters,
            admin_seen: AtomicBool::new(false),
        }
    }

    /// Whether the first admin exists, asking the store until it does. Before that,
    /// logins are answered 503 without being counted: a script that polls the login
    /// while the first admin is being created must not lock that admin out.
    pub async fn first_admin_exists(
        &self,
        store: &palisade_store::SharedStore,
    ) -> Result<bool, palisade_store::StoreError> {
        if self.admin_seen.load(Ordering::Acquire) {
            return Ok(true);
        }
        let exists = store.count_active_admins().await? > 0;
        if exists {
            self.admin_seen.store(true, Ordering::Release);
        }
        Ok(exists)
    }

    fn limiter(&self, class: RateClass) -> Option<&RateLimiter> {
        match class {
            RateClass::Exempt => None,
            RateClass::Login => Some(&self.limiters[0]),
            RateClass::Ingest => Some(&self.limiters[1]),
            RateClass::Read => Some(&self.limiters[2]),
            RateClass::Write => Some(&self.limiters[3]),
        }
    }

    /// Checks the rate limit of a class for a client key: `Err(retry_after_secs)`.
    pub fn rate_check(&self, class: RateClass, client: &str) -> Result<(), u64> {
        self.limiter(class).map_or(Ok(()), |l| l.check(client))
    }

    /// Whether [`AuthContext::rate_check`] would pass, without taking a token.
    pub fn rate_peek(&self, class: RateClass, client: &str) -> Result<(), u64> {
        self.limiter(class).map_or(Ok(()), |l| l.peek(client))
    }

    /// The secret box in use.
    pub fn secret_box(&self) -> Arc<SecretBox> {
        self.secrets
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Who is calling, once authenticated. Handlers take it from the request extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A logged-in user (from a verified access token, re-checked against the store).
    User {
        /// Store id.
        id: i64,
        /// Login name.
        username: String,
        /// Role at the time of the request.
        role: Role,
    },
    /// An API key.
    ApiKey {
        /// Store id.
        id: i64,
        /// Key name.
        name: String,
        /// Scopes.
        scopes: Vec<Scope>,
    },
}

impl Principal {
    /// The name written to the audit log.
    pub fn actor(&self) -> String {
        match self {
            Principal::User { username, .. } => username.clone(),
            Principal::ApiKey { name, .. } => format!("apikey:{name}"),
        }
    }

    /// Whether this caller may use a route with the given access.
    pub fn allows(&self, access: Access) -> bool {
        match (self, access) {
            (_, Access::Open) => true,
            (
                Principal::User { role, .. },
                Access::User(min) | Access::Key { min_role: min, .. },
            ) => *role >= min,
            (Principal::User { .. }, Access::Metrics) => true,
            (Principal::ApiKey { scopes, .. }, Access::User(Role::Viewer) | Access::Metrics) => {
                scopes.contains(&Scope::Read)
            }
            (Principal::ApiKey { .. }, Access::User(_)) => false,
            (Principal::ApiKey { scopes, .. }, Access::Key { scope, .. }) => {
                scopes.contains(&scope)
            }
            (Principal::ApiKey { scopes, .. }, Access::Bouncer) => scopes.contains(&Scope::Bouncer),
            (Principal::User { .. }, Access::Bouncer) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_and_scope_matrix() {
        let viewer = Principal::User {
            id: 1,
            username: "v".into(),
            role: Role::Viewer,
        };
        let analyst = Principal::User {
            id: 2,
            username: "a".into(),
            role: Role::Analyst,
        };
        let admin = Principal::User {
            id: 3,
            username: "x".into(),
            role: Role::Admin,
        };
        let ingest = Principal::ApiKey {
            id: 1,
            name: "s".into(),
            scopes: vec![Scope::Ingest],
        };
        let read = Principal::ApiKey {
            id: 2,
            name: "r".into(),
            scopes: vec![Scope::Read],
        };
        let push = Access::Key {
            scope: Scope::Ingest,
            min_role: Role::Analyst,
        };
        assert!(viewer.allows(Access::User(Role::Viewer)));
        assert!(!viewer.allows(Access::User(Role::Analyst)));
        assert!(!viewer.allows(push));
        assert!(analyst.allows(push));
        assert!(!analyst.allows(Access::User(Role::Admin)));
        assert!(admin.allows(Access::User(Role::Admin)));
        assert!(ingest.allows(push));
        assert!(!ingest.allows(Access::User(Role::Viewer)));
        assert!(read.allows(Access::User(Role::Viewer)));
        assert!(!read.allows(push));
        assert!(!read.allows(Access::User(Role::Analyst)));
        assert_eq!(ingest.actor(), "apikey:s");
        let bouncer = Principal::ApiKey {
            id: 3,
            name: "fw".into(),
            scopes: vec![Scope::Bouncer],
        };
        assert!(bouncer.allows(Access::Bouncer));
        assert!(!bouncer.allows(Access::User(Role::Viewer)));
        assert!(!read.allows(Access::Bouncer));
        assert!(!admin.allows(Access::Bouncer));
    }
}
