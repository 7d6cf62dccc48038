//! The validated configuration (`Config`, `UserConfig`) and why a config was rejected
//! (`ConfigError`, with the file, line, column and fix). Pure data.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::base::ids::Login;
use crate::base::secret::Secret;
use crate::color::ColorMode;

/// One Twitch account whose color the daemon changes.
///
/// `Debug` is safe to log: the token fields are [`Secret`]s and redact themselves.
#[derive(Debug, Clone, PartialEq)]
pub struct UserConfig {
    pub username: Login,
    pub client_id: String,
    pub client_secret: Secret,
    /// Without any `oauth:` prefix. Empty when the user still has to log in (device code).
    pub access_token: Secret,
    /// Empty when the user still has to log in (device code).
    pub refresh_token: Secret,
    /// Normalised, deduplicated, never empty: defaults to the user's own channel.
    pub channels: Vec<Login>,
    /// True: the user has Turbo or Prime and may get hex colors; false: only Twitch's named
    /// colors.
    pub is_prime_or_turbo: bool,
    /// False: the user is known but the daemon changes no colors for them.
    pub enabled: bool,
    /// How the next color is chosen (`color_mode`, with `rainbow_step`, `palette` and
    /// `palette_order` folded in). A `Palette` here is never empty.
    pub color_mode: ColorMode,
    /// `change_every_seconds`: also change the color on this timer, without messages.
    /// `None` (the default) changes colors only when the user chats. When set, it lies
    /// within [`CHANGE_EVERY_SECONDS_RANGE`].
    pub change_every: Option<Duration>,
}

/// The validated configuration. An empty `users` list is valid; the caller decides what
/// having no users means.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub users: Vec<UserConfig>,
}

/// Why a configuration was rejected. Only the first problem found is reported.
///
/// `Display` gives one line a person can act on: where, what, and how to fix it. No variant
/// ever holds a token or client secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The file is not valid JSON. `line` and `column` are 1-based; `column` counts
    /// characters.
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
        fix: String,
    },
    /// The file is valid JSON but not a valid config. Boxed because it is the largest
    /// variant, and every `Result` carrying a `ConfigError` would pay for its size.
    Invalid(Box<InvalidConfig>),
    /// A `TWITCH_*_N` environment variable is invalid.
    Env {
        variable: String,
        message: String,
        fix: String,
    },
    /// The file exists but could not be read.
    Io { path: PathBuf, message: String },
    /// There is no file at the config path.
    NotFound { path: PathBuf },
}

/// What is wrong in a file that is valid JSON but not a valid config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidConfig {
    pub path: PathBuf,
    /// Where in the file the problem is (1-based line and character column), when it could
    /// be found.
    pub position: Option<(usize, usize)>,
    /// Which user, as written in messages: `user 2 (bob)` or `user 2`.
    pub user: Option<String>,
    pub field: Option<String>,
    pub message: String,
    pub fix: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Syntax {
                path,
                line,
                column,
                message,
                fix,
            } => write!(f, "{}:{line}:{column}: {message} — {fix}", path.display()),
            ConfigError::Invalid(invalid) => {
                let InvalidConfig {
                    path,
                    position,
                    user,
                    field,
                    message,
                    fix,
                } = invalid.as_ref();
                write!(f, "{}", path.display())?;
                if let Some((line, column)) = position {
                    write!(f, ":{line}:{column}")?;
                }
                f.write_str(": ")?;
                if let Some(user) = user {
                    write!(f, "{user}: ")?;
                }
                if let Some(field) = field {
                    write!(f, "field \"{field}\" ")?;
                }
                write!(f, "{message} — {fix}")
            }
            ConfigError::Env {
                variable,
                message,
                fix,
            } => write!(f, "environment variable {variable} {message} — {fix}"),
            ConfigError::Io { path, message } => write!(f, "{}: {message}", path.display()),
            ConfigError::NotFound { path } => write!(
                f,
                "{}: config file not found — copy config.example.json there and fill it in, \
                 or point --config or TWITCH_CONF_FILE at your file",
                path.display()
            ),
        }
    }
}

impl std::error::Error for ConfigError {}
