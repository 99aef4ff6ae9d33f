//! A circuit breaker per channel: after `threshold` consecutive failures the channel
//! rests for `cooldown` (its notifications wait, untried, and keep their place in the
//! queue); then one trial goes through, and its result closes or reopens the circuit.
//! A receiver that is down is not hammered, and its notifications do not hold up
//! other channels' (every attempt also has its own time limit).

use std::collections::HashMap;

/// The breakers of every channel, owned by the delivery task.
#[derive(Debug)]
pub struct Breakers {
    threshold: u32,
    cooldown_us: i64,
    channels: HashMap<i64, Circuit>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Circuit {
    failures: u32,
    open_until: Option<i64>,
}

impl Breakers {
    /// Breakers opening after `threshold` failures for `cooldown_us`.
    pub fn new(threshold: u32, cooldown_us: i64) -> Breakers {
        Breakers {
            threshold: threshold.max(1),
            cooldown_us,
            channels: HashMap::new(),
        }
    }

    /// `None` when the channel may be tried now, else until when it rests.
    pub fn resting_until(&self, channel: i64, now_us: i64) -> Option<i64> {
        self.channels
            .get(&channel)
            .and_then(|c| c.open_until)
            .filter(|until| *until > now_us)
    }

    /// The channels resting at `now_us` (their notifications are left in the queue).
    pub fn resting(&self, now_us: i64) -> Vec<i64> {
        let mut ids: Vec<i64> = self
            .channels
            .iter()
            .filter(|(_, c)| c.open_until.is_some_and(|u| u > now_us))
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Records an attempt's result; true when this failure opened the circuit.
    pub fn record(&mut self, channel: i64, ok: bool, now_us: i64) -> bool {
        let c = self.channels.entry(channel).or_default();
        if ok {
            *c = Circuit::default();
            return false;
        }
        c.failures = c.failures.saturating_add(1);
        // A failed trial after a rest reopens at once.
        let trial = c.open_until.is_some();
        if c.failures >= self.threshold || trial {
            c.open_until = Some(now_us.saturating_add(self.cooldown_us));
            return true;
        }
        false
    }

    /// Whether a channel's circuit is open now (for health and logs).
    pub fn is_open(&self, channel: i64, now_us: i64) -> bool {
        self.resting_until(channel, now_us).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_rests_and_closes_on_success() {
        let mut b = Breakers::new(3, 100);
        assert!(!b.record(1, false, 0));
        assert!(!b.record(1, false, 1));
        assert!(b.record(1, false, 2));
        assert_eq!(b.resting_until(1, 50), Some(102));
        assert_eq!(b.resting(50), [1]);
        assert!(b.resting(102).is_empty());
        assert!(b.is_open(1, 50));
        // Another channel is unaffected.
        assert_eq!(b.resting_until(2, 50), None);
        // After the rest one trial; a failure reopens at once.
        assert_eq!(b.resting_until(1, 102), None);
        assert!(b.record(1, false, 110));
        assert_eq!(b.resting_until(1, 150), Some(210));
        // A success closes it.
        assert!(!b.record(1, true, 220));
        assert!(!b.is_open(1, 221));
        assert!(!b.record(1, false, 230));
    }
}
