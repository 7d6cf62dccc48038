//! When a chat thread connects again after a connection ended, by how it ended. Pure: the
//! caller passes `now` and a random number in `0.0..1.0`; the spacing itself is
//! `base::backoff`'s.

use std::time::Instant;

use crate::base::backoff::BackoffPolicy;

/// How a connection ended, as far as the reconnect timing cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The server asked us to reconnect: not a failure.
    ReconnectRequested,
    /// Twitch refused the token; `new_token` when a newer one has arrived since.
    Refused { new_token: bool },
    /// Anything else: refused connect, TLS error, drop, close, silence.
    Lost,
}

/// The failure count of one chat thread and the policy that spaces its attempts.
#[derive(Debug, Clone)]
pub struct Reconnects {
    policy: BackoffPolicy,
    n_failures: u32,
}

impl Reconnects {
    pub fn new(policy: BackoffPolicy) -> Reconnects {
        Reconnects {
            policy,
            n_failures: 0,
        }
    }

    /// Consecutive failures so far.
    pub fn n_failures(&self) -> u32 {
        self.n_failures
    }

    /// When the next attempt may start, for a connection attempted at `started` that ended
    /// at `now`.
    pub fn next_attempt(
        &mut self,
        ending: Ending,
        started: Instant,
        now: Instant,
        random_unit: f64,
    ) -> Instant {
        match ending {
            Ending::ReconnectRequested | Ending::Refused { new_token: true } => {
                self.n_failures = 0;
                started + self.policy.min_gap
            }
            Ending::Refused { new_token: false } | Ending::Lost => {
                self.n_failures = self
                    .policy
                    .failures_after(self.n_failures, now.saturating_duration_since(started));
                self.policy
                    .next_attempt_at(started, now, self.n_failures, random_unit)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn attempts_back_off_on_failures_and_start_over_when_asked() {
        let start = Instant::now();
        let ms = |n: u64| Duration::from_millis(n);
        let mut reconnects = Reconnects::new(BackoffPolicy::default());
        // (ending, connection lifetime ms, random, expected delay after the start ms,
        //  failures after)
        let cases: Vec<(Ending, u64, f64, u64, u32)> = vec![
            (Ending::Lost, 100, 1.0, 1_100, 1),
            (Ending::Lost, 100, 1.0, 2_100, 2),
            (Ending::Lost, 100, 1.0, 4_100, 3),
            (Ending::Refused { new_token: false }, 100, 1.0, 8_100, 4),
            (Ending::Refused { new_token: true }, 100, 1.0, 1_000, 0),
            (Ending::Lost, 100, 0.0, 1_000, 1),
            (Ending::ReconnectRequested, 5_000, 1.0, 1_000, 0),
            (Ending::Lost, 3, 1.0, 1_003, 1),
            (Ending::Lost, 3, 1.0, 2_003, 2),
            // A stable connection resets the count before this failure counts.
            (Ending::Lost, 60_000, 1.0, 61_000, 1),
        ];
        for (ending, lifetime, random, expected, failures) in cases {
            let at = reconnects.next_attempt(ending, start, start + ms(lifetime), random);
            assert_eq!(at - start, ms(expected), "{ending:?} after {lifetime} ms");
            assert_eq!(reconnects.n_failures(), failures, "{ending:?}");
        }
    }
}
