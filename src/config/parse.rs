//! The config file's text into a validated `Config`: JSON syntax errors with their
//! position and fix, then every user's fields, read by `source::read_user` through this file's
//! `FileSource`. Pure: text in, config or error out.

use std::cell::RefCell;
use std::path::Path;

use serde_json::{Map, Value};

use crate::base::ids::Login;

use super::document::Document;
use super::fields::Problem;
use super::locate::{line_and_column, locate, PathSegment};
use super::model::{Config, ConfigError, Field, InvalidConfig, UserConfig};
use super::source::{read_user, Source};
use super::upstream::{conversion_note, convert_expiries, Shape, UPSTREAM_EXPIRY};

/// Parses and validates a config file's text. `path` is only used in error messages.
pub fn parse(text: &str, path: &Path) -> Result<(Config, Document), ConfigError> {
    // Editors on Windows like to start UTF-8 files with a byte order mark; JSON has none.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut file = FileContext {
        path,
        text,
        shape: Shape::Users,
    };
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
    // Upstream's other shapes are read as this one; errors still point into the file as
    // written.
    file.shape = Shape::of(&root);
    let mut root = file.shape.wrap(root);
    let n_expiries = convert_expiries(&mut root).map_err(|index| {
        let username = root["users"][index]
            .get(Field::Username.key())
            .and_then(Value::as_str)
            .map(Login::new);
        file.invalid(
            Some(&file.user_label(index, username.as_ref())),
            Some(UPSTREAM_EXPIRY),
            &[
                PathSegment::Key("users"),
                PathSegment::Index(index),
                PathSegment::Key(UPSTREAM_EXPIRY),
            ],
            "is not a date and time",
            "write it as 2025-01-31T12:00:00, or remove it (the daemon checks the token at start)",
        )
    })?;
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
                    &[PathSegment::Key("users")],
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
                Some(Field::Username.key()),
                &[
                    PathSegment::Key("users"),
                    PathSegment::Index(index),
                    PathSegment::Key(Field::Username.key()),
                ],
                &format!("repeats user {}", first + 1),
                "each Twitch account may appear only once: merge the two entries",
            ));
        }
        users.push(user);
    }
    let upstream = conversion_note(file.shape, n_expiries);
    Ok((Config { users }, Document { root, upstream }))
}

/// The file being parsed, for building errors that say where the problem is.
pub(super) struct FileContext<'a> {
    pub(super) path: &'a Path,
    pub(super) text: &'a str,
    /// How the file's top level is laid out, to find positions in its text.
    pub(super) shape: Shape,
}

impl FileContext<'_> {
    pub(super) fn invalid(
        &self,
        user: Option<&str>,
        field: Option<&str>,
        steps: &[PathSegment],
        message: &str,
        fix: &str,
    ) -> ConfigError {
        let steps = self.shape.original_steps(steps);
        let position = if steps.is_empty() {
            None
        } else {
            locate(self.text, &steps).map(|offset| line_and_column(self.text, offset))
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
    let Some(object) = user_json.as_object() else {
        return Err(file.invalid(
            Some(&file.user_label(index, None)),
            None,
            &[PathSegment::Key("users"), PathSegment::Index(index)],
            "must be an object",
            "write each user as {\"username\": \"...\", \"client_id\": \"...\", ...}, \
             see config.example.json",
        ));
    };
    read_user(&FileSource::new(file, index, object))
}

/// One user's object in the config file, the `index`-th of `users`.
pub(super) struct FileSource<'a> {
    pub(super) file: &'a FileContext<'a>,
    pub(super) index: usize,
    pub(super) object: &'a Map<String, Value>,
    /// The user's name once it is known, for "user 2 (bob)" in messages.
    pub(super) username: RefCell<Option<Login>>,
}

