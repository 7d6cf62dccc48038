//! Twitch chat. Pure: IRC parsing (`irc`), what each line asks of the connection
//! (`session`), one connection's state machine with its deadlines (`link`), when to connect
//! again (`reconnect`), color timers and sleep detection (`schedule`), chat commands
//! (`command`), chat over EventSub as a state machine (`eventsub`). I/O: frames over a
//! WebSocket (`socket`), the chat thread that carries the machine out (`connection`), and the
//! one watch thread that runs every color timer and notices a suspend (`watch`).

pub mod command;
pub mod connection;
pub mod dialer;
pub mod eventsub;
pub mod eventsub_connection;
pub mod irc;
pub mod link;
pub mod reconnect;
pub mod schedule;
pub mod session;
pub mod socket;
pub mod watch;
