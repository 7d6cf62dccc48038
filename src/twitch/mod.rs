//! Twitch's HTTP APIs over one blocking `ureq::Agent`: Helix (chat color; for chat over
//! EventSub also users, subscriptions and the current color, in `helix_chat`) and OAuth
//! (validate, refresh, device code). Each file pairs the calls (I/O) with pure functions
//! that say what an answer means and when to try again.

pub mod helix;
pub mod helix_chat;
pub mod http;
pub mod oauth;
pub mod tls;
