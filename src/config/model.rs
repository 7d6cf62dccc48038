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
    /// How the user's chat is read: IRC, EventSub, or whichever the token allows.
    pub chat_transport: ChatTransport,
}

/// How a user's chat is read (`chat_transport`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ChatTransport {
    /// IRC over WebSocket; needs only `chat:read`.
    Irc,
    /// EventSub `channel.chat.message` over a WebSocket; needs `user:read:chat`.
    EventSub,
    /// EventSub when the token has `user:read:chat`, else IRC.
    #[default]
    Auto,
}

impl ChatTransport {
    /// The name the config file and the environment use.
    pub fn name(self) -> &'static str {
        match self {
            ChatTransport::Irc => "irc",
            ChatTransport::EventSub => "eventsub",
            ChatTransport::Auto => "auto",
        }
    }
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

/// A field of a user's entry: what the file calls it and which environment variable sets
/// it. The one list both sources read from and the writer saves to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    Username,
    ClientId,
    ClientSecret,
    AccessToken,
    RefreshToken,
    /// Unix seconds at which the access token expires; written by the daemon, never read.
    TokenExpiresAt,
    Channels,
    IsPrimeOrTurbo,
    Enabled,
    ColorMode,
    RainbowStep,
    Palette,
    PaletteOrder,
    ChangeEverySeconds,
    ChatTransport,
}

impl Field {
    /// The key in a user's object in the config file.
    pub fn key(self) -> &'static str {
        match self {
            Field::Username => "username",
            Field::ClientId => "client_id",
            Field::ClientSecret => "client_secret",
            Field::AccessToken => "access_token",
            Field::RefreshToken => "refresh_token",
            Field::TokenExpiresAt => "token_expires_at",
            Field::Channels => "channels",
            Field::IsPrimeOrTurbo => "is_prime_or_turbo",
            Field::Enabled => "enabled",
            Field::ColorMode => "color_mode",
            Field::RainbowStep => "rainbow_step",
            Field::Palette => "palette",
            Field::PaletteOrder => "palette_order",
            Field::ChangeEverySeconds => "change_every_seconds",
            Field::ChatTransport => "chat_transport",
        }
    }

    /// The environment variable of user N is `<prefix>_N`; `None` for fields the
    /// environment does not set.
    pub fn env_prefix(self) -> Option<&'static str> {
        match self {
            Field::Username => Some("TWITCH_USERNAME"),
            Field::ClientId => Some("TWITCH_CLIENT_ID"),
            Field::ClientSecret => Some("TWITCH_CLIENT_SECRET"),
            Field::AccessToken => Some("TWITCH_ACCESS_TOKEN"),
            Field::RefreshToken => Some("TWITCH_REFRESH_TOKEN"),
            Field::Channels => Some("TWITCH_CHANNELS"),
            Field::IsPrimeOrTurbo => Some("USE_RANDOM_COLORS"),
            Field::ColorMode => Some("TWITCH_COLOR_MODE"),
            Field::RainbowStep => Some("TWITCH_RAINBOW_STEP"),
            Field::Palette => Some("TWITCH_PALETTE"),
            Field::PaletteOrder => Some("TWITCH_PALETTE_ORDER"),
            Field::ChangeEverySeconds => Some("TWITCH_CHANGE_EVERY_SECONDS"),
            Field::ChatTransport => Some("TWITCH_CHAT_TRANSPORT"),
            Field::Enabled | Field::TokenExpiresAt => None,
        }
    }
}

/// A change the daemon saves to one user's entry in the config file. Tokens stay
/// [`Secret`]s until the writer puts them in the file.
#[derive(Clone, Debug, PartialEq)]
pub enum SavedField {
    /// New tokens from a refresh or a login, with the access token's expiry (Unix
    /// seconds) when Twitch said it.
    Tokens {
        access_token: Secret,
        refresh_token: Secret,
        expires_at_unix: Option<u64>,
    },
    /// `ccd` / `cce` in chat.
    Enabled(bool),
    /// Twitch refused hex colors: the account has no Turbo or Prime.
    IsPrimeOrTurbo(bool),
}

impl SavedField {
    /// The file's fields this change sets. Tokens are exposed here, where they are saved.
    pub fn entries(&self) -> Vec<(Field, serde_json::Value)> {
        match self {
            SavedField::Tokens {
                access_token,
                refresh_token,
                expires_at_unix,
            } => {
                let mut entries = vec![
                    (Field::AccessToken, access_token.expose().into()),
                    (Field::RefreshToken, refresh_token.expose().into()),
                ];
                if let Some(expires_at_unix) = expires_at_unix {
                    entries.push((Field::TokenExpiresAt, (*expires_at_unix).into()));
                }
                entries
            }
            SavedField::Enabled(enabled) => vec![(Field::Enabled, (*enabled).into())],
            SavedField::IsPrimeOrTurbo(value) => vec![(Field::IsPrimeOrTurbo, (*value).into())],
        }
    }

    /// Which kind of change this is: a newer change of the same kind replaces an older one
    /// not yet written.
    pub fn same_kind(&self, other: &SavedField) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}
