//! Short-lived, single-use tickets for WebSocket connections: browsers cannot set an
//! `Authorization` header on a WebSocket, so an authenticated call trades its token for
//! a ticket that the upgrade request carries in its query string.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Principal;

/// How long a ticket is valid.
pub const TICKET_TTL: Duration = Duration::from_secs(30);
/// Most tickets outstanding at once (older ones are dropped first).
pub const MAX_TICKETS: usize = 10_000;

/// Outstanding tickets, keyed by the SHA-256 of the ticket.
#[derive(Default)]
pub struct Tickets {
    inner: Mutex<HashMap<String, (Principal, Instant)>>,
}

impl Tickets {
    /// Issues a ticket for a principal (fails only if the OS random source does).
    pub fn issue(&self, principal: Principal) -> Result<String, palisade_auth::AuthError> {
        let ticket = palisade_auth::tokens::random_token()?;
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        map.retain(|_, (_, at)| now.duration_since(*at) < TICKET_TTL);
        if map.len() >= MAX_TICKETS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(palisade_auth::tokens::sha256_hex(&ticket), (principal, now));
        Ok(ticket)
    }

    /// Redeems a ticket once; `None` when unknown, used or expired.
    pub fn redeem(&self, ticket: &str) -> Option<Principal> {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (principal, at) = map.remove(&palisade_auth::tokens::sha256_hex(ticket))?;
        (at.elapsed() < TICKET_TTL).then_some(principal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_are_single_use() {
        let t = Tickets::default();
        let p = Principal::User {
            id: 1,
            username: "a".into(),
            role: palisade_core::security::Role::Viewer,
        };
        let ticket = t.issue(p.clone()).unwrap();
        assert_eq!(t.redeem(&ticket), Some(p));
        assert_eq!(t.redeem(&ticket), None);
        assert_eq!(t.redeem("made-up"), None);
    }
}
