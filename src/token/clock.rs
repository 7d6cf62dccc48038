//! Token timing: when a user's token thread validates, refreshes, or waits after a failure
//! of the auth endpoints. Pure, no I/O and no clocks: the caller passes `now` (an `Instant`,
//! never a wall clock) and a random number in `0.0..1.0`.

use std::time::{Duration, Instant};

use crate::base::backoff::{exponential_ceiling, upper_half_jitter};

/// Twitch requires apps to validate every token at start and then at least once an hour.
pub const VALIDATION_INTERVAL: Duration = Duration::from_secs(60 * 60);

/// A token is refreshed once less than this remains of it (or less than a tenth of its
/// lifetime, for short-lived tokens): early enough that a few failed attempts still leave
/// time before it lapses.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(10 * 60);

/// The first wait after a transient failure of the auth endpoints; doubles with every
/// further failure.
pub const AUTH_RETRY_BASE: Duration = Duration::from_secs(5);

/// The wait after transient failures never grows past this.
pub const AUTH_RETRY_CAP: Duration = Duration::from_secs(5 * 60);

/// What the token thread knows about its token's timing. Owned by that one thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokenClock {
    /// When the current token last passed validation; `None` before its first.
    pub validated_at: Option<Instant>,
    /// When the current token lapses; `None` when unknown or when it does not expire.
    pub expires_at: Option<Instant>,
    /// The longest lifetime known for the current token, which sets how early it is
    /// refreshed. A refresh tells the full lifetime; a validation only tells what is left,
    /// which is a lower bound of it.
    pub lifetime: Option<Duration>,
    /// Transient failures of the auth endpoints since the last success.
    pub n_transient_failures: u32,
    /// Nothing is attempted before this, after a transient failure.
    pub retry_at: Option<Instant>,
}

/// What the token thread should do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenStep {
    /// `GET /validate` the current token.
    Validate,
    /// `POST /token` with the refresh token.
    Refresh,
    /// Nothing is due before this moment; wait for it (or for a "token failed" message).
    SleepUntil(Instant),
}

impl TokenClock {
    /// Records a successful validation that said `expires_in` remains. Twitch answers 0 for
    /// tokens that do not expire, so zero means "no known expiry".
    pub fn after_validation(&mut self, now: Instant, expires_in: Duration) {
        self.validated_at = Some(now);
        if expires_in.is_zero() {
            self.expires_at = None;
            self.lifetime = None;
        } else {
            self.expires_at = Some(now + expires_in);
            self.lifetime = Some(
                self.lifetime
                    .map_or(expires_in, |known| known.max(expires_in)),
            );
        }
        self.clear_failures();
    }

    /// Records a successful refresh that gave a token living `expires_in` (when Twitch said).
    /// The new token has not been validated yet, so a validation is due at once: that also
    /// catches a refreshed token that still does not work.
    pub fn after_refresh(&mut self, now: Instant, expires_in: Option<Duration>) {
        self.validated_at = None;
        let expires_in = expires_in.filter(|lifetime| !lifetime.is_zero());
        self.expires_at = expires_in.map(|lifetime| now + lifetime);
        self.lifetime = expires_in;
        self.clear_failures();
    }

    /// Records a transient failure (5xx, timeout, broken connection) of the auth endpoints
    /// and schedules the next attempt. `random_unit` is in `0.0..1.0`.
    pub fn after_transient_failure(&mut self, now: Instant, random_unit: f64) {
        self.n_transient_failures = self.n_transient_failures.saturating_add(1);
        self.retry_at = Some(now + auth_retry_delay(self.n_transient_failures, random_unit));
    }

    fn clear_failures(&mut self) {
        self.n_transient_failures = 0;
        self.retry_at = None;
    }

