//! When a chat thread connects again after a connection ended, by how it ended. Pure: the
//! caller passes `now` and a random number in `0.0..1.0`; the spacing itself is
//! `base::backoff`'s.
//!
//! Two counts drive the delay. Failed attempts (connections that never logged in) double it
//! each time. A connection that logged in and then dropped is a *flap* when it lived less
//! than the policy's `stable_after`: the first drop after a recovery is retried as quickly as
//! the very first failure, and only repeated flaps raise the delay again. A connection that
//! stayed up past `stable_after` starts both counts over.
//!
//! A refused login starts a *refusal episode* that lasts until a login succeeds. Only its
//! first refusal is reported to the token owner (which then gets a new token, and the next
//! attempt comes as soon as that arrives); a refusal after that — typically of the fresh
//! token the owner just handed over — backs off in the upper half of a ceiling that doubles
//! up to the policy's `refusal_cap` (10 minutes), instead of asking for token after token.

use std::time::Instant;

use crate::base::backoff::{exponential_ceiling, upper_half_jitter, BackoffPolicy};
use crate::base::metrics::ReconnectReason;

/// How one chat connection ended, for either transport: what the machines end a connection
/// with (`End` steps), what the connection threads report, and what the reconnect timing
/// reads. The one type for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionEnd {
    /// The server asked us to reconnect (IRC `RECONNECT`): not a failure.
    ReconnectRequested,
    /// Twitch refused the token (a refused IRC login, a 401 from Helix, a revoked
    /// authorization); the text is what it said.
    TokenRefused(String),
    /// Twitch refused because the token lacks a scope the transport needs (EventSub's 403
    /// on subscribing: `user:read:chat`); the text is what it said.
    ScopeMissing(String),
    /// Twitch refused a subscription for one of its limits (a 429 naming it: WebSocket
    /// sessions per app and user, subscriptions per type and condition, total cost), not for
    /// the rate: waiting for the bucket does not help. The text names the limit.
    LimitReached(String),
    /// Anything else: refused connect, TLS error, drop, close, silence, an unanswered PING,
    /// a failed call; the text says which, for the log.
    Lost(String),
    /// The chat watch closed it because the machine slept (suspend, VM pause), to check the
    /// link at once.
    Slept,
    /// Twitch rate-limits subscriptions beyond what a new session may wait: connect again,
    /// not before `until`.
    RateLimited { reason: String, until: Instant },
}

impl ConnectionEnd {
    /// The reason `/metrics` counts this reconnect under.
    pub fn metric_reason(&self) -> ReconnectReason {
        match self {
            ConnectionEnd::ReconnectRequested => ReconnectReason::Requested,
            ConnectionEnd::TokenRefused(_)
            | ConnectionEnd::ScopeMissing(_)
            | ConnectionEnd::LimitReached(_) => ReconnectReason::LoginRefused,
            ConnectionEnd::Lost(_) | ConnectionEnd::Slept | ConnectionEnd::RateLimited { .. } => {
                ReconnectReason::Lost
            }
        }
    }
}

/// One connection attempt as the reconnect timing sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// When it started (the dial).
    pub started: Instant,
    /// It got as far as Twitch's welcome (IRC's GLOBALUSERSTATE, EventSub's subscriptions).
    pub logged_in: bool,
    /// After a refused token: the refusal was reported and the token owner has handed over
    /// a newer token since, worth trying at once.
    pub token_replaced: bool,
}

/// How an ending counts for the timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Not a failure: at the minimum gap.
    Quick,
    /// A logged-in connection dropped.
    Dropped,
    /// A refusal the token owner cannot help with: the refusal back-off.
    Refused,
    /// A failed attempt.
    Failed,
}

fn kind(end: &ConnectionEnd, attempt: Attempt) -> Kind {
    match end {
        ConnectionEnd::ReconnectRequested | ConnectionEnd::Slept => Kind::Quick,
        ConnectionEnd::TokenRefused(_) if attempt.token_replaced => Kind::Quick,
        ConnectionEnd::TokenRefused(_)
        | ConnectionEnd::ScopeMissing(_)
        | ConnectionEnd::LimitReached(_) => Kind::Refused,
        ConnectionEnd::Lost(_) if attempt.logged_in => Kind::Dropped,
        ConnectionEnd::Lost(_) | ConnectionEnd::RateLimited { .. } => Kind::Failed,
    }
}

