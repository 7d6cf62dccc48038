//! The wall clock, read in one place. Threads call [`unix_now`] and hand the value to the
//! pure core, which never reads a clock itself.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch by the system clock (0 if the clock is before 1970).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}
