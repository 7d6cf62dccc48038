//! The configuration: parsing and validating the JSON config file and the `TWITCH_*_N`
//! environment users, and the JSON document kept for writing the file back. The model,
//! parsing and checks are pure; reading and writing the file (`file`), the write-ahead
//! token journal beside it (`journal`), the one writer thread (`writer`) and the edit
//! watcher (`watch`) do I/O. This file only declares the
//! files and re-exports pure ones: Pure.

mod document;
mod env;
mod fields;
pub mod file;
pub mod journal;
mod locate;
mod model;
mod parse;
mod source;
pub mod tokens;
mod upstream;
mod watch;
pub mod writer;

#[cfg(test)]
mod tests;

pub use document::Document;
pub use env::users_from_env;
pub use fields::{
    CHANGE_EVERY_SECONDS_RANGE, MAX_EVENTSUB_CHANNELS, PLACEHOLDERS, RAINBOW_STEP_RANGE,
};
pub use model::{ChatTransport, Config, ConfigError, Field, InvalidConfig, SavedField, UserConfig};
pub use parse::parse;
