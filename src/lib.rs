//! twitch-colorchanger: changes a Twitch user's chat name color after every message they
//! send. The library holds everything; `main.rs` only calls [`cli::main`].
//!
//! Pure core (no I/O, no clocks): `secret`, `ids`, `irc`, `color`, `chat`, `backoff`,
//! `config`. I/O shell: `config_file`, `chat_thread`, `helix`, `daemon`, `shutdown`, `cli`.

pub mod backoff;
pub mod chat;
pub mod chat_thread;
pub mod cli;
pub mod color;
pub mod command;
pub mod config;
pub mod config_file;
pub mod config_watch;
pub mod config_writer;
pub mod daemon;
pub mod device_login;
pub mod helix;
pub mod ids;
pub mod irc;
pub mod oauth;
pub mod secret;
pub mod settings;
pub mod status;
pub mod stop;
pub mod supervisor;
pub mod token;
pub mod token_thread;
pub mod user;
pub mod worker;
