//! The wall clock, read in one place. Threads call [`unix_now`] and hand the value to the
//! pure core, which never reads a clock itself.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::base::wall_clock::WallClock;

/// Seconds since the Unix epoch by the system clock (0 if the clock is before 1970).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// The time since the Unix epoch by `clock`: the system clock's, to the nanosecond (zero if
/// it is before 1970), unless a source was handed in.
pub fn wall_time(clock: &WallClock) -> Duration {
    match clock.source() {
        Some(source) => source(),
        None => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO),
    }
}
