//! Retry timing: exponential backoff with jitter, and for reconnects a floor on the attempt
//! rate. Pure: the caller passes `now` and a random number in `0.0..1.0`.

use std::time::{Duration, Instant};

/// The exponential ceiling after `n_failures` consecutive failures (1 for the first):
/// `min(cap, base * 2^(n_failures - 1))`.
pub fn exponential_ceiling(base: Duration, cap: Duration, n_failures: u32) -> Duration {
    let exponent = n_failures.saturating_sub(1).min(30);
    base.checked_mul(1u32 << exponent).unwrap_or(cap).min(cap)
}

/// A delay in the upper half of `ceiling`: retries of many callers spread out, but none
/// comes at once. `random_unit` is in `0.0..1.0`.
pub fn upper_half_jitter(ceiling: Duration, random_unit: f64) -> Duration {
    let half = ceiling / 2;
    half + half.mul_f64(random_unit.clamp(0.0, 1.0))
}

/// How reconnect attempts of one user are spaced.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BackoffPolicy {
    /// Upper bound of the first retry's delay; doubles with every further failure.
    pub base: Duration,
    /// The delay never grows past this.
    pub cap: Duration,
    /// Attempts never start closer together than this, however fast the server refuses.
    pub min_gap: Duration,
    /// A connection that lasted this long counts as stable and resets the failure count.
    pub stable_after: Duration,
    /// The ceiling of the delay after logins refused again and again (a token that
    /// validates but that chat refuses): retrying sooner cannot help.
    pub refusal_cap: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(120),
            min_gap: Duration::from_secs(1),
            stable_after: Duration::from_secs(60),
            refusal_cap: Duration::from_secs(600),
        }
    }
}

impl BackoffPolicy {
    /// The delay after `n_failures` consecutive failures (1 for the first), with full jitter:
    /// uniform in `0..=min(cap, base * 2^(n_failures - 1))`. `random_unit` is in `0.0..1.0`.
    pub fn jittered_delay(&self, n_failures: u32, random_unit: f64) -> Duration {
        exponential_ceiling(self.base, self.cap, n_failures).mul_f64(random_unit.clamp(0.0, 1.0))
    }

    /// When the next attempt may start: after the jittered delay from `now`, and never less
    /// than `min_gap` after the previous attempt started.
    pub fn next_attempt_at(
        &self,
        previous_attempt_started: Instant,
        now: Instant,
        n_failures: u32,
        random_unit: f64,
    ) -> Instant {
        let jittered = now + self.jittered_delay(n_failures, random_unit);
        jittered.max(previous_attempt_started + self.min_gap)
    }

    /// The failure count after a connection that lasted `connection_lifetime` ended.
    pub fn failures_after(&self, n_failures: u32, connection_lifetime: Duration) -> u32 {
        if connection_lifetime >= self.stable_after {
            1
        } else {
            n_failures.saturating_add(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_ceilings_and_upper_half_jitter() {
        let second = Duration::from_secs(1);
        let cases = [(0, 1), (1, 1), (2, 2), (4, 8), (7, 60), (u32::MAX, 60)];
        for (n_failures, expected_secs) in cases {
            assert_eq!(
                exponential_ceiling(second, Duration::from_secs(60), n_failures),
                Duration::from_secs(expected_secs),
                "n_failures {n_failures}"
            );
        }
        let jitter_cases = [
            (0.0, 500),
            (0.5, 750),
            (1.0, 1_000),
            (-3.0, 500),
            (9.0, 1_000),
        ];
        for (unit, expected_ms) in jitter_cases {
            assert_eq!(
                upper_half_jitter(second, unit),
                Duration::from_millis(expected_ms),
                "unit {unit}"
            );
        }
    }

    #[test]
    fn jittered_delay_doubles_up_to_the_cap() {
        let policy = BackoffPolicy::default();
        let cases = [
            (1, 1.0, 1_000),
            (1, 0.5, 500),
            (2, 1.0, 2_000),
            (3, 1.0, 4_000),
            (7, 1.0, 64_000),
            (8, 1.0, 120_000),
            (40, 1.0, 120_000),
            (u32::MAX, 1.0, 120_000),
            (3, 0.0, 0),
            (3, 7.0, 4_000),
            (0, 1.0, 1_000),
        ];
        for (n_failures, unit, expected_ms) in cases {
            assert_eq!(
                policy.jittered_delay(n_failures, unit),
                Duration::from_millis(expected_ms),
                "n_failures {n_failures}, unit {unit}"
            );
        }
    }

    #[test]
    fn attempts_are_never_closer_than_the_minimum_gap() {
        let policy = BackoffPolicy::default();
        let start = Instant::now();
        let cases = [
            // (ms since previous attempt start, failures, unit, expected ms after start)
            (0, 1, 0.0, 1_000),
            (300, 1, 0.1, 1_000),
            (300, 2, 1.0, 2_300),
            (5_000, 1, 0.0, 5_000),
        ];
        for (elapsed_ms, n_failures, unit, expected_ms) in cases {
            let now = start + Duration::from_millis(elapsed_ms);
            let at = policy.next_attempt_at(start, now, n_failures, unit);
            assert_eq!(
                at - start,
                Duration::from_millis(expected_ms),
                "elapsed {elapsed_ms}"
            );
        }
    }

    #[test]
    fn a_stable_connection_resets_the_failure_count() {
        let policy = BackoffPolicy::default();
        let cases = [(0, 1, 1), (5, 1, 6), (5, 59, 6), (5, 60, 1), (9, 3_600, 1)];
        for (n_failures, lifetime_secs, expected) in cases {
            assert_eq!(
                policy.failures_after(n_failures, Duration::from_secs(lifetime_secs)),
                expected
            );
        }
    }
}
