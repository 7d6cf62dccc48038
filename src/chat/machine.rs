//! The shape both chat transports' machines share (`irc::link::Link`,
//! `eventsub::link::EventSubLink`), so that one socket loop (`net::socket::FrameSocket::next_steps`)
//! drives either, and how quiet either may be by default. Pure: a trait and two figures, no
//! I/O.

use std::time::{Duration, Instant};

/// How quiet a chat link may be, by default, before it is checked: IRC sends a PING after
/// this much silence (Twitch's own PINGs come only every five minutes), EventSub asks Twitch
/// for this keepalive window. With the grace each allows (IRC's `MAX_PING_GRACE` in
/// `irc/link.rs`, at most ten seconds past EventSub's window) a dead link — a home router's daily reconnect, a lost
/// NAT mapping — is noticed within 50 s and replaced within [`DEAD_LINK_LIMIT`]; EventSub
/// does not replay what was missed.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(40);
/// How soon, with the default keepalive, a dead chat link is replaced.
pub const DEAD_LINK_LIMIT: Duration = Duration::from_secs(60);

/// The pure machine of one chat connection, IRC or EventSub, as the thread that reads its
/// socket drives it (`FrameSocket::next_steps`): wait for a frame until `next_deadline`,
/// feed it in, then ask what has come due.
pub trait ChatMachine {
    /// What the machine asks its thread to do.
    type Step;
    /// The earliest moment `due` has something to do.
    fn next_deadline(&self) -> Instant;
    /// A frame that carries nothing for the machine still shows the link is alive.
    fn on_traffic(&mut self, now: Instant);
    /// What one text frame asks for.
    fn on_frame(&mut self, now: Instant, frame: &str) -> Vec<Self::Step>;
    /// What the deadlines that have passed by `now` ask for.
    fn due(&mut self, now: Instant) -> Vec<Self::Step>;
}
