//! The shape both chat transports' machines share (`irc::link::Link`,
//! `eventsub::link::EventSubLink`), so that one socket loop (`net::socket::FrameSocket::next_steps`)
//! drives either. Pure: a trait, no I/O.

use std::time::Instant;

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
