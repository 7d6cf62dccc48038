//! The process's live counters behind `/metrics`: atomics and two small maps that chat,
//! token, worker and config code bump with one call (`counters::color_change(…)`). Shared
//! state by design — one set per process, like the process itself; no I/O.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::base::metrics::{
    latency_bucket, ChangeResult, MetricsSnapshot, Outcome, ReconnectReason,
    LATENCY_BUCKETS_SECONDS,
};
use crate::base::sync::lock;

const N_BUCKETS: usize = LATENCY_BUCKETS_SECONDS.len() + 1;

struct Counters {
    color_changes: Mutex<BTreeMap<(String, ChangeResult), u64>>,
    helix_latency_buckets: [AtomicU64; N_BUCKETS],
    helix_latency_sum_micros: AtomicU64,
    rate_limit_waits: AtomicU64,
    rate_limit_wait_micros: AtomicU64,
    reconnects: [AtomicU64; 3],
    token_refreshes: [AtomicU64; 2],
    config_writes: [AtomicU64; 2],
}

#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicU64 = AtomicU64::new(0);

static COUNTERS: Counters = Counters {
    color_changes: Mutex::new(BTreeMap::new()),
    helix_latency_buckets: [ZERO; N_BUCKETS],
    helix_latency_sum_micros: ZERO,
    rate_limit_waits: ZERO,
    rate_limit_wait_micros: ZERO,
    reconnects: [ZERO; 3],
    token_refreshes: [ZERO; 2],
    config_writes: [ZERO; 2],
};

const REASONS: [ReconnectReason; 3] = [
    ReconnectReason::Requested,
    ReconnectReason::LoginRefused,
    ReconnectReason::Lost,
];
const OUTCOMES: [Outcome; 2] = [Outcome::Ok, Outcome::Failed];

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// A color change of `login` ended with `result`.
pub fn color_change(login: &str, result: ChangeResult) {
    *lock(&COUNTERS.color_changes)
        .entry((login.to_string(), result))
        .or_default() += 1;
}

/// One Helix call took `elapsed`.
pub fn helix_call(elapsed: Duration) {
    COUNTERS.helix_latency_buckets[latency_bucket(elapsed.as_secs_f64())]
        .fetch_add(1, Ordering::Relaxed);
    COUNTERS
        .helix_latency_sum_micros
        .fetch_add(micros(elapsed), Ordering::Relaxed);
}

/// A change waited `wait` for the user's rate-limit bucket to refill.
pub fn rate_limit_wait(wait: Duration) {
    COUNTERS.rate_limit_waits.fetch_add(1, Ordering::Relaxed);
    COUNTERS
        .rate_limit_wait_micros
        .fetch_add(micros(wait), Ordering::Relaxed);
}

/// A chat connection ended for `reason` and will be made again.
pub fn reconnect(reason: ReconnectReason) {
    COUNTERS.reconnects[reason as usize].fetch_add(1, Ordering::Relaxed);
}

/// A token refresh ended with `outcome`.
pub fn token_refresh(outcome: Outcome) {
    COUNTERS.token_refreshes[outcome as usize].fetch_add(1, Ordering::Relaxed);
}

/// A config write ended with `outcome`.
pub fn config_write(outcome: Outcome) {
    COUNTERS.config_writes[outcome as usize].fetch_add(1, Ordering::Relaxed);
}

/// Every counter now.
pub fn snapshot() -> MetricsSnapshot {
    let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    let mut snapshot = MetricsSnapshot {
        color_changes: lock(&COUNTERS.color_changes).clone(),
        helix_latency_sum_seconds: load(&COUNTERS.helix_latency_sum_micros) as f64 / 1e6,
        rate_limit_waits: load(&COUNTERS.rate_limit_waits),
        rate_limit_wait_seconds: load(&COUNTERS.rate_limit_wait_micros) as f64 / 1e6,
        reconnects: REASONS
            .iter()
            .map(|reason| (*reason, load(&COUNTERS.reconnects[*reason as usize])))
            .collect(),
        token_refreshes: OUTCOMES
            .iter()
            .map(|outcome| (*outcome, load(&COUNTERS.token_refreshes[*outcome as usize])))
            .collect(),
        config_writes: OUTCOMES
            .iter()
            .map(|outcome| (*outcome, load(&COUNTERS.config_writes[*outcome as usize])))
            .collect(),
        ..MetricsSnapshot::default()
    };
    for (index, bucket) in COUNTERS.helix_latency_buckets.iter().enumerate() {
        snapshot.helix_latency_buckets[index] = load(bucket);
    }
    snapshot
}