/// What to do about a refused login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The first refusal of an episode: report the refused token to its owner and wait for
    /// a newer one.
    Report,
    /// A later refusal of the same episode: report nothing, back off. `first` on the first
    /// such refusal, the one worth a log line saying what Twitch answered.
    BackOff { first: bool },
}

/// The failure counts of one chat thread and the policy that spaces its attempts.
#[derive(Debug, Clone)]
pub struct Reconnects {
    policy: BackoffPolicy,
    /// Attempts in a row that did not log in.
    n_failures: u32,
    /// Logged-in connections in a row that dropped before they were stable.
    n_flaps: u32,
    /// Back-offs of the current refusal episode; `None` while logins succeed.
    refusal_backoffs: Option<u32>,
}

impl Reconnects {
    pub fn new(policy: BackoffPolicy) -> Reconnects {
        Reconnects {
            policy,
            n_failures: 0,
            n_flaps: 0,
            refusal_backoffs: None,
        }
    }

    /// A login succeeded: a refusal episode is over.
    pub fn logged_in(&mut self) {
        self.refusal_backoffs = None;
    }

    /// Twitch refused a login: whether to report it or back off.
    pub fn refused(&mut self) -> Refusal {
        match self.refusal_backoffs {
            None => {
                self.refusal_backoffs = Some(0);
                Refusal::Report
            }
            Some(n_backoffs) => Refusal::BackOff {
                first: n_backoffs == 0,
            },
        }
    }

    /// The exponent the delay grows with: failed attempts plus repeated flaps.
    pub fn n_failures(&self) -> u32 {
        self.n_failures.saturating_add(self.n_flaps)
    }

    /// When the next attempt may start, for `attempt` that ended with `end` at `now`. A
    /// rate limit's end is a floor.
    pub fn next_attempt(
        &mut self,
        end: &ConnectionEnd,
        attempt: Attempt,
        now: Instant,
        random_unit: f64,
    ) -> Instant {
        let at = self.spaced(kind(end, attempt), attempt.started, now, random_unit);
        match end {
            ConnectionEnd::RateLimited { until, .. } => at.max(*until),
            _ => at,
        }
    }

