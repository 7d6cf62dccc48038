//! The configuration: parsing and validating the JSON config file and the `TWITCH_*_N`
//! environment users, and the JSON document kept for writing the file back. Pure, no I/O:
//! reading and writing the file lives in `config::file`.

pub mod file;
pub mod watch;
pub mod writer;

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::base::ids::Login;
use crate::base::secret::Secret;
use crate::color::{
    self, Color, ColorMode, NamedColor, PaletteOrder, DEFAULT_RAINBOW_STEP_DEGREES,
};

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

/// The file's JSON tree, kept so that writes preserve unknown fields and key order.
///
/// It holds tokens, so its `Debug` only tells how many users it has.
#[derive(Clone, PartialEq)]
pub struct Document {
    root: Value,
}

impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Document")
            .field("n_users", &self.users().map_or(0, Vec::len))
            .finish_non_exhaustive()
    }
}

impl Document {
    /// A new document for users that came from the environment, written to a new file.
    pub fn from_users(users: &[UserConfig]) -> Document {
        let users_json = users
            .iter()
            .map(|user| {
                let mut object = Map::new();
                object.insert("username".into(), user.username.as_str().into());
                object.insert("client_id".into(), user.client_id.as_str().into());
                object.insert("client_secret".into(), user.client_secret.expose().into());
                object.insert("access_token".into(), user.access_token.expose().into());
                object.insert("refresh_token".into(), user.refresh_token.expose().into());
                let channels = user.channels.iter().map(|c| Value::from(c.as_str()));
                object.insert("channels".into(), Value::Array(channels.collect()));
                object.insert("is_prime_or_turbo".into(), user.is_prime_or_turbo.into());
                object.insert("enabled".into(), user.enabled.into());
                insert_color_fields(&mut object, user);
                Value::Object(object)
            })
            .collect();
        let mut root = Map::new();
        root.insert("users".into(), Value::Array(users_json));
        Document {
            root: Value::Object(root),
        }
    }

    /// Sets one field of the user whose `username` matches (case-insensitively, `#`
    /// ignored), keeping every other field and the order of keys. An existing field keeps
    /// its place; a new one is appended. Returns false when there is no such user.
    pub fn set_user_field(&mut self, username: &Login, field: &str, value: Value) -> bool {
        let Some(users) = self.root.get_mut("users").and_then(Value::as_array_mut) else {
            return false;
        };
        let found = users
            .iter_mut()
            .filter_map(Value::as_object_mut)
            .find(|user| {
                user.get("username")
                    .and_then(Value::as_str)
                    .is_some_and(|name| Login::new(name) == *username)
            });
        match found {
            Some(user) => {
                user.insert(field.to_string(), value);
                true
            }
            None => false,
        }
    }

    /// The document as the file should hold it: pretty, 2-space indent, trailing newline.
    pub fn to_json_string(&self) -> String {
        // Serialising a `Value` cannot fail: all its keys are strings.
        let mut text = serde_json::to_string_pretty(&self.root).unwrap_or_default();
        text.push('\n');
        text
    }

    fn users(&self) -> Option<&Vec<Value>> {
        self.root.get("users").and_then(Value::as_array)
    }
}

/// Writes the color fields of `user` that differ from their defaults, so that a file made
/// from environment users stays as short as the variables that made it.
fn insert_color_fields(object: &mut Map<String, Value>, user: &UserConfig) {
    if user.color_mode != ColorMode::Random {
        let name = ColorModeName::of(&user.color_mode).as_str();
        object.insert("color_mode".into(), name.into());
    }
    match &user.color_mode {
        ColorMode::Rainbow { step_degrees } if *step_degrees != DEFAULT_RAINBOW_STEP_DEGREES => {
            object.insert("rainbow_step".into(), number_value(*step_degrees));
        }
        ColorMode::Palette { colors, order } => {
            let colors = colors.iter().map(|color| Value::from(color.to_string()));
            object.insert("palette".into(), Value::Array(colors.collect()));
            if *order != PaletteOrder::default() {
                object.insert("palette_order".into(), palette_order_name(*order).into());
            }
        }
        _ => {}
    }
    if let Some(interval) = user.change_every {
        object.insert("change_every_seconds".into(), interval.as_secs().into());
    }
}

/// A JSON number written as people write it: `45` rather than `45.0` for whole numbers.
fn number_value(value: f64) -> Value {
    // Validated steps are at most 359 degrees, so the cast to i64 is exact.
    if value.fract() == 0.0 && value.abs() < 1e15 {
        Value::from(value as i64)
    } else {
        Value::from(value)
    }
}

/// The placeholder values of config.example.json. A value equal to one of them (ignoring
/// case, a leading `#` and an `oauth:` prefix) means the user copied the example and did not
/// fill it in.
pub const PLACEHOLDERS: [&str; 7] = [
    "your_twitch_username",
    "your_second_twitch_username",
    "some_friends_channel",
    "your_client_id",
    "your_client_secret",
    "your_access_token",
    "your_refresh_token",
];

/// Where the README explains how to get the values; named in fixes.
const GETTING_TOKENS: &str = "see README \"Getting tokens\"";

/// A problem with one value, before we know whether it came from the file or the
/// environment.
struct Problem {
    message: String,
    fix: String,
}

impl Problem {
    fn new(message: impl Into<String>, fix: impl Into<String>) -> Problem {
        Problem {
            message: message.into(),
            fix: fix.into(),
        }
    }
}

/// Parses and validates a config file's text. `path` is only used in error messages.
pub fn parse(text: &str, path: &Path) -> Result<(Config, Document), ConfigError> {
    // Editors on Windows like to start UTF-8 files with a byte order mark; JSON has none.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let file = FileContext { path, text };
    if text.trim().is_empty() {
        return Err(file.invalid(
            None,
            None,
            &[],
            "the file is empty",
            "write {\"users\": [ ... ]} with one entry per Twitch account, see config.example.json",
        ));
    }
    let root: Value = serde_json::from_str(text).map_err(|error| syntax_error(&error, &file))?;
    let Some(root_object) = root.as_object() else {
        return Err(file.invalid(
            None,
            None,
            &[],
            "the top level must be an object",
            "write {\"users\": [ ... ]} with one entry per Twitch account, see config.example.json",
        ));
    };
    let users_json =
        match root_object.get("users") {
            None => return Err(file.invalid(
                None,
                None,
                &[],
                "there is no \"users\" list",
                "add \"users\": [ ... ] with one entry per Twitch account, see config.example.json",
            )),
            Some(Value::Array(users_json)) => users_json,
            Some(_) => {
                return Err(file.invalid(
                    None,
                    Some("users"),
                    &[Step::Key("users")],
                    "must be a list of users",
                    "write \"users\": [ {\"username\": ...}, ... ], see config.example.json",
                ))
            }
        };
    let mut users: Vec<UserConfig> = Vec::with_capacity(users_json.len());
    for (index, user_json) in users_json.iter().enumerate() {
        let user = parse_file_user(&file, index, user_json)?;
        if let Some(first) = users.iter().position(|u| u.username == user.username) {
            return Err(file.invalid(
                Some(&file.user_label(index, Some(&user.username))),
                Some("username"),
                &[
                    Step::Key("users"),
                    Step::Index(index),
                    Step::Key("username"),
                ],
                &format!("repeats user {}", first + 1),
                "each Twitch account may appear only once: merge the two entries",
            ));
        }
        users.push(user);
    }
    Ok((Config { users }, Document { root }))
}

/// The file being parsed, for building errors that say where the problem is.
struct FileContext<'a> {
    path: &'a Path,
    text: &'a str,
}

impl FileContext<'_> {
    fn invalid(
        &self,
        user: Option<&str>,
        field: Option<&str>,
        steps: &[Step],
        message: &str,
        fix: &str,
    ) -> ConfigError {
        let position = if steps.is_empty() {
            None
        } else {
            locate(self.text, steps).map(|offset| line_and_column(self.text, offset))
        };
        ConfigError::Invalid(Box::new(InvalidConfig {
            path: self.path.to_path_buf(),
            position,
            user: user.map(str::to_string),
            field: field.map(str::to_string),
            message: message.to_string(),
            fix: fix.to_string(),
        }))
    }

    fn user_label(&self, index: usize, username: Option<&Login>) -> String {
        match username {
            Some(username) => format!("user {} ({username})", index + 1),
            None => format!("user {}", index + 1),
        }
    }
}

fn syntax_error(error: &serde_json::Error, file: &FileContext) -> ConfigError {
    let line = error.line();
    let byte_column = error.column();
    // serde_json appends " at line L column C" to its message; we print the position first.
    let full = error.to_string();
    let suffix = format!(" at line {line} column {byte_column}");
    let message = full.strip_suffix(&suffix).unwrap_or(&full).to_string();
    let line_text = file.text.lines().nth(line.saturating_sub(1)).unwrap_or("");
    // serde_json counts bytes and points just past the offending byte; editors count
    // characters.
    let column = line_text
        .get(..byte_column.min(line_text.len()))
        .map_or(byte_column, |before| before.chars().count());
    let offending = line_text
        .get(byte_column.saturating_sub(1)..)
        .and_then(|rest| rest.chars().next());
    let fix = syntax_fix(error.classify(), &message, offending);
    ConfigError::Syntax {
        path: file.path.to_path_buf(),
        line,
        column,
        message,
        fix: fix.to_string(),
    }
}

/// A hint for the JSON mistakes people make when editing a config by hand.
fn syntax_fix(
    category: serde_json::error::Category,
    message: &str,
    offending: Option<char>,
) -> &'static str {
    if category == serde_json::error::Category::Eof {
        return "the file ends too early: close every { and [ and finish the last entry";
    }
    match offending {
        Some('/') | Some('#') => {
            return "JSON has no comments: use a \"_comment\" field instead, e.g. \"_comment\": \"...\""
        }
        Some('\'') => return "JSON strings need double quotes: write \"...\" instead of '...'",
        _ => {}
    }
    if message.contains("trailing comma") {
        "remove the comma after the last entry of this list or object"
    } else if message.contains("key must be a string") {
        "put field names in double quotes, e.g. \"username\""
    } else if message.contains("control character") {
        "a string is missing its closing double quote, or contains a line break"
    } else {
        "check for a missing comma, quote or bracket just before this position"
    }
}

