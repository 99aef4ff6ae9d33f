//! Listening on a public address without TLS in front: passwords, tokens and API keys
//! cross the network in clear text. Palisade speaks plain HTTP; a terminator (nginx, a
//! load balancer) must front it (`[analytics] tls_in_front = true` says one does).

use std::net::IpAddr;

use async_trait::async_trait;
use palisade_core::severity::Severity;
use serde::Serialize;

use crate::posture::{CheckContext, Finding, PostureCheck};

/// The check.
pub struct PublicListener;

/// Who can reach an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Reach {
    /// This host only.
    Loopback,
    /// A private network.
    Private,
    /// Every interface (`0.0.0.0`, `::`), so whatever networks the host is on.
    AllInterfaces,
    /// The internet.
    Public,
}

fn reach(ip: IpAddr) -> Reach {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    if ip.is_loopback() {
        return Reach::Loopback;
    }
    if ip.is_unspecified() {
        return Reach::AllInterfaces;
    }
    let private = match ip {
        IpAddr::V4(v4) => {
            v4.is_private()
                || v4.is_link_local()
                || v4.octets()[0] == 100 && (64..128).contains(&v4.octets()[1])
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
    };
    if private {
        Reach::Private
    } else {
        Reach::Public
    }
}

#[derive(Serialize)]
struct Listener {
    name: String,
    address: String,
    reach: Reach,
    http: bool,
}

#[async_trait]
impl PostureCheck for PublicListener {
    fn id(&self) -> &'static str {
        "public_listener"
    }

    fn title(&self) -> &'static str {
        "No public listener without TLS in front"
    }

    fn severity(&self) -> Severity {
        Severity::Critical
    }

    async fn run(&self, ctx: &CheckContext<'_>) -> Finding {
        let checked = "every address Palisade listens on (API, protecting proxies, syslog)";
        let listeners: Vec<Listener> = ctx
            .facts
            .listeners()
            .into_iter()
            .map(|l| Listener {
                reach: reach(l.address.ip()),
                address: l.address.to_string(),
                name: l.name,
                http: l.http,
            })
            .collect();
        let exposed: Vec<String> = listeners
            .iter()
            .filter(|l| l.http && matches!(l.reach, Reach::Public | Reach::AllInterfaces))
            .map(|l| format!("{} on {}", l.name, l.address))
            .collect();
        let private: Vec<String> = listeners
            .iter()
            .filter(|l| l.http && l.reach == Reach::Private)
            .map(|l| format!("{} on {}", l.name, l.address))
            .collect();
        let finding = if !exposed.is_empty() && !ctx.tls_in_front {
            Finding::fail(
                checked,
                format!(
                    "plain HTTP reachable beyond this host: {}",
                    exposed.join(", ")
                ),
                "listen on 127.0.0.1 behind a TLS-terminating proxy (nginx, Caddy, a load \
                 balancer) and set [analytics] tls_in_front = true, or bind to a private \
                 address only the proxy reaches",
            )
        } else if !private.is_empty() && !ctx.tls_in_front {
            Finding::warn(
                checked,
                format!("plain HTTP on a private network: {}", private.join(", ")),
                "put a TLS-terminating proxy in front (and set [analytics] tls_in_front = \
                 true) unless the network is trusted end to end",
            )
        } else if !exposed.is_empty() || !private.is_empty() {
            Finding::pass(
                checked,
                "listeners beyond this host are declared to be behind TLS (tls_in_front)",
            )
        } else {
            Finding::pass(checked, "every HTTP listener is on the loopback address")
        };
        finding.with_detail(&listeners)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::posture::checks::testing::{Fixed, run};
    use crate::posture::facts::ListenerFacts;
    use palisade_core::posture::CheckStatus;

    #[test]
    fn addresses_are_classified() {
        for (ip, want) in [
            ("127.0.0.1", Reach::Loopback),
            ("::1", Reach::Loopback),
            ("0.0.0.0", Reach::AllInterfaces),
            ("::", Reach::AllInterfaces),
            ("10.1.2.3", Reach::Private),
            ("192.168.0.4", Reach::Private),
            ("100.64.0.1", Reach::Private),
            ("fd00::1", Reach::Private),
            ("::ffff:10.0.0.1", Reach::Private),
            ("203.0.113.9", Reach::Public),
            ("2001:db8::1", Reach::Public),
        ] {
            assert_eq!(reach(ip.parse().unwrap()), want, "{ip}");
        }
    }

    #[tokio::test]
    async fn public_http_without_tls_fails_unless_declared() {
        let mut f = Fixed::default();
        assert_eq!(
            run(&PublicListener, &f, false).await.status,
            CheckStatus::Pass
        );
        f.listeners.push(ListenerFacts {
            name: "proxy web".into(),
            address: "0.0.0.0:80".parse().unwrap(),
            http: true,
        });
        let x = run(&PublicListener, &f, false).await;
        assert_eq!(x.status, CheckStatus::Fail);
        assert!(x.found.contains("proxy web on 0.0.0.0:80"), "{}", x.found);
        assert_eq!(
            run(&PublicListener, &f, true).await.status,
            CheckStatus::Pass
        );
        // Syslog is not HTTP: no TLS question.
        f.listeners.pop();
        f.listeners.push(ListenerFacts {
            name: "syslog edge".into(),
            address: "0.0.0.0:514".parse().unwrap(),
            http: false,
        });
        assert_eq!(
            run(&PublicListener, &f, false).await.status,
            CheckStatus::Pass
        );
        f.listeners.push(ListenerFacts {
            name: "api".into(),
            address: "10.0.0.5:8080".parse().unwrap(),
            http: true,
        });
        assert_eq!(
            run(&PublicListener, &f, false).await.status,
            CheckStatus::Warn
        );
    }
}
