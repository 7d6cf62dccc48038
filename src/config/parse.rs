//! The config file's text into a validated `Config`: JSON syntax errors with their
//! position and fix, then every user's fields. Pure: text in, config or error out.

use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::base::ids::Login;
use crate::base::secret::Secret;
use crate::color::{ColorMode, PaletteOrder};

use super::document::Document;
use super::fields::{
    build_color_mode, channels_fix, check_change_every_seconds, check_client_id,
    check_color_mode_name, check_not_placeholder, check_palette_color, check_palette_order,
    check_rainbow_step, check_username, color_mode_choices, normalise_channels, secret_fix,
    ColorModeName, Problem, CLIENT_ID_FIX,
};
use super::locate::{line_and_column, locate, Step};
use super::model::{Config, ConfigError, InvalidConfig, UserConfig};

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
pub(super) struct FileContext<'a> {
    pub(super) path: &'a Path,
    pub(super) text: &'a str,
}

impl FileContext<'_> {
    pub(super) fn invalid(
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

    pub(super) fn user_label(&self, index: usize, username: Option<&Login>) -> String {
        match username {
            Some(username) => format!("user {} ({username})", index + 1),
            None => format!("user {}", index + 1),
        }
    }
}

pub(super) fn syntax_error(error: &serde_json::Error, file: &FileContext) -> ConfigError {
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
pub(super) fn syntax_fix(
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

pub(super) fn parse_file_user(
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
pub(super) fn parse_file_colors(
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
