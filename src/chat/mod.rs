//! Twitch chat: IRC parsing (`irc`), what each line asks of the connection (`session`),
//! chat commands (`command`) — all pure — and the chat thread that carries it out over a
//! WebSocket (`connection`).

pub mod command;
pub mod connection;
pub mod irc;
pub mod session;
