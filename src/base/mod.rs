//! The bottom layer: primitives every area uses and that import nothing of the daemon's
//! own — secrets, ids, backoff timing, the wall clock, the stop signal, the supervisor and
//! the counters behind `/metrics`.

pub mod backoff;
pub mod clock;
pub mod counters;
pub mod ids;
pub mod metrics;
pub mod pool;
pub mod secret;
pub mod stop;
pub mod supervisor;
pub mod sync;
pub mod wall_clock;