impl<'a> FileSource<'a> {
    pub(super) fn new(
        file: &'a FileContext<'a>,
        index: usize,
        object: &'a Map<String, Value>,
    ) -> FileSource<'a> {
        FileSource {
            file,
            index,
            object,
            username: RefCell::new(None),
        }
    }

    fn given(&self, field: Field) -> Option<&Value> {
        self.object
            .get(field.key())
            .filter(|value| !value.is_null())
    }

    fn label(&self) -> String {
        self.file
            .user_label(self.index, self.username.borrow().as_ref())
    }

    fn invalid(&self, field: Field, steps: &[PathSegment], problem: Problem) -> ConfigError {
        self.file.invalid(
            Some(&self.label()),
            Some(field.key()),
            steps,
            &problem.message,
            &problem.fix,
        )
    }
}

impl Source for FileSource<'_> {
    fn is_set(&self, field: Field) -> bool {
        self.given(field).is_some()
    }

    fn text(&self, field: Field, fix: &str) -> Result<Option<&str>, ConfigError> {
        match self.given(field) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            // The value is never echoed: it may be a secret.
            Some(_) => Err(self.error(field, Problem::new("must be a string", fix))),
        }
    }

    fn number(&self, field: Field, unit: &str, example: &str) -> Result<Option<f64>, ConfigError> {
        match self.given(field) {
            None => Ok(None),
            // Every JSON number has an f64 value; NaN only marks an impossible miss.
            Some(Value::Number(number)) => Ok(Some(number.as_f64().unwrap_or(f64::NAN))),
            Some(_) => Err(self.error(
                field,
                Problem::new(
                    format!("must be a number of {unit}"),
                    format!(
                        "write it without quotes, e.g. \"{}\": {example}",
                        field.key()
                    ),
                ),
            )),
        }
    }

    fn flag(&self, field: Field) -> Result<Option<bool>, ConfigError> {
        match self.given(field) {
            None => Ok(None),
            Some(Value::Bool(value)) => Ok(Some(*value)),
            Some(_) => Err(self.error(
                field,
                Problem::new(
                    "must be true or false",
                    format!("write it without quotes, e.g. \"{}\": false", field.key()),
                ),
            )),
        }
    }

    fn list(
        &self,
        field: Field,
        what: &str,
        fix: &str,
        entry_fix: &str,
    ) -> Result<Option<Vec<(usize, &str)>>, ConfigError> {
        match self.given(field) {
            None => Ok(None),
            Some(Value::Array(entries)) => {
                let mut texts = Vec::with_capacity(entries.len());
                for (index, entry) in entries.iter().enumerate() {
                    match entry.as_str() {
                        Some(text) => texts.push((index, text)),
                        None => {
                            let problem = Problem::new("must be a string", entry_fix);
                            return Err(self.entry_error(field, index, problem));
                        }
                    }
                }
                Ok(Some(texts))
            }
            Some(_) => Err(self.error(
                field,
                Problem::new(format!("must be a list of {what}"), fix),
            )),
        }
    }

    fn name(&self, field: Field) -> String {
        field.key().to_string()
    }

    fn example_text(&self, field: Field, value: &str) -> String {
        format!("\"{}\": \"{value}\"", field.key())
    }

    fn example_list(&self, field: Field, items: &[&str]) -> String {
        let quoted: Vec<String> = items.iter().map(|item| format!("\"{item}\"")).collect();
        format!("\"{}\": [{}]", field.key(), quoted.join(", "))
    }

    fn error_at(&self, field: Field, at: Field, problem: Problem) -> ConfigError {
        let user = [PathSegment::Key("users"), PathSegment::Index(self.index)];
        let value = [user[0], user[1], PathSegment::Key(at.key())];
        // A field that is not written has no position of its own: point at the user.
        let steps: &[PathSegment] = if self.object.contains_key(at.key()) {
            &value
        } else {
            &user
        };
        self.invalid(field, steps, problem)
    }

    fn entry_error(&self, field: Field, index: usize, problem: Problem) -> ConfigError {
        let steps = [
            PathSegment::Key("users"),
            PathSegment::Index(self.index),
            PathSegment::Key(field.key()),
            PathSegment::Index(index),
        ];
        let message = format!("entry {} {}", index + 1, problem.message);
        self.invalid(field, &steps, Problem::new(message, problem.fix))
    }

    fn name_user(&self, username: &Login) {
        *self.username.borrow_mut() = Some(username.clone());
    }
}
