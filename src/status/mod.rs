//! The daemon's status: the model and its pure health verdict (`model`), the shared board
//! and the thread that keeps the status file (`board`), and the `health` command
//! (`health`), and the HTTP status server (`server`) with what it answers (`page`: the
//! status page, `/metrics`, `/healthz`). The status file never holds a secret: states carry short reasons written by
//! the daemon, never tokens.

pub mod board;
pub mod health;
pub mod model;
pub mod page;
pub mod server;

#[cfg(test)]
pub(crate) use model::fixtures;

pub use board::{StatusBoard, StatusWriter, StatusWritten, WriterSettings};
pub use health::{process_is_running, run_health, run_health_with};
pub use model::{
    default_status_path, evaluate, merge_state, summarize, ConfigUnsaved, LoginCode, StatusReport,
    TimedText, UserState, UserStatus,
};
pub use server::StatusServer;
