//! twitch-colorchanger: changes a Twitch user's chat name color after every message they
//! send. The library holds everything; `main.rs` only calls [`cli::main`].
//!
//! The modules are layered; a module imports only from the layers below it:
//!
//! 1. `base` — secrets, ids, backoff, stop signal, supervisor.
//! 2. `color` — color math and choice (pure).
//! 3. `twitch` — Helix and OAuth over HTTP.
//! 4. `config` — the config model, validation, the file, its writer and watcher.
//! 5. `status` — the status model, board, status file and `health`.
//! 6. `user` — the per-user state the threads share, and the change queue.
//! 7. `chat` and `token` — the chat thread and the token thread with their pure cores.
//! 8. `daemon` — starts, reloads and stops everything; the worker pool.
//! 9. `cli` — the edge: arguments, commands, logging, exit codes.

pub mod base;
pub mod chat;
pub mod cli;
pub mod color;
pub mod config;
pub mod daemon;
pub mod status;
pub mod token;
pub mod twitch;
pub mod user;