    /// When the token should be refreshed ahead of its expiry, if its expiry is known.
    pub fn refresh_due(&self) -> Option<Instant> {
        let expires_at = self.expires_at?;
        // Without a known lifetime the token counts as long-lived: the full margin applies.
        let lifetime = self.lifetime.unwrap_or(Duration::MAX);
        Some(refresh_due_at(expires_at, lifetime))
    }
}

/// Decides the next step. `refresh_wanted` is true when someone reported that the token
/// failed (Helix 401, IRC "Login authentication failed") or validation rejected it.
///
/// Order of precedence: a pending backoff is always honoured, so a failing endpoint is not
/// hammered even when a refresh is wanted; then a wanted refresh; then the first
/// validation; then a refresh ahead of expiry; then the hourly validation.
pub fn next_step(clock: &TokenClock, now: Instant, refresh_wanted: bool) -> TokenStep {
    if let Some(retry_at) = clock.retry_at {
        if now < retry_at {
            return TokenStep::SleepUntil(retry_at);
        }
    }
    if refresh_wanted {
        return TokenStep::Refresh;
    }
    let Some(validated_at) = clock.validated_at else {
        return TokenStep::Validate;
    };
    let refresh_due = clock.refresh_due();
    if refresh_due.is_some_and(|due| now >= due) {
        return TokenStep::Refresh;
    }
    let validation_due = validated_at + VALIDATION_INTERVAL;
    if now >= validation_due {
        return TokenStep::Validate;
    }
    let wake_at = refresh_due.map_or(validation_due, |due| due.min(validation_due));
    TokenStep::SleepUntil(wake_at)
}

/// When a token that lapses at `expires_at` and lives `lifetime` in all should be
/// refreshed: [`REFRESH_MARGIN`] before, or a tenth of the lifetime before for tokens
/// shorter than ten margins.
pub fn refresh_due_at(expires_at: Instant, lifetime: Duration) -> Instant {
    let margin = REFRESH_MARGIN.min(lifetime / 10);
    expires_at.checked_sub(margin).unwrap_or(expires_at)
}

