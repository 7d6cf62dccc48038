//! Moving chat frames, for either transport: one WebSocket and its frames (`socket`), the
//! dialer threads that open every connection (`dialer`), and the one watch thread that runs
//! every logged-in user's color timer and closes every socket after the machine slept
//! (`watch`). Does I/O.

pub mod dialer;
pub mod socket;
pub mod watch;
