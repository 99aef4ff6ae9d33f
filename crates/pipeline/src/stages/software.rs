//! The software stage: stored syslog and authentication events that name software
//! (package installs by dpkg/apt/yum/dnf, sshd's own version string) are handed to the
//! vulnerability engine's observer as software on the host that logged them, which
//! records and matches it (`palisade_vuln::observe`).
//!
//! A cheap scan (a few substring checks per line, no allocation for lines that name
//! nothing) on its own supervised task behind the writer's bounded observer channel;
//! handing over never waits (the observer drops what it cannot queue), so this stage
//! never slows ingest by more than its scan.

use std::sync::Arc;

use palisade_core::metrics::{Counter, registry};
use palisade_core::supervisor::{SharedReceiver, Supervisor};
use palisade_core::{Event, EventKind};
use palisade_sources::StoredBatches;
use palisade_vuln::SoftwareObserver;
use palisade_vuln::observe::banner::syslog_line;
use tokio::sync::mpsc;

/// Groups of batches that may wait.
const QUEUE: usize = 4;

/// Words one of which a line must contain to be parsed at all.
const HINTS: &[&str] = &[
    "version",
    "status installed",
    "Setting up ",
    "Installed: ",
    "Updated: ",
    "Upgraded: ",
    "Reinstalled: ",
];

fn lines_with_software() -> Arc<Counter> {
    registry().counter(
        "palisade_vuln_syslog_software_lines_total",
        "Stored syslog lines that named software (package installs, sshd versions).",
        &[],
        &[],
    )
}

/// The software a stored event names, with the host it is on.
pub fn software_of(event: &Event) -> Option<(String, Vec<palisade_core::vuln::Software>)> {
    if !matches!(event.kind, EventKind::Syslog | EventKind::Auth) {
        return None;
    }
    let message = event.message.as_deref()?;
    if !HINTS.iter().any(|h| message.contains(h)) {
        return None;
    }
    let host = event.host.as_deref().filter(|h| !h.is_empty())?;
    let program = event
        .extra
        .iter()
        .find(|(k, _)| k == "program")
        .map(|(_, v)| v.as_str());
    let items = syslog_line(program, message);
    (!items.is_empty()).then(|| (host.to_owned(), items))
}

/// Starts the stage; it ends when the writer (the only sender) goes away.
pub fn spawn(
    observer: SoftwareObserver,
    supervisor: &Supervisor,
) -> (mpsc::Sender<StoredBatches>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel::<StoredBatches>(QUEUE);
    let rx = SharedReceiver::new(rx);
    let task = supervisor.spawn("software", move || {
        let (observer, rx) = (observer.clone(), rx.clone());
        async move {
            let mut rx = rx.lock().await;
            let found = lines_with_software();
            while let Some(stored) = rx.recv().await {
                for (_, event) in stored.events() {
                    if let Some((host, items)) = software_of(event) {
                        found.inc();
                        observer.items(&host, items);
                    }
                }
            }
        }
    });
    (tx, task)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lines_naming_software_count() {
        let sshd = Event {
            kind: EventKind::Auth,
            host: Some("bastion".into()),
            message: Some(
                "debug1: Local version string SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u2".into(),
            ),
            extra: vec![("program".into(), "sshd".into())],
            ..Event::default()
        };
        let (host, items) = software_of(&sshd).unwrap();
        assert_eq!(host, "bastion");
        assert_eq!(items[0].version, "9.2p1");
        let login = Event {
            message: Some("Accepted password for root from 10.0.0.1 port 22 ssh2".into()),
            ..sshd.clone()
        };
        assert!(software_of(&login).is_none());
        let nameless = Event {
            host: None,
            ..sshd.clone()
        };
        assert!(software_of(&nameless).is_none());
        let http = Event {
            kind: EventKind::Http,
            ..sshd
        };
        assert!(software_of(&http).is_none());
    }
}
