//! What the daemon counts for `/metrics`, as plain data: the labels (`ChangeResult`,
//! `ReconnectReason`, `Outcome`), the Helix latency buckets and `MetricsSnapshot`, a copy of
//! every counter at one moment. Pure; the live counters are in `base::counters`.

use std::collections::BTreeMap;

/// Upper bounds of the Helix latency histogram's buckets, in seconds (`+Inf` follows).
/// A healthy call takes 0.1–0.5 s; the overall HTTP timeout is 10 s.
pub const LATENCY_BUCKETS_SECONDS: [f64; 9] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// How a color change ended, once all its retries are done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeResult {
    Ok,
    /// Twitch refused a hex color (no Turbo/Prime); a named one was tried next.
    HexRefused,
    Failed,
}

impl ChangeResult {
    pub fn label(self) -> &'static str {
        match self {
            ChangeResult::Ok => "ok",
            ChangeResult::HexRefused => "hex_refused",
            ChangeResult::Failed => "failed",
        }
    }
}

/// Why a chat connection was made again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReconnectReason {
    /// Twitch sent RECONNECT.
    Requested,
    /// Twitch refused the login (token).
    LoginRefused,
    /// Refused connect, TLS error, drop, close or silence.
    Lost,
}

impl ReconnectReason {
    pub fn label(self) -> &'static str {
        match self {
            ReconnectReason::Requested => "requested",
            ReconnectReason::LoginRefused => "login_refused",
            ReconnectReason::Lost => "connection_lost",
        }
    }
}

/// Success or failure of one attempt (token refresh, config write).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Ok,
    Failed,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
        }
    }
}

/// Every counter at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricsSnapshot {
    /// By (login, result).
    pub color_changes: BTreeMap<(String, ChangeResult), u64>,
    /// Helix calls per latency bucket (not cumulative), one more for `+Inf`.
    pub helix_latency_buckets: [u64; LATENCY_BUCKETS_SECONDS.len() + 1],
    pub helix_latency_sum_seconds: f64,
    /// Waits for an empty rate-limit bucket to refill, and their total length.
    pub rate_limit_waits: u64,
    pub rate_limit_wait_seconds: f64,
    pub reconnects: BTreeMap<ReconnectReason, u64>,
    pub token_refreshes: BTreeMap<Outcome, u64>,
    pub config_writes: BTreeMap<Outcome, u64>,
}

impl MetricsSnapshot {
    /// The number of Helix calls observed.
    pub fn helix_calls(&self) -> u64 {
        self.helix_latency_buckets.iter().sum()
    }
}

/// The bucket a latency falls in: the first bound not below it, else `+Inf` (the last).
pub fn latency_bucket(seconds: f64) -> usize {
    LATENCY_BUCKETS_SECONDS
        .iter()
        .position(|bound| seconds <= *bound)
        .unwrap_or(LATENCY_BUCKETS_SECONDS.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_fall_in_the_first_bucket_that_holds_them() {
        let cases = [
            (0.0, 0),
            (0.05, 0),
            (0.051, 1),
            (0.3, 3),
            (10.0, 7),
            (29.9, 8),
            (31.0, 9),
            (f64::INFINITY, 9),
        ];
        for (seconds, bucket) in cases {
            assert_eq!(latency_bucket(seconds), bucket, "{seconds}");
        }
    }
}
