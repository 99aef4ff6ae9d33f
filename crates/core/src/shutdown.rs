//! Graceful shutdown as a type, after mini-redis's `shutdown.rs`.
//!
//! One [`ShutdownTrigger`] is held by whoever decides the process stops (the binary, a
//! test); every task gets a [`Shutdown`] and either checks [`Shutdown::is_shutdown`]
//! between units of work or awaits [`Shutdown::recv`] in a `select!`. Built on a
//! `watch` channel so that a task subscribed after the trigger still sees it, and a
//! dropped trigger counts as a shutdown (the owner is gone, nobody will say "stop" any
//! more).

use tokio::sync::watch;

/// The owner's side: says when everything stops.
#[derive(Debug)]
pub struct ShutdownTrigger {
    tx: watch::Sender<bool>,
}

impl ShutdownTrigger {
    /// A trigger nobody has pulled yet.
    pub fn new() -> ShutdownTrigger {
        ShutdownTrigger {
            tx: watch::channel(false).0,
        }
    }

    /// A listener for a task.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown {
            rx: Some(self.tx.subscribe()),
        }
    }

    /// Tells every listener to stop (idempotent).
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Whether [`ShutdownTrigger::trigger`] was called.
    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }
}

impl Default for ShutdownTrigger {
    fn default() -> Self {
        ShutdownTrigger::new()
    }
}

/// A task's side: whether (and when) to stop. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Shutdown {
    /// `None`: a signal that never fires (one-shot commands, tests).
    rx: Option<watch::Receiver<bool>>,
}

impl Shutdown {
    /// A listener whose shutdown never comes: for work that ends by itself.
    pub fn never() -> Shutdown {
        Shutdown { rx: None }
    }

    /// Whether shutdown has been signalled (or the trigger dropped).
    pub fn is_shutdown(&self) -> bool {
        match &self.rx {
            None => false,
            Some(rx) => *rx.borrow() || rx.has_changed().is_err(),
        }
    }

    /// Completes once shutdown is signalled (at once if it already was). Cancel-safe:
    /// use it freely as a `select!` branch in a loop.
    pub async fn recv(&mut self) {
        let Some(rx) = &mut self.rx else {
            return std::future::pending().await;
        };
        loop {
            if *rx.borrow_and_update() {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn late_subscribers_and_dropped_triggers_see_the_shutdown() {
        let trigger = ShutdownTrigger::new();
        let mut early = trigger.subscribe();
        assert!(!early.is_shutdown());
        let waiting = tokio::spawn(async move {
            early.recv().await;
            early.is_shutdown()
        });
        trigger.trigger();
        assert!(waiting.await.unwrap());
        let mut late = trigger.subscribe();
        tokio::time::timeout(Duration::from_secs(1), late.recv())
            .await
            .unwrap();

        let trigger = ShutdownTrigger::new();
        let mut orphan = trigger.subscribe();
        drop(trigger);
        assert!(orphan.is_shutdown());
        tokio::time::timeout(Duration::from_secs(1), orphan.recv())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn never_never_fires() {
        let mut never = Shutdown::never();
        assert!(!never.is_shutdown());
        assert!(
            tokio::time::timeout(Duration::from_millis(20), never.recv())
                .await
                .is_err()
        );
    }
}