    fn spaced(&mut self, kind: Kind, started: Instant, now: Instant, random_unit: f64) -> Instant {
        let lifetime = now.saturating_duration_since(started);
        let stable = lifetime >= self.policy.stable_after;
        match kind {
            Kind::Quick => {
                self.n_failures = 0;
                if stable {
                    self.n_flaps = 0;
                }
                return started + self.policy.min_gap;
            }
            Kind::Dropped => {
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
            Kind::Refused => {
                let n_backoffs = self.refusal_backoffs.unwrap_or(0).saturating_add(1);
                self.refusal_backoffs = Some(n_backoffs);
                let ceiling =
                    exponential_ceiling(self.policy.base, self.policy.refusal_cap, n_backoffs);
                let at = now + upper_half_jitter(ceiling, random_unit);
                return at.max(started + self.policy.min_gap);
            }
            Kind::Failed => {
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

    /// The endings of the tables: how it ended, whether it had logged in, whether a newer
    /// token came after a refusal.
    #[derive(Debug, Clone, Copy)]
    enum Ending {
        Lost,
        Dropped,
        Requested,
        Slept,
        Refused { retry_now: bool },
    }
    use Ending::{Dropped as DROPPED, Lost as LOST};

    fn next(
        reconnects: &mut Reconnects,
        ending: Ending,
        started: Instant,
        now: Instant,
        random: f64,
    ) -> Instant {
        let (end, logged_in, token_replaced) = match ending {
            Ending::Lost => (ConnectionEnd::Lost("drop".into()), false, false),
            Ending::Dropped => (ConnectionEnd::Lost("drop".into()), true, false),
            Ending::Requested => (ConnectionEnd::ReconnectRequested, true, false),
            Ending::Slept => (ConnectionEnd::Slept, true, false),
            Ending::Refused { retry_now } => {
                (ConnectionEnd::TokenRefused("no".into()), false, retry_now)
            }
        };
        let attempt = Attempt {
            started,
            logged_in,
            token_replaced,
        };
        reconnects.next_attempt(&end, attempt, now, random)
    }

    /// Runs `(ending, lifetime ms, random, expected delay after the start ms)` in order.
    fn run(cases: &[(Ending, u64, f64, u64)]) {
        let start = Instant::now();
        let ms = |n: u64| Duration::from_millis(n);
        let mut reconnects = Reconnects::new(BackoffPolicy::default());
        for (index, (ending, lifetime, random, expected)) in cases.iter().enumerate() {
            let at = next(
                &mut reconnects,
                *ending,
                start,
                start + ms(*lifetime),
                *random,
            );
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
            (LOST, 100, 1.0, 8_100),
            (Ending::Refused { retry_now: true }, 100, 1.0, 1_000),
            (LOST, 100, 0.0, 1_000),
            (Ending::Requested, 5_000, 1.0, 1_000),
            (LOST, 3, 1.0, 1_003),
            (LOST, 3, 1.0, 2_003),
            (Ending::Slept, 3, 1.0, 1_000),
            (LOST, 3, 1.0, 1_003),
        ]);
    }

    #[test]
    fn a_refusal_episode_reports_once_then_backs_off_up_to_ten_minutes() {
        let start = Instant::now();
        let at = |secs: u64| start + Duration::from_secs(secs);
        let mut reconnects = Reconnects::new(BackoffPolicy::default());
        // The token was stale: report it, retry as soon as the owner has a new one.
        assert_eq!(reconnects.refused(), Refusal::Report);
        let at_next = next(
            &mut reconnects,
            Ending::Refused { retry_now: true },
            at(0),
            at(0),
            1.0,
        );
        assert_eq!(at_next, at(1));
        // The fresh token is refused too: no second report; one log line, then none.
        let mut refusals = Vec::new();
        let mut delays = Vec::new();
        for _ in 0..14 {
            refusals.push(reconnects.refused());
            let at_next = next(
                &mut reconnects,
                Ending::Refused { retry_now: false },
                at(0),
                at(0),
                1.0,
            );
            delays.push((at_next - at(0)).as_secs());
        }
        assert_eq!(refusals[0], Refusal::BackOff { first: true });
        assert!(refusals[1..]
            .iter()
            .all(|r| *r == Refusal::BackOff { first: false }));
        assert_eq!(
            delays,
            [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600, 600, 600]
        );
        // The upper half of the ceiling, never closer than the minimum gap.
        let at_next = next(
            &mut reconnects,
            Ending::Refused { retry_now: false },
            at(0),
            at(0),
            0.0,
        );
        assert_eq!(at_next, at(300));
        // Refusals of the episode do not raise the delay of ordinary failures.
        let at_next = next(&mut reconnects, LOST, at(0), at(0), 1.0);
        assert_eq!(at_next, at(1));
        // A login ends the episode: the next refusal is reported again.
        reconnects.logged_in();
        assert_eq!(reconnects.refused(), Refusal::Report);
        assert_eq!(reconnects.refused(), Refusal::BackOff { first: true });
        let at_next = next(
            &mut reconnects,
            Ending::Refused { retry_now: false },
            at(0),
            at(0),
            0.0,
        );
        assert_eq!(at_next, at(1), "the floor of one second holds");
    }

    #[test]
    fn a_rate_limit_is_a_floor_and_scope_refusals_back_off() {
        let start = Instant::now();
        let at = |secs: u64| start + Duration::from_secs(secs);
        let attempt = Attempt {
            started: at(0),
            logged_in: false,
            token_replaced: false,
        };
        let mut reconnects = Reconnects::new(BackoffPolicy::default());
        let limited = ConnectionEnd::RateLimited {
            reason: "429".into(),
            until: at(300),
        };
        assert_eq!(
            reconnects.next_attempt(&limited, attempt, at(0), 1.0),
            at(300)
        );
        assert_eq!(
            reconnects.n_failures(),
            1,
            "a rate limit counts as a failed attempt"
        );
        let scope = ConnectionEnd::ScopeMissing("403".into());
        assert_eq!(reconnects.next_attempt(&scope, attempt, at(0), 1.0), at(1));
        assert_eq!(reconnects.next_attempt(&scope, attempt, at(0), 1.0), at(2));
        let metrics = [
            (
                ConnectionEnd::ReconnectRequested,
                ReconnectReason::Requested,
            ),
            (
                ConnectionEnd::TokenRefused(String::new()),
                ReconnectReason::LoginRefused,
            ),
            (scope, ReconnectReason::LoginRefused),
            (ConnectionEnd::Slept, ReconnectReason::Lost),
            (limited, ReconnectReason::Lost),
        ];
        for (end, reason) in metrics {
            assert_eq!(end.metric_reason(), reason, "{end:?}");
        }
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
