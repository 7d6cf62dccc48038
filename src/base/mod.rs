//! The bottom layer: primitives every area uses and that import nothing of the daemon's
//! own — secrets, ids, backoff timing, the wall clock, the stop signal and the supervisor.

pub mod backoff;
pub mod clock;
pub mod ids;
pub mod secret;
pub mod stop;
pub mod supervisor;
pub mod sync;