fn parse_file_user(
    file: &FileContext,
    index: usize,
    user_json: &Value,
) -> Result<UserConfig, ConfigError> {
    let user_steps = [Step::Key("users"), Step::Index(index)];
    let Some(object) = user_json.as_object() else {
        return Err(file.invalid(
            Some(&file.user_label(index, None)),
            None,
            &user_steps,
            "must be an object",
            "write each user as {\"username\": \"...\", \"client_id\": \"...\", ...}, \
             see config.example.json",
        ));
    };
    let mut label = file.user_label(index, None);
    let field_error = |label: &str, field: &str, problem: Problem| {
        let steps = [Step::Key("users"), Step::Index(index), Step::Key(field)];
        // A missing field has no position of its own: point at the user instead.
        let steps: &[Step] = if object.contains_key(field) {
            &steps
        } else {
            &user_steps
        };
        file.invalid(
            Some(label),
            Some(field),
            steps,
            &problem.message,
            &problem.fix,
        )
    };

    let username = match object.get("username") {
        None | Some(Value::Null) => {
            return Err(field_error(
                &label,
                "username",
                Problem::new(
                    "is missing",
                    "add \"username\": \"<your Twitch login name>\"",
                ),
            ))
        }
        Some(Value::String(name)) => name,
        Some(_) => {
            return Err(field_error(
                &label,
                "username",
                Problem::new(
                    "must be a string",
                    "write your Twitch login name in quotes, e.g. \"username\": \"bob\"",
                ),
            ))
        }
    };
    let username = match check_username(username) {
        Ok(username) => username,
        Err(problem) => {
            // Name the user in the message when the name is readable at all.
            let shown = Login::new(username);
            if !shown.as_str().is_empty() {
                label = file.user_label(index, Some(&shown));
            }
            return Err(field_error(&label, "username", problem));
        }
    };
    label = file.user_label(index, Some(&username));

    let client_id = match object.get("client_id") {
        None | Some(Value::Null) => {
            return Err(field_error(
                &label,
                "client_id",
                Problem::new("is missing", CLIENT_ID_FIX),
            ))
        }
        Some(Value::String(value)) => check_client_id(value),
        Some(_) => Err(Problem::new("must be a string", CLIENT_ID_FIX)),
    }
    .map_err(|problem| field_error(&label, "client_id", problem))?;

    let string_field = |field: &str| -> Result<String, ConfigError> {
        match object.get(field) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(value)) => {
                check_not_placeholder(value, field).map_err(|p| field_error(&label, field, p))?;
                Ok(value.trim().to_string())
            }
            // The value is never echoed: it may be a secret.
            Some(_) => Err(field_error(
                &label,
                field,
                Problem::new("must be a string", secret_fix(field)),
            )),
        }
    };
    let client_secret = Secret::new(string_field("client_secret")?);
    let access_token = Secret::token(&string_field("access_token")?);
    let refresh_token = Secret::token(&string_field("refresh_token")?);

    let channels = match object.get("channels") {
        None | Some(Value::Null) => vec![username.clone()],
        Some(Value::Array(entries)) => {
            let mut names = Vec::with_capacity(entries.len());
            for (entry_index, entry) in entries.iter().enumerate() {
                match entry.as_str() {
                    Some(name) => names.push(name),
                    None => {
                        let steps = [
                            Step::Key("users"),
                            Step::Index(index),
                            Step::Key("channels"),
                            Step::Index(entry_index),
                        ];
                        return Err(file.invalid(
                            Some(&label),
                            Some("channels"),
                            &steps,
                            &format!("entry {} must be a string", entry_index + 1),
                            &channels_fix(&username),
                        ));
                    }
                }
            }
            normalise_channels(&names, &username).map_err(|(entry_index, problem)| {
                let steps = [
                    Step::Key("users"),
                    Step::Index(index),
                    Step::Key("channels"),
                    Step::Index(entry_index),
                ];
                file.invalid(
                    Some(&label),
                    Some("channels"),
                    &steps,
                    &problem.message,
                    &problem.fix,
                )
            })?
        }
        Some(_) => {
            return Err(field_error(
                &label,
                "channels",
                Problem::new("must be a list of channel names", channels_fix(&username)),
            ))
        }
    };

    let bool_field = |field: &str| -> Result<bool, ConfigError> {
        match object.get(field) {
            None | Some(Value::Null) => Ok(true),
            Some(Value::Bool(value)) => Ok(*value),
            Some(_) => Err(field_error(
                &label,
                field,
                Problem::new(
                    "must be true or false",
                    format!("write it without quotes, e.g. \"{field}\": false"),
                ),
            )),
        }
    };
    let is_prime_or_turbo = bool_field("is_prime_or_turbo")?;
    let enabled = bool_field("enabled")?;
    let (color_mode, change_every) = parse_file_colors(file, index, object, &label)?;

    Ok(UserConfig {
        username,
        client_id,
        client_secret,
        access_token,
        refresh_token,
        channels,
        is_prime_or_turbo,
        enabled,
        color_mode,
        change_every,
    })
}

/// Reads `color_mode`, `rainbow_step`, `palette`, `palette_order` and
/// `change_every_seconds` of one user. Every field that is present is validated, even one
/// the chosen mode does not use, so that switching modes later cannot reveal an old mistake.
fn parse_file_colors(
    file: &FileContext,
    index: usize,
    object: &Map<String, Value>,
    label: &str,
) -> Result<(ColorMode, Option<Duration>), ConfigError> {
    let error_at = |field: &str, steps: &[Step], problem: Problem| {
        file.invalid(
            Some(label),
            Some(field),
            steps,
            &problem.message,
            &problem.fix,
        )
    };
    let field_error = |field: &str, problem: Problem| {
        error_at(
            field,
            &[Step::Key("users"), Step::Index(index), Step::Key(field)],
            problem,
        )
    };
    let present = |field: &str| object.get(field).filter(|value| !value.is_null());

    let mode_name = match present("color_mode") {
        None => ColorModeName::Random,
        Some(Value::String(value)) => {
            check_color_mode_name(value).map_err(|p| field_error("color_mode", p))?
        }
        Some(_) => {
            return Err(field_error(
                "color_mode",
                Problem::new(
                    "must be a string",
                    format!(
                        "write one of {} in quotes, e.g. \"color_mode\": \"rainbow\"",
                        color_mode_choices()
                    ),
                ),
            ))
        }
    };

    let rainbow_step = match present("rainbow_step") {
        None => None,
        Some(Value::Number(number)) => {
            // Every JSON number has an f64 value; NaN only marks an impossible miss.
            let step_degrees = number.as_f64().unwrap_or(f64::NAN);
            Some(check_rainbow_step(step_degrees).map_err(|p| field_error("rainbow_step", p))?)
        }
        Some(_) => {
            return Err(field_error(
                "rainbow_step",
                Problem::new(
                    "must be a number of degrees",
                    "write it without quotes, e.g. \"rainbow_step\": 30",
                ),
            ))
        }
    };

    let mut palette = Vec::new();
    match present("palette") {
        None => {}
        Some(Value::Array(entries)) => {
            for (entry_index, entry) in entries.iter().enumerate() {
                let entry_field = format!("palette[{entry_index}]");
                let entry_steps = [
                    Step::Key("users"),
                    Step::Index(index),
                    Step::Key("palette"),
                    Step::Index(entry_index),
                ];
                let color = match entry {
                    Value::String(text) => check_palette_color(text),
                    _ => Err(Problem::new(
                        "must be a string",
                        "write each color in quotes, e.g. \"sea_green\" or \"#1E90FF\"",
                    )),
                }
                .map_err(|p| error_at(&entry_field, &entry_steps, p))?;
                palette.push(color);
            }
        }
        Some(_) => {
            return Err(field_error(
                "palette",
                Problem::new(
                    "must be a list of colors",
                    "write it like [\"sea_green\", \"#1E90FF\", \"hot_pink\"]",
                ),
            ))
        }
    }
    if mode_name == ColorModeName::Palette && palette.is_empty() {
        // A missing palette is pointed out where the mode that needs it is chosen.
        let (message, at) = if present("palette").is_some() {
            (
                "is empty, but color_mode \"palette\" needs at least one color",
                "palette",
            )
        } else {
            (
                "is missing, but color_mode \"palette\" needs it",
                "color_mode",
            )
        };
        return Err(error_at(
            "palette",
            &[Step::Key("users"), Step::Index(index), Step::Key(at)],
            Problem::new(
                message,
                "add \"palette\": [\"sea_green\", \"#1E90FF\", \"hot_pink\"] with your colors, \
                 or choose another color_mode",
            ),
        ));
    }

    let palette_order = match present("palette_order") {
        None => PaletteOrder::default(),
        Some(Value::String(value)) => {
            check_palette_order(value).map_err(|p| field_error("palette_order", p))?
        }
        Some(_) => {
            return Err(field_error(
                "palette_order",
                Problem::new(
                    "must be a string",
                    "write \"palette_order\": \"cycle\" or \"palette_order\": \"random\"",
                ),
            ))
        }
    };

    let change_every = match present("change_every_seconds") {
        None => None,
        Some(Value::Number(number)) => {
            let seconds = number.as_f64().unwrap_or(f64::NAN);
            check_change_every_seconds(seconds)
                .map_err(|p| field_error("change_every_seconds", p))?
        }
        Some(_) => {
            return Err(field_error(
                "change_every_seconds",
                Problem::new(
                    "must be a number of seconds",
                    "write it without quotes, e.g. \"change_every_seconds\": 60, or 0 for no \
                     timer",
                ),
            ))
        }
    };

    let color_mode = build_color_mode(mode_name, rainbow_step, palette, palette_order);
    Ok((color_mode, change_every))
}

const CLIENT_ID_FIX: &str = "set it to the client id of your Twitch app from \
                             https://dev.twitch.tv/console (see README \"Getting tokens\")";

fn secret_fix(field: &str) -> String {
    match field {
        "client_secret" => format!(
            "set it to the client secret of your Twitch app from https://dev.twitch.tv/console, \
             or \"\" for an app without one ({GETTING_TOKENS})"
        ),
        _ => format!(
            "set it to a token with scopes chat:read and user:manage:chat_color, or to \"\" \
             to log in with a device code ({GETTING_TOKENS})"
        ),
    }
}

fn channels_fix(username: &Login) -> String {
    format!("write it like [\"{username}\"], or leave it out to watch your own channel")
}

/// A Twitch login: 1 to 25 ASCII letters, digits and underscores.
fn is_valid_login(login: &Login) -> bool {
    let name = login.as_str();
    (1..=25).contains(&name.len())
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
}

fn check_username(value: &str) -> Result<Login, Problem> {
    let username = Login::new(value);
    if username.as_str().is_empty() {
        return Err(Problem::new(
            "is empty",
            "set it to your Twitch login name, e.g. \"bob\"",
        ));
    }
    check_not_placeholder(value, "username")?;
    if !is_valid_login(&username) {
        return Err(Problem::new(
            format!("\"{}\" is not a Twitch login name", value.trim()),
            "use the login name from your Twitch URL: 1 to 25 letters, digits or _",
        ));
    }
    Ok(username)
}

