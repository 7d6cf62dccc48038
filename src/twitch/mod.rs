//! Twitch's HTTP APIs over one blocking `ureq::Agent`: Helix (chat color) and OAuth
//! (validate, refresh, device code). Each file pairs the calls (I/O) with pure functions
//! that say what an answer means and when to try again.

pub mod helix;
pub mod http;
pub mod oauth;