/// The wait after `n_failures` consecutive transient failures (1 for the first): the
/// ceiling `min(cap, base * 2^(n_failures - 1))`, jittered into its upper half so that
/// users failing together spread out but no retry comes at once. `random_unit` is in
/// `0.0..1.0`.
pub fn auth_retry_delay(n_failures: u32, random_unit: f64) -> Duration {
    let ceiling = exponential_ceiling(AUTH_RETRY_BASE, AUTH_RETRY_CAP, n_failures);
    upper_half_jitter(ceiling, random_unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);
    const HOUR: Duration = Duration::from_secs(3600);

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn next_step_table() {
        let start = Instant::now();
        let at = |offset: Duration| start + offset;
        // A token validated at `start` with four hours left, as Twitch issues them.
        let fresh = TokenClock {
            validated_at: Some(start),
            expires_at: Some(at(4 * HOUR)),
            lifetime: Some(4 * HOUR),
            ..TokenClock::default()
        };
        let backing_off = TokenClock {
            n_transient_failures: 2,
            retry_at: Some(at(secs(10))),
            ..fresh
        };
        let unknown_expiry = TokenClock {
            expires_at: None,
            lifetime: None,
            ..fresh
        };
        let short_lived = TokenClock {
            expires_at: Some(at(secs(100))),
            lifetime: Some(secs(100)),
            ..fresh
        };
        let cases: Vec<(&str, TokenClock, Duration, bool, TokenStep)> = vec![
            (
                "nothing known: validate at start",
                TokenClock::default(),
                Duration::ZERO,
                false,
                TokenStep::Validate,
            ),
            (
                "nothing known but a refresh wanted",
                TokenClock::default(),
                Duration::ZERO,
                true,
                TokenStep::Refresh,
            ),
            (
                "fresh token sleeps until the hourly validation",
                fresh,
                MINUTE,
                false,
                TokenStep::SleepUntil(at(HOUR)),
            ),
            (
                "hourly validation due",
                fresh,
                HOUR,
                false,
                TokenStep::Validate,
            ),
            (
                "hourly validation overdue",
                fresh,
                HOUR + MINUTE,
                false,
                TokenStep::Validate,
            ),
            (
                "refresh wanted on a fresh token",
                fresh,
                MINUTE,
                true,
                TokenStep::Refresh,
            ),
            (
                "near expiry: refresh is due before the validation",
                TokenClock {
                    validated_at: Some(at(3 * HOUR + 30 * MINUTE)),
                    ..fresh
                },
                3 * HOUR + 50 * MINUTE,
                false,
                TokenStep::Refresh,
            ),
            (
                "sleeps until the refresh when it comes before the validation",
                TokenClock {
                    validated_at: Some(at(3 * HOUR + 30 * MINUTE)),
                    ..fresh
                },
                3 * HOUR + 31 * MINUTE,
                false,
                TokenStep::SleepUntil(at(3 * HOUR + 50 * MINUTE)),
            ),
            (
                "expired token is refreshed",
                fresh,
                5 * HOUR,
                false,
                TokenStep::Refresh,
            ),
            (
                "unknown expiry: only hourly validation",
                unknown_expiry,
                10 * HOUR,
                false,
                TokenStep::Validate,
            ),
            (
                "unknown expiry sleeps until the validation",
                unknown_expiry,
                MINUTE,
                false,
                TokenStep::SleepUntil(at(HOUR)),
            ),
            (
                "short-lived token sleeps until a tenth of its life remains",
                short_lived,
                secs(1),
                false,
                TokenStep::SleepUntil(at(secs(90))),
            ),
            (
                "short-lived token refreshed with a tenth of its life left",
                short_lived,
                secs(90),
                false,
                TokenStep::Refresh,
            ),
            (
                "backing off: sleep even though a refresh is wanted",
                backing_off,
                secs(3),
                true,
                TokenStep::SleepUntil(at(secs(10))),
            ),
            (
                "backing off: sleep even though validation is overdue",
                TokenClock {
                    validated_at: None,
                    ..backing_off
                },
                secs(3),
                false,
                TokenStep::SleepUntil(at(secs(10))),
            ),
            (
                "backoff over: the wanted refresh goes ahead",
                backing_off,
                secs(10),
                true,
                TokenStep::Refresh,
            ),
            (
                "backoff over, nothing wanted: back to the schedule",
                backing_off,
                secs(11),
                false,
                TokenStep::SleepUntil(at(HOUR)),
            ),
            (
                "refreshed but not yet validated",
                TokenClock {
                    validated_at: None,
                    ..fresh
                },
                MINUTE,
                false,
                TokenStep::Validate,
            ),
        ];
        for (name, clock, elapsed, refresh_wanted, expected) in cases {
            assert_eq!(
                next_step(&clock, at(elapsed), refresh_wanted),
                expected,
                "{name}"
            );
        }
    }

    #[test]
    fn refresh_due_at_keeps_ten_minutes_or_a_tenth() {
        let expires_at = Instant::now() + 10 * HOUR;
        let cases = [
            // (lifetime, expected margin before expiry)
            (4 * HOUR, 10 * MINUTE),
            (100 * MINUTE, 10 * MINUTE),
            (50 * MINUTE, 5 * MINUTE),
            (secs(100), secs(10)),
            (secs(5), Duration::from_millis(500)),
            (Duration::ZERO, Duration::ZERO),
        ];
        for (lifetime, margin) in cases {
            assert_eq!(
                expires_at - refresh_due_at(expires_at, lifetime),
                margin,
                "lifetime {lifetime:?}"
            );
        }
    }

    #[test]
    fn auth_retry_delay_doubles_from_five_seconds_to_five_minutes() {
        let cases = [
            // (failures, random unit, expected milliseconds)
            (1, 0.0, 2_500),
            (1, 0.5, 3_750),
            (1, 1.0, 5_000),
            (2, 1.0, 10_000),
            (3, 1.0, 20_000),
            (6, 1.0, 160_000),
            (7, 1.0, 300_000),
            (7, 0.0, 150_000),
            (40, 1.0, 300_000),
            (u32::MAX, 1.0, 300_000),
            (0, 1.0, 5_000),
            (2, -3.0, 5_000),
            (2, 9.0, 10_000),
        ];
        for (n_failures, unit, expected_ms) in cases {
            assert_eq!(
                auth_retry_delay(n_failures, unit),
                Duration::from_millis(expected_ms),
                "n_failures {n_failures}, unit {unit}"
            );
        }
    }

    #[test]
    fn validation_records_expiry_and_keeps_the_longest_lifetime() {
        let start = Instant::now();
        // (name, lifetime before, expires_in, expected lifetime, expected expiry offset)
        let cases = [
            (
                "first validation",
                None,
                3 * HOUR,
                Some(3 * HOUR),
                Some(3 * HOUR),
            ),
            (
                "later validation keeps the refresh's lifetime",
                Some(4 * HOUR),
                HOUR,
                Some(4 * HOUR),
                Some(HOUR),
            ),
            (
                "zero means no expiry",
                Some(4 * HOUR),
                Duration::ZERO,
                None,
                None,
            ),
        ];
        for (name, lifetime, expires_in, expected_lifetime, expected_expiry) in cases {
            let mut clock = TokenClock {
                lifetime,
                n_transient_failures: 3,
                retry_at: Some(start),
                ..TokenClock::default()
            };
            clock.after_validation(start, expires_in);
            assert_eq!(clock.validated_at, Some(start), "{name}");
            assert_eq!(clock.lifetime, expected_lifetime, "{name}");
            assert_eq!(
                clock.expires_at,
                expected_expiry.map(|offset| start + offset),
                "{name}"
            );
            assert_eq!(clock.n_transient_failures, 0, "{name}");
            assert_eq!(clock.retry_at, None, "{name}");
        }
    }

    #[test]
    fn hourly_validation_late_in_life_does_not_delay_the_refresh() {
        let start = Instant::now();
        let mut clock = TokenClock::default();
        clock.after_refresh(start, Some(4 * HOUR));
        clock.after_validation(start, 4 * HOUR);
        let planned = clock.refresh_due();
        clock.after_validation(start + 3 * HOUR, HOUR);
        assert_eq!(clock.refresh_due(), planned);
        assert_eq!(planned, Some(start + 3 * HOUR + 50 * MINUTE));
    }

    #[test]
    fn refresh_asks_for_validation_of_the_new_token() {
        let start = Instant::now();
        let cases = [
            (Some(4 * HOUR), Some(start + 4 * HOUR)),
            (None, None),
            (Some(Duration::ZERO), None),
        ];
        for (expires_in, expected_expiry) in cases {
            let mut clock = TokenClock {
                validated_at: Some(start),
                n_transient_failures: 2,
                retry_at: Some(start + MINUTE),
                ..TokenClock::default()
            };
            clock.after_refresh(start, expires_in);
            assert_eq!(clock.expires_at, expected_expiry, "{expires_in:?}");
            assert_eq!(clock.lifetime, expires_in.filter(|d| !d.is_zero()));
            assert_eq!(next_step(&clock, start, false), TokenStep::Validate);
        }
    }

    #[test]
    fn transient_failures_grow_the_wait() {
        let start = Instant::now();
        let mut clock = TokenClock::default();
        let mut waits = Vec::new();
        for _ in 0..4 {
            clock.after_transient_failure(start, 1.0);
            waits.push(clock.retry_at.unwrap() - start);
        }
        assert_eq!(waits, [secs(5), secs(10), secs(20), secs(40)]);
        assert_eq!(clock.n_transient_failures, 4);
        assert_eq!(
            next_step(&clock, start, true),
            TokenStep::SleepUntil(start + secs(40))
        );
    }
}