fn check_client_id(value: &str) -> Result<String, Problem> {
    let client_id = value.trim();
    if client_id.is_empty() {
        return Err(Problem::new("is empty", CLIENT_ID_FIX));
    }
    check_not_placeholder(client_id, "client_id")?;
    Ok(client_id.to_string())
}

/// The placeholder `value` is, if it is one of [`PLACEHOLDERS`].
fn placeholder_in(value: &str) -> Option<&'static str> {
    let value = value.trim();
    let value = value
        .get(..6)
        .filter(|prefix| prefix.eq_ignore_ascii_case("oauth:"))
        .map_or(value, |_| &value[6..]);
    let value = value.trim_start_matches('#');
    PLACEHOLDERS
        .into_iter()
        .find(|placeholder| placeholder.eq_ignore_ascii_case(value))
}

fn check_not_placeholder(value: &str, field: &str) -> Result<(), Problem> {
    let Some(placeholder) = placeholder_in(value) else {
        return Ok(());
    };
    let replacement = match field {
        "username" => format!("your Twitch login name ({GETTING_TOKENS})"),
        "channels" => "the name of a channel to watch, or remove it".to_string(),
        "client_id" | "client_secret" => format!(
            "the value of your Twitch app from https://dev.twitch.tv/console ({GETTING_TOKENS})"
        ),
        _ => format!(
            "a token with scopes chat:read and user:manage:chat_color, or \"\" to log in with \
             a device code ({GETTING_TOKENS})"
        ),
    };
    Err(Problem::new(
        format!("still holds the placeholder \"{placeholder}\" from config.example.json"),
        format!("replace it with {replacement}"),
    ))
}

/// Normalises channel names: lowercase, `#` dropped, trimmed, empty entries dropped,
/// duplicates removed keeping the first. No channels at all means the user's own channel.
/// On error, returns the 0-based index of the bad entry.
fn normalise_channels(names: &[&str], owner: &Login) -> Result<Vec<Login>, (usize, Problem)> {
    let mut seen = HashSet::new();
    let mut channels = Vec::new();
    for (index, name) in names.iter().enumerate() {
        let channel = Login::new(name);
        if channel.as_str().is_empty() {
            continue;
        }
        check_not_placeholder(name, "channels").map_err(|problem| {
            let message = format!("entry {} {}", index + 1, problem.message);
            (index, Problem::new(message, problem.fix))
        })?;
        if !is_valid_login(&channel) {
            let problem = Problem::new(
                format!(
                    "entry {} \"{}\" is not a channel name",
                    index + 1,
                    name.trim()
                ),
                "channel names are Twitch login names: 1 to 25 letters, digits or _",
            );
            return Err((index, problem));
        }
        if seen.insert(channel.clone()) {
            channels.push(channel);
        }
    }
    if channels.is_empty() {
        channels.push(owner.clone());
    }
    Ok(channels)
}

/// The kinds of [`ColorMode`], as `color_mode` names them, before their settings are known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ColorModeName {
    Random,
    Preset,
    Rainbow,
    Palette,
    Readable,
}

impl ColorModeName {
    const ALL: [ColorModeName; 5] = [
        ColorModeName::Random,
        ColorModeName::Preset,
        ColorModeName::Rainbow,
        ColorModeName::Palette,
        ColorModeName::Readable,
    ];

    fn as_str(self) -> &'static str {
        match self {
            ColorModeName::Random => "random",
            ColorModeName::Preset => "preset",
            ColorModeName::Rainbow => "rainbow",
            ColorModeName::Palette => "palette",
            ColorModeName::Readable => "readable",
        }
    }

    fn of(mode: &ColorMode) -> ColorModeName {
        match mode {
            ColorMode::Random => ColorModeName::Random,
            ColorMode::Preset => ColorModeName::Preset,
            ColorMode::Rainbow { .. } => ColorModeName::Rainbow,
            ColorMode::Palette { .. } => ColorModeName::Palette,
            ColorMode::Readable => ColorModeName::Readable,
        }
    }
}

fn palette_order_name(order: PaletteOrder) -> &'static str {
    match order {
        PaletteOrder::Cycle => "cycle",
        PaletteOrder::Random => "random",
    }
}

/// The hue steps `rainbow_step` accepts, in degrees, for either direction: a negative step
/// goes round the wheel the other way. Below 1° successive colors look the same; 360° is a
/// whole turn back to the same color.
pub const RAINBOW_STEP_RANGE: std::ops::RangeInclusive<f64> = 1.0..=359.0;

/// The intervals `change_every_seconds` accepts (0 means no timer). The floor keeps a
/// timer far inside Helix's 800 calls a minute per user and app, leaves room for the
/// changes chat messages trigger, and a color only shows on a message anyway, so faster
/// changes go unseen. The ceiling of a week keeps timer arithmetic far from overflow.
pub const CHANGE_EVERY_SECONDS_RANGE: std::ops::RangeInclusive<u64> = 10..=604_800;

/// A number for a message, short however it was written: `45`, `7.5`, `1e300`.
fn shown_number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else if value.is_finite() && (1e-4..1e15).contains(&value.abs()) {
        format!("{value}")
    } else {
        format!("{value:e}")
    }
}

/// `"random", "preset", "rainbow", "palette" or "readable"`, for fixes.
fn color_mode_choices() -> String {
    let quoted: Vec<String> = ColorModeName::ALL
        .iter()
        .map(|name| format!("\"{}\"", name.as_str()))
        .collect();
    let (last, rest) = quoted.split_last().expect("there are color modes");
    format!("{} or {last}", rest.join(", "))
}

fn check_color_mode_name(value: &str) -> Result<ColorModeName, Problem> {
    let wanted = value.trim();
    ColorModeName::ALL
        .into_iter()
        .find(|name| name.as_str().eq_ignore_ascii_case(wanted))
        .ok_or_else(|| {
            Problem::new(
                format!("\"{wanted}\" is not a color mode"),
                format!(
                    "use one of {} (see README \"Colors and chat commands\")",
                    color_mode_choices()
                ),
            )
        })
}

fn check_palette_order(value: &str) -> Result<PaletteOrder, Problem> {
    let wanted = value.trim();
    [PaletteOrder::Cycle, PaletteOrder::Random]
        .into_iter()
        .find(|order| palette_order_name(*order).eq_ignore_ascii_case(wanted))
        .ok_or_else(|| {
            Problem::new(
                format!("\"{wanted}\" is not a palette order"),
                "use \"cycle\" (in the listed order) or \"random\" (shuffled)",
            )
        })
}

fn check_rainbow_step(step_degrees: f64) -> Result<f64, Problem> {
    if step_degrees.is_finite() && RAINBOW_STEP_RANGE.contains(&step_degrees.abs()) {
        return Ok(step_degrees);
    }
    Err(Problem::new(
        format!(
            "{} is not a step from {} to {} degrees",
            shown_number(step_degrees),
            RAINBOW_STEP_RANGE.start(),
            RAINBOW_STEP_RANGE.end()
        ),
        format!(
            "use e.g. {DEFAULT_RAINBOW_STEP_DEGREES} (the default), or a negative step such \
             as -{DEFAULT_RAINBOW_STEP_DEGREES} to go round the other way"
        ),
    ))
}

/// The fix for a color that is not understood: every name Twitch knows, and the hex forms.
fn palette_color_fix() -> String {
    let names: Vec<&str> = NamedColor::ALL
        .iter()
        .map(|named| named.api_name())
        .collect();
    format!(
        "use a named color ({}; any case) or hex like \"#1E90FF\" or \"#ABC\"",
        names.join(", ")
    )
}

fn check_palette_color(value: &str) -> Result<Color, Problem> {
    color::parse_user_color(value).map_err(|error| {
        let message = match error {
            color::ColorParseError::Empty => "is empty".to_string(),
            not_a_color => not_a_color.to_string(),
        };
        Problem::new(message, palette_color_fix())
    })
}

/// `None` for 0 (no timer), the interval otherwise.
fn check_change_every_seconds(seconds: f64) -> Result<Option<Duration>, Problem> {
    let (minimum, maximum) = (
        *CHANGE_EVERY_SECONDS_RANGE.start(),
        *CHANGE_EVERY_SECONDS_RANGE.end(),
    );
    let fix = format!(
        "use a whole number of seconds from {minimum} to {maximum} (a week), or 0 to change \
         colors only when you chat"
    );
    if !seconds.is_finite() || seconds.fract() != 0.0 {
        return Err(Problem::new(
            format!("{} is not a whole number of seconds", shown_number(seconds)),
            fix,
        ));
    }
    if seconds == 0.0 {
        return Ok(None);
    }
    if seconds < 0.0 {
        return Err(Problem::new(
            format!("{} is negative", shown_number(seconds)),
            fix,
        ));
    }
    if seconds < minimum as f64 {
        return Err(Problem::new(
            format!(
                "{} is shorter than the minimum of {minimum} seconds",
                shown_number(seconds)
            ),
            fix,
        ));
    }
    if seconds > maximum as f64 {
        return Err(Problem::new(
            format!(
                "{} is longer than the maximum of {maximum} seconds",
                shown_number(seconds)
            ),
            fix,
        ));
    }
    Ok(Some(Duration::from_secs(seconds as u64)))
}

/// Puts the validated color settings together. `palette` must be non-empty when `name` is
/// `Palette`; settings the mode does not use are dropped.
fn build_color_mode(
    name: ColorModeName,
    rainbow_step: Option<f64>,
    palette: Vec<Color>,
    palette_order: PaletteOrder,
) -> ColorMode {
    match name {
        ColorModeName::Random => ColorMode::Random,
        ColorModeName::Preset => ColorMode::Preset,
        ColorModeName::Rainbow => ColorMode::Rainbow {
            step_degrees: rainbow_step.unwrap_or(DEFAULT_RAINBOW_STEP_DEGREES),
        },
        ColorModeName::Palette => ColorMode::Palette {
            colors: palette,
            order: palette_order,
        },
        ColorModeName::Readable => ColorMode::Readable,
    }
}

