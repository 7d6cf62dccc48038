//! Chat over EventSub (`channel.chat.message` on a WebSocket session). Pure: what the server
//! sends (`message`), one connection's state machine (`link`), which `reconnect_url` may be
//! followed (`reconnect_url`) and the channels a ban keeps unsubscribed (`bans`). I/O: the
//! Helix setup of a session on shared setup threads (`setup`) and the connection that
//! carries the machine out (`connection`).

pub mod bans;
pub mod connection;
pub mod link;
pub mod message;
pub mod reconnect_url;
pub mod setup;
