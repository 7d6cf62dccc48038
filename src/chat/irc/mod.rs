//! Chat over IRC (IRCv3 over WebSocket, `wss://irc-ws.chat.twitch.tv`): parsing and formatting
//! lines (`line`), what each line asks of the connection and the join limit (`session`), one
//! connection's state machine with its deadlines (`link`; all three pure), and the I/O that
//! carries the machine out (`connection`).

pub mod connection;
pub mod line;
pub mod link;
pub mod session;
