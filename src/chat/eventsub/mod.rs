//! Chat over EventSub (`channel.chat.message` on a WebSocket session): what the server sends
//! (`message`) and one connection's state machine (`link`; both pure), the Helix setup of a
//! session on shared setup threads (`setup`) and the I/O that carries the machine out
//! (`connection`).

pub mod connection;
pub mod link;
pub mod message;
pub mod setup;
