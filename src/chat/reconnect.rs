//! When a chat thread connects again after a connection ended, by how it ended. Pure: the
//! caller passes `now` and a random number in `0.0..1.0`; the spacing itself is
//! `base::backoff`'s.
//!
//! Two counts drive the delay. Failed attempts (connections that never logged in) double it
//! each time. A connection that logged in and then dropped is a *flap* when it lived less
//! than the policy's `stable_after`: the first drop after a recovery is retried as quickly as
//! the very first failure, and only repeated flaps raise the delay again. A connection that
//! stayed up past `stable_after` starts both counts over.

use std::time::Instant;

use crate::base::backoff::BackoffPolicy;

/// How a connection ended, as far as the reconnect timing cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The server asked us to reconnect: not a failure.
    ReconnectRequested,
    /// Twitch refused the token; `new_token` when a newer one has arrived since.
    Refused { new_token: bool },
    /// Anything else: refused connect, TLS error, drop, close, silence. `logged_in` when
    /// the connection got as far as Twitch's welcome (GLOBALUSERSTATE).
    Lost { logged_in: bool },
    /// The machine slept (suspend, VM pause): the link was closed to check it at once.
    Slept,
}

/// The failure counts of one chat thread and the policy that spaces its attempts.
#[derive(Debug, Clone)]
pub struct Reconnects {
    policy: BackoffPolicy,
    /// Attempts in a row that did not log in.
    n_failures: u32,
    /// Logged-in connections in a row that dropped before they were stable.
    n_flaps: u32,
}

impl Reconnects {
    pub fn new(policy: BackoffPolicy) -> Reconnects {
        Reconnects {
            policy,
            n_failures: 0,
            n_flaps: 0,
        }
    }

    /// The exponent the delay grows with: failed attempts plus repeated flaps.
    pub fn n_failures(&self) -> u32 {
        self.n_failures.saturating_add(self.n_flaps)
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
        let lifetime = now.saturating_duration_since(started);
        let stable = lifetime >= self.policy.stable_after;
        match ending {
            Ending::ReconnectRequested | Ending::Slept | Ending::Refused { new_token: true } => {
                self.n_failures = 0;
                if stable {
                    self.n_flaps = 0;
                }
                return started + self.policy.min_gap;
            }
            Ending::Lost { logged_in: true } => {
                self.n_failures = 0;
                self.n_flaps = if stable {
                    0
                } else {
                    self.n_flaps.saturating_add(1)
                };
                // The first drop after a recovery is retried like a first failure.
                let n = self.n_flaps.max(1);
                return self.policy.next_attempt_at(started, now, n, random_unit);
            }
            Ending::Refused { new_token: false } | Ending::Lost { logged_in: false } => {
                if stable {
                    self.n_flaps = 0;
                    self.n_failures = 0;
                }
                self.n_failures = self.n_failures.saturating_add(1);
            }
        }
        self.policy
            .next_attempt_at(started, now, self.n_failures(), random_unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const LOST: Ending = Ending::Lost { logged_in: false };
    const DROPPED: Ending = Ending::Lost { logged_in: true };

    /// Runs `(ending, lifetime ms, random, expected delay after the start ms)` in order.
    fn run(cases: &[(Ending, u64, f64, u64)]) {
        let start = Instant::now();
        let ms = |n: u64| Duration::from_millis(n);
        let mut reconnects = Reconnects::new(BackoffPolicy::default());
        for (index, (ending, lifetime, random, expected)) in cases.iter().enumerate() {
            let at = reconnects.next_attempt(*ending, start, start + ms(*lifetime), *random);
            assert_eq!(
                at - start,
                ms(*expected),
                "case {index}: {ending:?} after {lifetime} ms"
            );
        }
    }

    #[test]
    fn failed_attempts_back_off_and_a_request_starts_over() {
        run(&[
            (LOST, 100, 1.0, 1_100),
            (LOST, 100, 1.0, 2_100),
            (LOST, 100, 1.0, 4_100),
            (Ending::Refused { new_token: false }, 100, 1.0, 8_100),
            (Ending::Refused { new_token: true }, 100, 1.0, 1_000),
            (LOST, 100, 0.0, 1_000),
            (Ending::ReconnectRequested, 5_000, 1.0, 1_000),
            (LOST, 3, 1.0, 1_003),
            (LOST, 3, 1.0, 2_003),
            (Ending::Slept, 3, 1.0, 1_000),
            (LOST, 3, 1.0, 1_003),
        ]);
    }

    #[test]
    fn the_first_drop_after_a_recovery_is_retried_at_once_repeated_flaps_back_off() {
        run(&[
            // A 20 s outage: five failed attempts.
            (LOST, 10, 1.0, 1_010),
            (LOST, 10, 1.0, 2_010),
            (LOST, 10, 1.0, 4_010),
            (LOST, 10, 1.0, 8_010),
            (LOST, 10, 1.0, 16_010),
            // Back, logged in, dropped 10 s later: retried within a second.
            (DROPPED, 10_000, 1.0, 11_000),
            // It keeps flapping: each short-lived login doubles the delay again.
            (DROPPED, 10_000, 1.0, 12_000),
            (DROPPED, 10_000, 1.0, 14_000),
            // A failed attempt in between counts on top of the flaps.
            (LOST, 10, 1.0, 8_010),
            (DROPPED, 10_000, 1.0, 18_000),
            // A connection that stayed up a minute starts everything over.
            (DROPPED, 60_000, 1.0, 61_000),
            (LOST, 10, 1.0, 1_010),
            (LOST, 10, 1.0, 2_010),
            (LOST, 60_000, 1.0, 61_000),
            (LOST, 10, 1.0, 2_010),
        ]);
    }
}