/// Users from `TWITCH_USERNAME_N` and friends, N = 1, 2, … until the first missing (or
/// empty) username. The caller passes the environment, e.g. `std::env::vars().collect()`.
pub fn users_from_env(vars: &[(String, String)]) -> Result<Vec<UserConfig>, ConfigError> {
    let get = |name: &str| {
        vars.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let mut users: Vec<UserConfig> = Vec::new();
    for n in 1.. {
        let username_var = format!("TWITCH_USERNAME_{n}");
        // An empty username counts as missing: compose files often template unused users
        // as `TWITCH_USERNAME_2=`.
        let Some(username) = get(&username_var).filter(|value| !value.trim().is_empty()) else {
            break;
        };
        let env_error = |variable: &str, problem: Problem| ConfigError::Env {
            variable: variable.to_string(),
            message: problem.message,
            fix: problem.fix,
        };
        let username = check_username(username).map_err(|p| env_error(&username_var, p))?;
        if let Some(first) = users.iter().position(|u| u.username == username) {
            return Err(env_error(
                &username_var,
                Problem::new(
                    format!("repeats TWITCH_USERNAME_{}", first + 1),
                    "each Twitch account may appear only once",
                ),
            ));
        }

        let client_id_var = format!("TWITCH_CLIENT_ID_{n}");
        let client_id = match get(&client_id_var) {
            None => Err(Problem::new("is missing", CLIENT_ID_FIX)),
            Some(value) => check_client_id(value),
        }
        .map_err(|p| env_error(&client_id_var, p))?;

        let optional = |prefix: &str| -> Result<String, ConfigError> {
            let variable = format!("{prefix}_{n}");
            let value = get(&variable).unwrap_or("").trim();
            let field = match prefix {
                "TWITCH_CLIENT_SECRET" => "client_secret",
                _ => "token",
            };
            check_not_placeholder(value, field).map_err(|p| env_error(&variable, p))?;
            Ok(value.to_string())
        };
        let client_secret = Secret::new(optional("TWITCH_CLIENT_SECRET")?);
        let access_token = Secret::token(&optional("TWITCH_ACCESS_TOKEN")?);
        let refresh_token = Secret::token(&optional("TWITCH_REFRESH_TOKEN")?);

        let channels_var = format!("TWITCH_CHANNELS_{n}");
        let names: Vec<&str> = get(&channels_var).unwrap_or("").split(',').collect();
        let channels = normalise_channels(&names, &username)
            .map_err(|(_, problem)| env_error(&channels_var, problem))?;

        let colors_var = format!("USE_RANDOM_COLORS_{n}");
        let is_prime_or_turbo = match get(&colors_var).map(str::trim) {
            None | Some("") => true,
            Some(value) => parse_env_bool(value).ok_or_else(|| {
                env_error(
                    &colors_var,
                    Problem::new(
                        format!("must be true or false, not \"{value}\""),
                        "use true (random colors, needs Turbo or Prime) or false (named colors)",
                    ),
                )
            })?,
        };

        let (color_mode, change_every) = env_colors(&get, n)?;

        users.push(UserConfig {
            username,
            client_id,
            client_secret,
            access_token,
            refresh_token,
            channels,
            is_prime_or_turbo,
            enabled: true,
            color_mode,
            change_every,
        });
    }
    Ok(users)
}

/// Reads `TWITCH_COLOR_MODE_N`, `TWITCH_RAINBOW_STEP_N`, `TWITCH_PALETTE_N` (comma list),
/// `TWITCH_PALETTE_ORDER_N` and `TWITCH_CHANGE_EVERY_SECONDS_N` with the same rules as the
/// file's fields. Unset or empty variables mean the defaults.
fn env_colors<'a>(
    get: &dyn Fn(&str) -> Option<&'a str>,
    n: usize,
) -> Result<(ColorMode, Option<Duration>), ConfigError> {
    let env_error = |variable: &str, problem: Problem| ConfigError::Env {
        variable: variable.to_string(),
        message: problem.message,
        fix: problem.fix,
    };
    // The variable's name and its value, when it is set to something.
    let value_of = |prefix: &str| {
        let variable = format!("{prefix}_{n}");
        let value = get(&variable).map(str::trim).filter(|v| !v.is_empty());
        (variable, value)
    };
    let number = |variable: &str, value: &str, unit: &str| {
        value.parse::<f64>().map_err(|_| {
            env_error(
                variable,
                Problem::new(
                    format!("must be a number of {unit}, not \"{value}\""),
                    format!("write digits only, e.g. {variable}=30"),
                ),
            )
        })
    };

    let (mode_var, mode_value) = value_of("TWITCH_COLOR_MODE");
    let mode_name = match mode_value {
        None => ColorModeName::Random,
        Some(value) => check_color_mode_name(value).map_err(|p| env_error(&mode_var, p))?,
    };

    let (step_var, step_value) = value_of("TWITCH_RAINBOW_STEP");
    let rainbow_step = match step_value {
        None => None,
        Some(value) => {
            let step_degrees = number(&step_var, value, "degrees")?;
            Some(check_rainbow_step(step_degrees).map_err(|p| env_error(&step_var, p))?)
        }
    };

    let (palette_var, palette_value) = value_of("TWITCH_PALETTE");
    let mut palette = Vec::new();
    // Empty entries are skipped, as in TWITCH_CHANNELS_N, so a trailing comma is harmless.
    let entries = palette_value.unwrap_or("").split(',').map(str::trim);
    for (entry_index, entry) in entries.enumerate().filter(|(_, e)| !e.is_empty()) {
        let color = check_palette_color(entry).map_err(|problem| {
            let message = format!("entry {} {}", entry_index + 1, problem.message);
            env_error(&palette_var, Problem::new(message, problem.fix))
        })?;
        palette.push(color);
    }
    if mode_name == ColorModeName::Palette && palette.is_empty() {
        return Err(env_error(
            &palette_var,
            Problem::new(
                format!("is empty, but {mode_var} is \"palette\""),
                format!("list your colors, e.g. {palette_var}=sea_green,#1E90FF,hot_pink"),
            ),
        ));
    }

    let (order_var, order_value) = value_of("TWITCH_PALETTE_ORDER");
    let palette_order = match order_value {
        None => PaletteOrder::default(),
        Some(value) => check_palette_order(value).map_err(|p| env_error(&order_var, p))?,
    };

    let (every_var, every_value) = value_of("TWITCH_CHANGE_EVERY_SECONDS");
    let change_every = match every_value {
        None => None,
        Some(value) => {
            let seconds = number(&every_var, value, "seconds")?;
            check_change_every_seconds(seconds).map_err(|p| env_error(&every_var, p))?
        }
    };

    let color_mode = build_color_mode(mode_name, rainbow_step, palette, palette_order);
    Ok((color_mode, change_every))
}

fn parse_env_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

/// One step of a path into a JSON document, for finding where a value is written.
#[derive(Clone, Copy)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// The byte offset where the value at `steps` starts in `text`, which must be valid JSON.
/// serde_json's tree keeps no positions, so this walks the text once more; it returns None
/// rather than guessing when anything is unexpected.
fn locate(text: &str, steps: &[Step]) -> Option<usize> {
    let mut scanner = Scanner {
        bytes: text.as_bytes(),
        text,
        offset: 0,
    };
    scanner.skip_whitespace();
    for step in steps {
        match *step {
            Step::Key(wanted) => scanner.enter_object_value(wanted)?,
            Step::Index(wanted) => scanner.enter_array_element(wanted)?,
        }
    }
    Some(scanner.offset)
}

struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    offset: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.offset).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.offset += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.skip_whitespace();
        (self.peek()? == byte).then(|| self.offset += 1)
    }

    /// Skips a string starting at the current `"`, returning its raw text with quotes.
    fn skip_string(&mut self) -> Option<&str> {
        let start = self.offset;
        self.offset += 1;
        loop {
            match self.peek()? {
                b'\\' => self.offset += 2,
                b'"' => {
                    self.offset += 1;
                    return self.text.get(start..self.offset);
                }
                _ => self.offset += 1,
            }
        }
    }

    fn skip_value(&mut self) -> Option<()> {
        self.skip_whitespace();
        match self.peek()? {
            b'"' => {
                self.skip_string()?;
            }
            open @ (b'{' | b'[') => {
                let close = if open == b'{' { b'}' } else { b']' };
                self.offset += 1;
                self.skip_whitespace();
                if self.peek()? == close {
                    self.offset += 1;
                    return Some(());
                }
                loop {
                    if open == b'{' {
                        self.skip_whitespace();
                        self.skip_string()?;
                        self.expect(b':')?;
                    }
                    self.skip_value()?;
                    self.skip_whitespace();
                    match self.peek()? {
                        b',' => self.offset += 1,
                        byte if byte == close => {
                            self.offset += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            _ => {
                // Numbers, true, false, null: everything up to the next delimiter.
                while !matches!(
                    self.peek(),
                    None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
                ) {
                    self.offset += 1;
                }
            }
        }
        Some(())
    }

    /// At an object, moves to the start of the value of key `wanted`.
    fn enter_object_value(&mut self, wanted: &str) -> Option<()> {
        self.expect(b'{')?;
        loop {
            self.skip_whitespace();
            if self.peek()? != b'"' {
                return None;
            }
            let raw_key = self.skip_string()?;
            let key: String = serde_json::from_str(raw_key).ok()?;
            self.expect(b':')?;
            self.skip_whitespace();
            if key == wanted {
                return Some(());
            }
            self.skip_value()?;
            self.expect(b',')?;
        }
    }

    /// At an array, moves to the start of element `wanted` (0-based).
    fn enter_array_element(&mut self, wanted: usize) -> Option<()> {
        self.expect(b'[')?;
        for _ in 0..wanted {
            self.skip_value()?;
            self.expect(b',')?;
        }
        self.skip_whitespace();
        (self.peek()? != b']').then_some(())
    }
}

/// 1-based line and character column of a byte offset.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const EXAMPLE: &str = include_str!("../../config.example.json");

    fn path() -> &'static Path {
        Path::new("config.json")
    }

    fn parse_ok(text: &str) -> Config {
        match parse(text, path()) {
            Ok((config, _)) => config,
            Err(error) => panic!("unexpected error for {text}: {error}"),
        }
    }

    fn parse_error(text: &str) -> String {
        match parse(text, path()) {
            Ok(_) => panic!("expected an error for {text}"),
            Err(error) => error.to_string(),
        }
    }

    /// A valid user object with `changes` applied (a `null` change removes the field).
    fn user_json(changes: Value) -> Value {
        let mut user = json!({
            "username": "alice",
            "client_id": "cid123",
            "client_secret": "csecret",
            "access_token": "atoken",
            "refresh_token": "rtoken",
        });
        for (key, value) in changes.as_object().unwrap() {
            if value.is_null() {
                user.as_object_mut().unwrap().remove(key);
            } else {
                user[key] = value.clone();
            }
        }
        user
    }

    fn one_user(changes: Value) -> String {
        serde_json::to_string_pretty(&json!({ "users": [user_json(changes)] })).unwrap()
    }

    #[test]
    fn minimal_user_gets_defaults() {
        let config = parse_ok(&one_user(json!({})));
        assert_eq!(
            config.users,
            vec![UserConfig {
                username: Login::new("alice"),
                client_id: "cid123".into(),
                client_secret: Secret::new("csecret"),
                access_token: Secret::new("atoken"),
                refresh_token: Secret::new("rtoken"),
                channels: vec![Login::new("alice")],
                is_prime_or_turbo: true,
                enabled: true,
                color_mode: ColorMode::Random,
                change_every: None,
            }]
        );
    }

    #[test]
    fn fields_are_read() {
        type Check = fn(&UserConfig) -> bool;
        let cases: [(Value, Check); 7] = [
            (json!({"is_prime_or_turbo": false}), |u: &UserConfig| {
                !u.is_prime_or_turbo && u.enabled
            }),
            (json!({"enabled": false}), |u: &UserConfig| {
                u.is_prime_or_turbo && !u.enabled
            }),
            (json!({"username": " #Alice "}), |u: &UserConfig| {
                u.username.as_str() == "alice"
            }),
            (json!({"client_id": " cid123 "}), |u: &UserConfig| {
                u.client_id == "cid123"
            }),
            (json!({"access_token": "oauth:abc"}), |u: &UserConfig| {
                u.access_token.expose() == "abc"
            }),
            (json!({"refresh_token": "OAuth:def"}), |u: &UserConfig| {
                u.refresh_token.expose() == "def"
            }),
            // Tokens and secret may be empty or absent: the device code flow fills them.
            (
                json!({"access_token": "", "refresh_token": null, "client_secret": ""}),
                |u: &UserConfig| {
                    u.access_token.is_empty()
                        && u.refresh_token.is_empty()
                        && u.client_secret.is_empty()
                },
            ),
        ];
        for (changes, check) in cases {
            let config = parse_ok(&one_user(changes.clone()));
            assert!(check(&config.users[0]), "changes {changes}");
        }
    }

    #[test]
    fn channels_are_normalised() {
        let cases: [(Value, &[&str]); 8] = [
            (json!(["bob"]), &["bob"]),
            (json!(["#Bob", " CAROL "]), &["bob", "carol"]),
            (json!(["bob", "#bob", "BOB", "carol"]), &["bob", "carol"]),
            (
                json!(["carol", "", "  ", "bob", "carol"]),
                &["carol", "bob"],
            ),
            (json!([]), &["alice"]),
            (json!(["", "#"]), &["alice"]),
            (json!(null), &["alice"]),
            (json!(["alice", "x_1"]), &["alice", "x_1"]),
        ];
        for (channels, expected) in cases {
            let config = parse_ok(&one_user(json!({ "channels": channels })));
            let got: Vec<&str> = config.users[0].channels.iter().map(Login::as_str).collect();
            assert_eq!(got, expected, "channels {channels}");
        }
    }

    #[test]
    fn empty_users_list_is_valid() {
        let cases = [
            r#"{"users": []}"#,
            "\u{feff}{\"users\": []}",
            r#"{"users":[],"x":1}"#,
        ];
        for text in cases {
            assert!(parse_ok(text).users.is_empty(), "{text}");
        }
    }

    #[test]
    fn syntax_errors_give_line_column_and_fix() {
        let cases = [
            // (text, line, column, words in the message)
            ("{\"users\": [}", 1, 12, "expected value"),
            ("{\n  \"users\": [],\n}", 3, 1, "remove the comma"),
            (
                "{\n  // comment\n  \"users\": []\n}",
                2,
                3,
                "use a \"_comment\" field",
            ),
            ("{\"users\": [\n", 2, 0, "ends too early"),
            ("{'users': []}", 1, 2, "double quotes"),
            (
                "{\"users\": [{\"username\": \"ä\" \"x\": 1}]}",
                1,
                29,
                "missing comma",
            ),
        ];
        for (text, line, column, words) in cases {
            let error = parse(text, path()).expect_err(text);
            let ConfigError::Syntax {
                line: got_line,
                column: got_column,
                ..
            } = &error
            else {
                panic!("not a syntax error for {text:?}: {error:?}");
            };
            assert_eq!(
                (*got_line, *got_column),
                (line, column),
                "{text:?}: {error}"
            );
            let shown = error.to_string();
            let prefix = format!("config.json:{line}:{column}: ");
            assert!(shown.starts_with(&prefix), "{shown}");
            assert!(shown.contains(" — "), "{shown}");
            assert!(shown.contains(words), "{text:?}: {shown}");
            assert!(!shown.contains(" at line "), "{shown}");
        }
    }

    #[test]
    fn semantic_errors_name_file_user_field_and_fix() {
        let two_users = |second: Value| {
            serde_json::to_string_pretty(&json!({
                "users": [user_json(json!({})), user_json(second)]
            }))
            .unwrap()
        };
        let cases: Vec<(String, &str)> = vec![
            ("".into(), "config.json: the file is empty — "),
            ("[]".into(), "config.json: the top level must be an object — "),
            (r#"{"user": []}"#.into(), "config.json: there is no \"users\" list — "),
            (
                r#"{"users": {}}"#.into(),
                "config.json:1:11: field \"users\" must be a list of users — ",
            ),
            (
                r#"{"users": [{"username": "a", "client_id": "c"}, 5]}"#.into(),
                "config.json:1:49: user 2: must be an object — ",
            ),
            (
                two_users(json!({"username": null})),
                "config.json:10:5: user 2: field \"username\" is missing — ",
            ),
            (
                two_users(json!({"username": " # "})),
                "config.json:11:19: user 2: field \"username\" is empty — ",
            ),
            (
                two_users(json!({"username": 7})),
                "user 2: field \"username\" must be a string — ",
            ),
            (
                two_users(json!({"username": "bob smith"})),
                "user 2 (bob smith): field \"username\" \"bob smith\" is not a Twitch login name — ",
            ),
            (
                two_users(json!({"username": "ALICE"})),
                "config.json:11:19: user 2 (alice): field \"username\" repeats user 1 — \
                 each Twitch account may appear only once",
            ),
            (
                two_users(json!({"username": "bob", "client_id": " "})),
                "user 2 (bob): field \"client_id\" is empty — set it to the client id of your \
                 Twitch app from https://dev.twitch.tv/console",
            ),
            (
                two_users(json!({"username": "bob", "client_id": null})),
                "user 2 (bob): field \"client_id\" is missing — ",
            ),
            (
                two_users(json!({"username": "bob", "client_id": 12})),
                "user 2 (bob): field \"client_id\" must be a string — ",
            ),
            (
                two_users(json!({"username": "bob", "access_token": 12})),
                "user 2 (bob): field \"access_token\" must be a string — ",
            ),
            (
                two_users(json!({"username": "bob", "client_secret": ["x"]})),
                "user 2 (bob): field \"client_secret\" must be a string — ",
            ),
            (
                two_users(json!({"username": "bob", "channels": "bob"})),
                "config.json:16:19: user 2 (bob): field \"channels\" must be a list of channel \
                 names — write it like [\"bob\"]",
            ),
            (
                two_users(json!({"username": "bob", "channels": ["bob", 3]})),
                "user 2 (bob): field \"channels\" entry 2 must be a string — ",
            ),
            (
                two_users(json!({"username": "bob", "channels": ["bob", "a b"]})),
                "user 2 (bob): field \"channels\" entry 2 \"a b\" is not a channel name — ",
            ),
            (
                two_users(json!({"username": "bob", "is_prime_or_turbo": "false"})),
                "user 2 (bob): field \"is_prime_or_turbo\" must be true or false — write it \
                 without quotes",
            ),
            (
                two_users(json!({"username": "bob", "enabled": 0})),
                "user 2 (bob): field \"enabled\" must be true or false — ",
            ),
        ];
        for (text, expected) in cases {
            let shown = parse_error(&text);
            assert!(
                shown.contains(expected),
                "{text}\ngot:      {shown}\nexpected: {expected}"
            );
            assert!(shown.starts_with("config.json"), "{shown}");
        }
    }

    #[test]
    fn placeholders_are_recognised_in_every_field() {
        let cases = [
            (json!({"username": "your_twitch_username"}), "username"),
            (json!({"username": "YOUR_TWITCH_USERNAME"}), "username"),
            (json!({"client_id": "your_client_id"}), "client_id"),
            (
                json!({"client_secret": "Your_Client_Secret"}),
                "client_secret",
            ),
            (json!({"access_token": "your_access_token"}), "access_token"),
            (
                json!({"access_token": "oauth:your_access_token"}),
                "access_token",
            ),
            (
                json!({"refresh_token": "your_refresh_token"}),
                "refresh_token",
            ),
            (
                json!({"channels": ["alice", "#some_friends_channel"]}),
                "channels",
            ),
        ];
        for (changes, field) in cases {
            let shown = parse_error(&one_user(changes.clone()));
            let expected_field = format!("field \"{field}\" ");
            assert!(shown.contains(&expected_field), "{changes}: {shown}");
            assert!(shown.contains("placeholder"), "{changes}: {shown}");
            assert!(shown.contains("replace it with"), "{changes}: {shown}");
        }
    }

    #[test]
    fn example_file_is_valid_json_and_fails_on_first_placeholder() {
        let example: Value = serde_json::from_str(EXAMPLE).expect("example is valid JSON");
        assert_eq!(example["users"].as_array().map(Vec::len), Some(2));
        let error = parse(EXAMPLE, Path::new("config.example.json")).unwrap_err();
        let ConfigError::Invalid(invalid) = &error else {
            panic!("not a semantic error: {error:?}");
        };
        assert_eq!(
            invalid.user.as_deref(),
            Some("user 1 (your_twitch_username)")
        );
        assert_eq!(invalid.field.as_deref(), Some("username"));
        assert_eq!(invalid.position, Some((6, 19)));
        let shown = error.to_string();
        assert!(
            shown.contains("placeholder \"your_twitch_username\""),
            "{shown}"
        );
        assert!(shown.contains("README \"Getting tokens\""), "{shown}");
    }

    #[test]
    fn example_file_parses_once_placeholders_are_replaced() {
        let filled = EXAMPLE
            .replace("your_second_twitch_username", "bob")
            .replace("your_twitch_username", "alice")
            .replace("some_friends_channel", "carol")
            .replace("\"your_", "\"real_");
        let config = parse_ok(&filled);
        let names: Vec<&str> = config.users.iter().map(|u| u.username.as_str()).collect();
        assert_eq!(names, ["alice", "bob"]);
        assert!(config.users[0].is_prime_or_turbo);
        assert!(!config.users[1].is_prime_or_turbo);
        let channels: Vec<&str> = config.users[1].channels.iter().map(Login::as_str).collect();
        assert_eq!(channels, ["bob", "carol"]);
        assert_eq!(config.users[0].color_mode, ColorMode::Random);
        assert_eq!(config.users[0].change_every, None);
        assert_eq!(
            config.users[1].color_mode,
            ColorMode::Palette {
                colors: colors(&["sea_green", "#1E90FF", "hot_pink"]),
                order: PaletteOrder::Cycle,
            }
        );
    }

    /// The example's first user with its mode switched still loads: the example's values
    /// for the fields that mode reads are valid.
    #[test]
    fn example_file_modes_all_load() {
        let filled = EXAMPLE
            .replace("your_second_twitch_username", "bob")
            .replace("your_twitch_username", "alice")
            .replace("some_friends_channel", "carol")
            .replace("\"your_", "\"real_");
        let cases = [
            ("\"preset\"", ColorMode::Preset),
            ("\"rainbow\"", ColorMode::Rainbow { step_degrees: 30.0 }),
            ("\"readable\"", ColorMode::Readable),
        ];
        for (mode, expected) in cases {
            let text = filled.replacen(
                "\"color_mode\": \"random\"",
                &format!("\"color_mode\": {mode}"),
                1,
            );
            assert_eq!(parse_ok(&text).users[0].color_mode, expected, "{mode}");
        }
        let text = filled.replacen(
            "\"change_every_seconds\": 0",
            "\"change_every_seconds\": 90",
            1,
        );
        assert_eq!(
            parse_ok(&text).users[0].change_every,
            Some(Duration::from_secs(90))
        );
    }

    fn colors(texts: &[&str]) -> Vec<Color> {
        texts
            .iter()
            .map(|text| color::parse_user_color(text).unwrap())
            .collect()
    }

    fn hex_color(r: u8, g: u8, b: u8) -> Color {
        Color::Hex(color::Rgb::new(r, g, b))
    }

    #[test]
    fn color_fields_are_read() {
        let rainbow = |step_degrees: f64| ColorMode::Rainbow { step_degrees };
        let palette =
            |colors: Vec<Color>, order: PaletteOrder| ColorMode::Palette { colors, order };
        let seconds = |n: u64| Some(Duration::from_secs(n));
        let cases: Vec<(Value, ColorMode, Option<Duration>)> = vec![
            (json!({}), ColorMode::Random, None),
            (
                json!({"color_mode": null, "rainbow_step": null, "palette": null,
                    "palette_order": null, "change_every_seconds": null}),
                ColorMode::Random,
                None,
            ),
            (json!({"color_mode": "random"}), ColorMode::Random, None),
            (json!({"color_mode": "Preset"}), ColorMode::Preset, None),
            (
                json!({"color_mode": " READABLE "}),
                ColorMode::Readable,
                None,
            ),
            (json!({"color_mode": "rainbow"}), rainbow(30.0), None),
            (
                json!({"color_mode": "rainbow", "rainbow_step": 45}),
                rainbow(45.0),
                None,
            ),
            (
                json!({"color_mode": "rainbow", "rainbow_step": 7.5}),
                rainbow(7.5),
                None,
            ),
            (
                json!({"color_mode": "rainbow", "rainbow_step": 1}),
                rainbow(1.0),
                None,
            ),
            (
                json!({"color_mode": "rainbow", "rainbow_step": 359}),
                rainbow(359.0),
                None,
            ),
            (
                json!({"color_mode": "rainbow", "rainbow_step": -30}),
                rainbow(-30.0),
                None,
            ),
            (
                json!({"color_mode": "rainbow", "rainbow_step": -359.0}),
                rainbow(-359.0),
                None,
            ),
            // Settings the mode does not use are validated, then dropped.
            (
                json!({"rainbow_step": 90, "palette": ["red"], "palette_order": "random"}),
                ColorMode::Random,
                None,
            ),
            (
                json!({"color_mode": "palette",
                       "palette": ["Sea_Green", "#1E90FF", "hot_pink", "abc", "a1B2c3", " RED "]}),
                palette(
                    vec![
                        Color::Named(NamedColor::SeaGreen),
                        hex_color(0x1E, 0x90, 0xFF),
                        Color::Named(NamedColor::HotPink),
                        hex_color(0xAA, 0xBB, 0xCC),
                        hex_color(0xA1, 0xB2, 0xC3),
                        Color::Named(NamedColor::Red),
                    ],
                    PaletteOrder::Cycle,
                ),
                None,
            ),
            (
                json!({"color_mode": "PALETTE", "palette": ["blue"], "palette_order": "cycle"}),
                palette(colors(&["blue"]), PaletteOrder::Cycle),
                None,
            ),
            (
                json!({"color_mode": "palette", "palette": ["blue", "red"], "palette_order": "Random"}),
                palette(colors(&["blue", "red"]), PaletteOrder::Random),
                None,
            ),
            (json!({"change_every_seconds": 0}), ColorMode::Random, None),
            (
                json!({"change_every_seconds": 0.0}),
                ColorMode::Random,
                None,
            ),
            (
                json!({"change_every_seconds": 10}),
                ColorMode::Random,
                seconds(10),
            ),
            (
                json!({"change_every_seconds": 60.0}),
                ColorMode::Random,
                seconds(60),
            ),
            (
                json!({"change_every_seconds": 604_800}),
                ColorMode::Random,
                seconds(604_800),
            ),
            (
                json!({"color_mode": "rainbow", "change_every_seconds": 300}),
                rainbow(30.0),
                seconds(300),
            ),
        ];
        for (changes, mode, change_every) in cases {
            let config = parse_ok(&one_user(changes.clone()));
            assert_eq!(config.users[0].color_mode, mode, "changes {changes}");
            assert_eq!(
                config.users[0].change_every, change_every,
                "changes {changes}"
            );
        }
    }

    #[test]
    fn color_field_errors_name_user_field_and_fix() {
        let cases: Vec<(Value, &str)> =
            vec![
            (
                json!({"color_mode": "sparkle"}),
                "user 1 (alice): field \"color_mode\" \"sparkle\" is not a color mode — use one \
                 of \"random\", \"preset\", \"rainbow\", \"palette\" or \"readable\"",
            ),
            (json!({"color_mode": ""}), "field \"color_mode\" \"\" is not a color mode — "),
            (
                json!({"color_mode": 3}),
                "field \"color_mode\" must be a string — write one of \"random\", ",
            ),
            (
                json!({"color_mode": ["rainbow"]}),
                "field \"color_mode\" must be a string — ",
            ),
            (
                json!({"rainbow_step": 0}),
                "field \"rainbow_step\" 0 is not a step from 1 to 359 degrees — use e.g. 30 \
                 (the default), or a negative step such as -30 to go round the other way",
            ),
            (json!({"rainbow_step": 0.5}), "field \"rainbow_step\" 0.5 is not a step "),
            (json!({"rainbow_step": 360}), "field \"rainbow_step\" 360 is not a step "),
            (json!({"rainbow_step": -360}), "field \"rainbow_step\" -360 is not a step "),
            (json!({"rainbow_step": -0.9}), "field \"rainbow_step\" -0.9 is not a step "),
            (json!({"rainbow_step": 1e300}), "field \"rainbow_step\" "),
            (
                json!({"rainbow_step": "30"}),
                "field \"rainbow_step\" must be a number of degrees — write it without quotes",
            ),
            (
                json!({"palette": "red"}),
                "field \"palette\" must be a list of colors — write it like [\"sea_green\", ",
            ),
            (
                json!({"palette": {"a": "red"}}),
                "field \"palette\" must be a list of colors — ",
            ),
            (
                json!({"palette": ["red", 5]}),
                "field \"palette[1]\" must be a string — write each color in quotes",
            ),
            (
                json!({"color_mode": "palette", "palette": ["red", "blue", "purple"]}),
                "field \"palette[2]\" \"purple\" is neither a color name nor #RRGGBB or #RGB hex \
                 — use a named color (blue, blue_violet, cadet_blue, chocolate, coral, \
                 dodger_blue, firebrick, golden_rod, green, hot_pink, orange_red, red, \
                 sea_green, spring_green, yellow_green; any case) or hex like \"#1E90FF\"",
            ),
            // A bad palette is an error even when the mode does not use it.
            (
                json!({"palette": ["#12345"]}),
                "field \"palette[0]\" \"#12345\" is neither a color name",
            ),
            (json!({"palette": ["red", "  "]}), "field \"palette[1]\" is empty — use a named"),
            (json!({"palette": ["#GGGGGG"]}), "field \"palette[0]\" \"#GGGGGG\" is neither"),
            (
                json!({"color_mode": "palette"}),
                "field \"palette\" is missing, but color_mode \"palette\" needs it — add \
                 \"palette\": [\"sea_green\", \"#1E90FF\", \"hot_pink\"] with your colors, or \
                 choose another color_mode",
            ),
            (
                json!({"color_mode": "palette", "palette": null}),
                "field \"palette\" is missing, but ",
            ),
            (
                json!({"color_mode": "palette", "palette": []}),
                "field \"palette\" is empty, but color_mode \"palette\" needs at least one color",
            ),
            (
                json!({"palette_order": "shuffle"}),
                "field \"palette_order\" \"shuffle\" is not a palette order — use \"cycle\" \
                 (in the listed order) or \"random\" (shuffled)",
            ),
            (
                json!({"palette_order": true}),
                "field \"palette_order\" must be a string — ",
            ),
            (
                json!({"change_every_seconds": 5}),
                "field \"change_every_seconds\" 5 is shorter than the minimum of 10 seconds — \
                 use a whole number of seconds from 10 to 604800 (a week), or 0 to change \
                 colors only when you chat",
            ),
            (
                json!({"change_every_seconds": -60}),
                "field \"change_every_seconds\" -60 is negative — ",
            ),
            (
                json!({"change_every_seconds": 30.5}),
                "field \"change_every_seconds\" 30.5 is not a whole number of seconds — ",
            ),
            (
                json!({"change_every_seconds": 604_801}),
                "field \"change_every_seconds\" 604801 is longer than the maximum of 604800 \
                 seconds — ",
            ),
            (
                json!({"change_every_seconds": "60"}),
                "field \"change_every_seconds\" must be a number of seconds — write it \
                 without quotes",
            ),
            (
                json!({"change_every_seconds": true}),
                "field \"change_every_seconds\" must be a number of seconds — ",
            ),
        ];
        for (changes, expected) in cases {
            let shown = parse_error(&one_user(changes.clone()));
            assert!(
                shown.contains(expected),
                "{changes}\ngot:      {shown}\nexpected: {expected}"
            );
            assert!(shown.starts_with("config.json:"), "{shown}");
            assert!(shown.contains("user 1 (alice): field "), "{shown}");
        }
    }

    #[test]
    fn color_field_errors_point_at_the_value() {
        let cases = [
            (
                "{\"users\": [{\"username\": \"alice\", \"client_id\": \"c\",\n  \
                 \"color_mode\": \"palette\", \"palette\": [\"red\", \"blue\", \"purple\"]}]}",
                "config.json:2:55: user 1 (alice): field \"palette[2]\" \"purple\" ",
            ),
            // A missing palette is pointed out at the mode that needs it.
            (
                "{\"users\": [{\"username\": \"alice\", \"client_id\": \"c\",\n  \
                 \"color_mode\": \"Palette\"}]}",
                "config.json:2:17: user 1 (alice): field \"palette\" is missing",
            ),
            (
                "{\"users\": [{\"username\": \"alice\", \"client_id\": \"c\",\n  \
                 \"palette\": [], \"color_mode\": \"palette\"}]}",
                "config.json:2:14: user 1 (alice): field \"palette\" is empty",
            ),
            (
                "{\"users\": [{\"username\": \"alice\", \"client_id\": \"c\",\n  \
                 \"rainbow_step\": 400}]}",
                "config.json:2:19: user 1 (alice): field \"rainbow_step\" 400 is not a step",
            ),
            (
                "{\"users\": [{\"username\": \"alice\", \"client_id\": \"c\",\n\
                 \"change_every_seconds\": 1}]}",
                "config.json:2:25: user 1 (alice): field \"change_every_seconds\" 1 is shorter",
            ),
        ];
        for (text, expected) in cases {
            let shown = parse_error(text);
            assert!(
                shown.starts_with(expected),
                "{text}\ngot:      {shown}\nexpected: {expected}"
            );
        }
    }

    #[test]
    fn errors_never_show_secrets() {
        let cases = [
            json!({"client_secret": 123456789}),
            json!({"access_token": {"v": "hunter2"}}),
            json!({"channels": 5, "access_token": "hunter2"}),
        ];
        for changes in cases {
            let shown = parse_error(&one_user(changes.clone()));
            assert!(
                !shown.contains("hunter2") && !shown.contains("123456789"),
                "{shown}"
            );
        }
        let config = parse_ok(&one_user(json!({"access_token": "hunter2"})));
        assert!(!format!("{config:?}").contains("hunter2"));
        let (_, document) = parse(&one_user(json!({"access_token": "hunter2"})), path()).unwrap();
        assert!(!format!("{document:?}").contains("hunter2"));
    }

    #[test]
    fn document_keeps_unknown_fields_and_key_order() {
        let text = r#"{
  "_comment": "top",
  "users": [
    {
      "_comment": "first",
      "username": "Alice",
      "access_token": "old",
      "client_id": "cid",
      "extra": {"nested": [1, 2]}
    },
    {"username": "bob", "client_id": "cid"}
  ],
  "later": true
}"#;
        let (_, mut document) = parse(text, path()).unwrap();
        assert!(document.set_user_field(&Login::new("ALICE"), "access_token", json!("new")));
        assert!(document.set_user_field(&Login::new("alice"), "refresh_token", json!("r2")));
        assert!(document.set_user_field(&Login::new("bob"), "enabled", json!(false)));
        assert!(!document.set_user_field(&Login::new("carol"), "enabled", json!(false)));
        let expected = r#"{
  "_comment": "top",
  "users": [
    {
      "_comment": "first",
      "username": "Alice",
      "access_token": "new",
      "client_id": "cid",
      "extra": {
        "nested": [
          1,
          2
        ]
      },
      "refresh_token": "r2"
    },
    {
      "username": "bob",
      "client_id": "cid",
      "enabled": false
    }
  ],
  "later": true
}
"#;
        assert_eq!(document.to_json_string(), expected);
        // What we write, we read back the same way.
        let (config, _) = parse(&document.to_json_string(), path()).unwrap();
        assert_eq!(config.users[0].access_token.expose(), "new");
        assert!(!config.users[1].enabled);
    }

    #[test]
    fn document_from_users_round_trips() {
        let users = vec![
            UserConfig {
                username: Login::new("alice"),
                client_id: "cid".into(),
                client_secret: Secret::new("sec"),
                access_token: Secret::new("at"),
                refresh_token: Secret::new("rt"),
                channels: vec![Login::new("alice"), Login::new("bob")],
                is_prime_or_turbo: false,
                enabled: true,
                color_mode: ColorMode::Random,
                change_every: None,
            },
            UserConfig {
                username: Login::new("bob"),
                client_id: "cid2".into(),
                client_secret: Secret::default(),
                access_token: Secret::default(),
                refresh_token: Secret::default(),
                channels: vec![Login::new("bob")],
                is_prime_or_turbo: true,
                enabled: false,
                color_mode: ColorMode::Random,
                change_every: None,
            },
        ];
        let document = Document::from_users(&users);
        let text = document.to_json_string();
        assert!(text.starts_with("{\n  \"users\": [\n    {\n      \"username\": \"alice\","));
        assert!(text.ends_with("}\n"));
        let (config, reparsed) = parse(&text, path()).unwrap();
        assert_eq!(config.users, users);
        assert_eq!(reparsed, document);
    }

    #[test]
    fn document_from_users_writes_only_color_fields_that_differ_from_defaults() {
        let user = |color_mode: ColorMode, change_every: Option<Duration>| UserConfig {
            username: Login::new("alice"),
            client_id: "cid".into(),
            client_secret: Secret::default(),
            access_token: Secret::default(),
            refresh_token: Secret::default(),
            channels: vec![Login::new("alice")],
            is_prime_or_turbo: true,
            enabled: true,
            color_mode,
            change_every,
        };
        let cases: Vec<(UserConfig, Value)> = vec![
            (user(ColorMode::Random, None), json!({})),
            (
                user(ColorMode::Preset, None),
                json!({"color_mode": "preset"}),
            ),
            (
                user(ColorMode::Readable, None),
                json!({"color_mode": "readable"}),
            ),
            (
                user(ColorMode::Rainbow { step_degrees: 30.0 }, None),
                json!({"color_mode": "rainbow"}),
            ),
            (
                user(
                    ColorMode::Rainbow {
                        step_degrees: -45.0,
                    },
                    None,
                ),
                json!({"color_mode": "rainbow", "rainbow_step": -45}),
            ),
            (
                user(ColorMode::Rainbow { step_degrees: 7.5 }, None),
                json!({"color_mode": "rainbow", "rainbow_step": 7.5}),
            ),
            (
                user(
                    ColorMode::Palette {
                        colors: colors(&["Sea_Green", "1e90ff", "#ABC"]),
                        order: PaletteOrder::Cycle,
                    },
                    None,
                ),
                json!({"color_mode": "palette", "palette": ["sea_green", "#1E90FF", "#AABBCC"]}),
            ),
            (
                user(
                    ColorMode::Palette {
                        colors: colors(&["red", "blue"]),
                        order: PaletteOrder::Random,
                    },
                    Some(Duration::from_secs(60)),
                ),
                json!({"color_mode": "palette", "palette": ["red", "blue"],
                       "palette_order": "random", "change_every_seconds": 60}),
            ),
            (
                user(ColorMode::Random, Some(Duration::from_secs(3600))),
                json!({"change_every_seconds": 3600}),
            ),
        ];
        let color_keys = [
            "color_mode",
            "rainbow_step",
            "palette",
            "palette_order",
            "change_every_seconds",
        ];
        for (user, expected) in cases {
            let document = Document::from_users(std::slice::from_ref(&user));
            let written = &document.root["users"][0];
            let mut got = Map::new();
            for key in color_keys {
                if let Some(value) = written.get(key) {
                    got.insert(key.to_string(), value.clone());
                }
            }
            assert_eq!(Value::Object(got), expected, "{user:?}");
            // What is written reads back as the same user.
            let (config, _) = parse(&document.to_json_string(), path()).unwrap();
            assert_eq!(config.users, [user]);
        }
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn env_users_are_read_until_the_first_gap() {
        let vars = env(&[
            ("TWITCH_USERNAME_1", "Alice"),
            ("TWITCH_CLIENT_ID_1", "cid1"),
            ("TWITCH_CLIENT_SECRET_1", "sec1"),
            ("TWITCH_ACCESS_TOKEN_1", "oauth:at1"),
            ("TWITCH_REFRESH_TOKEN_1", "rt1"),
            ("TWITCH_CHANNELS_1", "#Bob, carol,,bob"),
            ("USE_RANDOM_COLORS_1", "no"),
            ("TWITCH_USERNAME_2", "dave"),
            ("TWITCH_CLIENT_ID_2", "cid2"),
            // User 3 is missing, so user 4 is never read.
            ("TWITCH_USERNAME_4", "erin"),
            ("TWITCH_CLIENT_ID_4", "cid4"),
            ("PATH", "/usr/bin"),
        ]);
        let users = users_from_env(&vars).unwrap();
        assert_eq!(
            users,
            vec![
                UserConfig {
                    username: Login::new("alice"),
                    client_id: "cid1".into(),
                    client_secret: Secret::new("sec1"),
                    access_token: Secret::new("at1"),
                    refresh_token: Secret::new("rt1"),
                    channels: vec![Login::new("bob"), Login::new("carol")],
                    is_prime_or_turbo: false,
                    enabled: true,
                    color_mode: ColorMode::Random,
                    change_every: None,
                },
                UserConfig {
                    username: Login::new("dave"),
                    client_id: "cid2".into(),
                    client_secret: Secret::default(),
                    access_token: Secret::default(),
                    refresh_token: Secret::default(),
                    channels: vec![Login::new("dave")],
                    is_prime_or_turbo: true,
                    enabled: true,
                    color_mode: ColorMode::Random,
                    change_every: None,
                },
            ]
        );
        assert_eq!(users_from_env(&[]).unwrap(), vec![]);
        let blank = env(&[("TWITCH_USERNAME_1", " "), ("TWITCH_CLIENT_ID_1", "c")]);
        assert_eq!(users_from_env(&blank).unwrap(), vec![]);
    }

    #[test]
    fn env_use_random_colors_values() {
        let cases = [
            (None, Some(true)),
            (Some(""), Some(true)),
            (Some("true"), Some(true)),
            (Some("TRUE"), Some(true)),
            (Some("1"), Some(true)),
            (Some("yes"), Some(true)),
            (Some("false"), Some(false)),
            (Some(" False "), Some(false)),
            (Some("0"), Some(false)),
            (Some("no"), Some(false)),
            (Some("maybe"), None),
        ];
        for (value, expected) in cases {
            let mut vars = env(&[("TWITCH_USERNAME_1", "alice"), ("TWITCH_CLIENT_ID_1", "c")]);
            if let Some(value) = value {
                vars.push(("USE_RANDOM_COLORS_1".into(), value.into()));
            }
            match (users_from_env(&vars), expected) {
                (Ok(users), Some(expected)) => {
                    assert_eq!(users[0].is_prime_or_turbo, expected, "{value:?}")
                }
                (Err(error), None) => {
                    let shown = error.to_string();
                    assert!(
                        shown.starts_with("environment variable USE_RANDOM_COLORS_1 must be"),
                        "{shown}"
                    );
                }
                (result, _) => panic!("{value:?}: unexpected {result:?}"),
            }
        }
    }

    #[test]
    fn env_errors_name_the_variable() {
        let base = [
            ("TWITCH_USERNAME_1", "alice"),
            ("TWITCH_CLIENT_ID_1", "cid"),
            ("TWITCH_USERNAME_2", "bob"),
            ("TWITCH_CLIENT_ID_2", "cid"),
        ];
        type Overrides<'a> = &'a [(&'a str, &'a str)];
        let cases: [(Overrides, &str, &str); 8] = [
            (
                &[("TWITCH_CLIENT_ID_2", "")],
                "TWITCH_CLIENT_ID_2",
                "is empty",
            ),
            (&[("TWITCH_CLIENT_ID_2", "-")], "", ""),
            (
                &[("TWITCH_USERNAME_2", "Alice")],
                "TWITCH_USERNAME_2",
                "repeats TWITCH_USERNAME_1",
            ),
            (
                &[("TWITCH_USERNAME_2", "a-b")],
                "TWITCH_USERNAME_2",
                "is not a Twitch login",
            ),
            (
                &[("TWITCH_USERNAME_2", "your_twitch_username")],
                "TWITCH_USERNAME_2",
                "placeholder",
            ),
            (
                &[("TWITCH_ACCESS_TOKEN_2", "oauth:your_access_token")],
                "TWITCH_ACCESS_TOKEN_2",
                "placeholder",
            ),
            (
                &[("TWITCH_CHANNELS_2", "bob,c d")],
                "TWITCH_CHANNELS_2",
                "entry 2 \"c d\"",
            ),
            (
                &[("TWITCH_CLIENT_ID_1", "your_client_id")],
                "TWITCH_CLIENT_ID_1",
                "placeholder",
            ),
        ];
        for (overrides, variable, words) in cases {
            let mut vars = env(&base);
            for (key, value) in overrides.iter() {
                vars.retain(|(k, _)| k != key);
                vars.push((key.to_string(), value.to_string()));
            }
            let result = users_from_env(&vars);
            if variable.is_empty() {
                assert!(result.is_ok(), "{overrides:?}: {result:?}");
                continue;
            }
            let shown = result.expect_err(variable).to_string();
            let prefix = format!("environment variable {variable} ");
            assert!(shown.starts_with(&prefix), "{shown}");
            assert!(shown.contains(words), "{shown}");
            assert!(shown.contains(" — "), "{shown}");
        }
        let missing = env(&[("TWITCH_USERNAME_1", "alice")]);
        let shown = users_from_env(&missing).unwrap_err().to_string();
        assert!(
            shown.starts_with("environment variable TWITCH_CLIENT_ID_1 is missing — "),
            "{shown}"
        );
    }

    #[test]
    fn locate_finds_values() {
        let text = "{\"a\": [1, {\"b\\\"\": \"x,]}\", \"c\": [ true , null ]}], \"d\": {}}";
        let cases: [(&[Step], Option<&str>); 7] = [
            (&[Step::Key("a")], Some("[1,")),
            (
                &[Step::Key("a"), Step::Index(1), Step::Key("c")],
                Some("[ true"),
            ),
            (
                &[
                    Step::Key("a"),
                    Step::Index(1),
                    Step::Key("c"),
                    Step::Index(1),
                ],
                Some("null"),
            ),
            (
                &[Step::Key("a"), Step::Index(1), Step::Key("b\"")],
                Some("\"x,]}\""),
            ),
            (&[Step::Key("d")], Some("{}")),
            (&[Step::Key("a"), Step::Index(2)], None),
            (&[Step::Key("zz")], None),
        ];
        for (steps, expected) in cases {
            let got = locate(text, steps).map(|offset| &text[offset..]);
            match (got, expected) {
                (Some(got), Some(expected)) => assert!(got.starts_with(expected), "{got}"),
                (None, None) => {}
                (got, expected) => panic!("got {got:?}, expected {expected:?}"),
            }
        }
        assert_eq!(line_and_column("ab\ncäd", 6), (2, 3));
    }

    #[test]
    fn env_color_variables_are_read() {
        let rainbow = |step_degrees: f64| ColorMode::Rainbow { step_degrees };
        type Vars<'a> = &'a [(&'a str, &'a str)];
        let cases: Vec<(Vars, ColorMode, Option<Duration>)> = vec![
            (&[], ColorMode::Random, None),
            (
                &[
                    ("TWITCH_COLOR_MODE_1", " "),
                    ("TWITCH_RAINBOW_STEP_1", ""),
                    ("TWITCH_PALETTE_1", ""),
                    ("TWITCH_PALETTE_ORDER_1", ""),
                    ("TWITCH_CHANGE_EVERY_SECONDS_1", ""),
                ],
                ColorMode::Random,
                None,
            ),
            (
                &[("TWITCH_COLOR_MODE_1", "Preset")],
                ColorMode::Preset,
                None,
            ),
            (
                &[("TWITCH_COLOR_MODE_1", "readable")],
                ColorMode::Readable,
                None,
            ),
            (&[("TWITCH_COLOR_MODE_1", "RAINBOW")], rainbow(30.0), None),
            (
                &[
                    ("TWITCH_COLOR_MODE_1", "rainbow"),
                    ("TWITCH_RAINBOW_STEP_1", " -12.5 "),
                ],
                rainbow(-12.5),
                None,
            ),
            (
                &[
                    ("TWITCH_COLOR_MODE_1", "palette"),
                    ("TWITCH_PALETTE_1", "Sea_Green, #1E90FF,,hot_pink,"),
                ],
                ColorMode::Palette {
                    colors: colors(&["sea_green", "#1E90FF", "hot_pink"]),
                    order: PaletteOrder::Cycle,
                },
                None,
            ),
            (
                &[
                    ("TWITCH_COLOR_MODE_1", "palette"),
                    ("TWITCH_PALETTE_1", "red,ABC"),
                    ("TWITCH_PALETTE_ORDER_1", "random"),
                    ("TWITCH_CHANGE_EVERY_SECONDS_1", "120"),
                ],
                ColorMode::Palette {
                    colors: colors(&["red", "#AABBCC"]),
                    order: PaletteOrder::Random,
                },
                Some(Duration::from_secs(120)),
            ),
            (
                &[("TWITCH_CHANGE_EVERY_SECONDS_1", "0")],
                ColorMode::Random,
                None,
            ),
            // Another user's variables are not this user's.
            (
                &[("TWITCH_COLOR_MODE_2", "sparkle")],
                ColorMode::Random,
                None,
            ),
        ];
        for (extra, mode, change_every) in cases {
            let mut vars = env(&[("TWITCH_USERNAME_1", "alice"), ("TWITCH_CLIENT_ID_1", "c")]);
            vars.extend(env(extra));
            let users = users_from_env(&vars).unwrap();
            assert_eq!(users[0].color_mode, mode, "{extra:?}");
            assert_eq!(users[0].change_every, change_every, "{extra:?}");
            // Env users written to a new file read back the same.
            let text = Document::from_users(&users).to_json_string();
            assert_eq!(parse_ok(&text).users, users, "{extra:?}");
        }
    }

    #[test]
    fn env_color_variable_errors_name_the_variable() {
        type Vars<'a> = &'a [(&'a str, &'a str)];
        let cases: [(Vars, &str); 10] = [
            (
                &[("TWITCH_COLOR_MODE_1", "sparkle")],
                "environment variable TWITCH_COLOR_MODE_1 \"sparkle\" is not a color mode — use \
                 one of \"random\", ",
            ),
            (
                &[("TWITCH_RAINBOW_STEP_1", "fast")],
                "environment variable TWITCH_RAINBOW_STEP_1 must be a number of degrees, not \
                 \"fast\" — ",
            ),
            (
                &[("TWITCH_RAINBOW_STEP_1", "0")],
                "environment variable TWITCH_RAINBOW_STEP_1 0 is not a step from 1 to 359 \
                 degrees — ",
            ),
            (
                &[("TWITCH_RAINBOW_STEP_1", "inf")],
                "environment variable TWITCH_RAINBOW_STEP_1 inf is not a step ",
            ),
            (
                &[("TWITCH_COLOR_MODE_1", "palette")],
                "environment variable TWITCH_PALETTE_1 is empty, but TWITCH_COLOR_MODE_1 is \
                 \"palette\" — list your colors, e.g. TWITCH_PALETTE_1=sea_green,#1E90FF,hot_pink",
            ),
            (
                &[
                    ("TWITCH_COLOR_MODE_1", "palette"),
                    ("TWITCH_PALETTE_1", " , "),
                ],
                "environment variable TWITCH_PALETTE_1 is empty, but ",
            ),
            (
                &[("TWITCH_PALETTE_1", "red, purple")],
                "environment variable TWITCH_PALETTE_1 entry 2 \"purple\" is neither a color name \
                 nor #RRGGBB or #RGB hex — use a named color (",
            ),
            (
                &[("TWITCH_PALETTE_ORDER_1", "backwards")],
                "environment variable TWITCH_PALETTE_ORDER_1 \"backwards\" is not a palette order",
            ),
            (
                &[("TWITCH_CHANGE_EVERY_SECONDS_1", "1m")],
                "environment variable TWITCH_CHANGE_EVERY_SECONDS_1 must be a number of seconds, \
                 not \"1m\" — ",
            ),
            (
                &[("TWITCH_CHANGE_EVERY_SECONDS_1", "9")],
                "environment variable TWITCH_CHANGE_EVERY_SECONDS_1 9 is shorter than the minimum \
                 of 10 seconds — ",
            ),
        ];
        for (extra, expected) in cases {
            let mut vars = env(&[("TWITCH_USERNAME_1", "alice"), ("TWITCH_CLIENT_ID_1", "c")]);
            vars.extend(env(extra));
            let shown = users_from_env(&vars).expect_err(expected).to_string();
            assert!(
                shown.starts_with(expected),
                "{extra:?}\ngot:      {shown}\nexpected: {expected}"
            );
        }
    }

    #[test]
    fn shown_numbers_stay_short() {
        let cases = [
            (0.0, "0"),
            (-360.0, "-360"),
            (7.5, "7.5"),
            (1e300, "1e300"),
            (0.00001, "1e-5"),
            (f64::NAN, "NaN"),
        ];
        for (value, expected) in cases {
            assert_eq!(shown_number(value), expected);
        }
    }
}
