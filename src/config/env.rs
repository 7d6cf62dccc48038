//! Users from the environment (`TWITCH_USERNAME_N` and friends) for container setups,
//! read by the same field reader as the file (`source::read_user`) through this file's
//! `EnvSource`. Pure: the caller passes the variables in.

use crate::base::ids::Login;

use super::fields::Problem;
use super::model::{ConfigError, Field, UserConfig};
use super::source::{read_user, Source};

/// Users from `TWITCH_USERNAME_N` and friends, N = 1, 2, … until the first missing (or
/// empty) username. The caller passes the environment, e.g. `std::env::vars().collect()`.
pub fn users_from_env(vars: &[(String, String)]) -> Result<Vec<UserConfig>, ConfigError> {
    let mut users: Vec<UserConfig> = Vec::new();
    for n in 1.. {
        let source = EnvSource { vars, n };
        // An empty username counts as missing: compose files often template unused users
        // as `TWITCH_USERNAME_2=`.
        if source.text(Field::Username, "")?.is_none() {
            break;
        }
        let user = read_user(&source)?;
        if let Some(first) = users.iter().position(|u| u.username == user.username) {
            return Err(source.error(
                Field::Username,
                Problem::new(
                    format!("repeats TWITCH_USERNAME_{}", first + 1),
                    "each Twitch account may appear only once",
                ),
            ));
        }
        users.push(user);
    }
    Ok(users)
}

/// User `n`'s `TWITCH_*_N` environment variables.
pub(super) struct EnvSource<'a> {
    pub(super) vars: &'a [(String, String)],
    pub(super) n: usize,
}

impl EnvSource<'_> {
    fn variable(&self, field: Field) -> String {
        match field.env_prefix() {
            Some(prefix) => format!("{prefix}_{}", self.n),
            // Not settable from the environment; named for completeness only.
            None => field.key().to_string(),
        }
    }

    /// The variable's trimmed value, when it is set.
    fn raw(&self, field: Field) -> Option<&str> {
        field.env_prefix()?;
        let variable = self.variable(field);
        self.vars
            .iter()
            .find(|(key, _)| *key == variable)
            .map(|(_, value)| value.trim())
    }

    fn given(&self, field: Field) -> Option<&str> {
        self.raw(field).filter(|value| !value.is_empty())
    }
}

impl Source for EnvSource<'_> {
    fn is_set(&self, field: Field) -> bool {
        self.raw(field).is_some()
    }

    fn text(&self, field: Field, _fix: &str) -> Result<Option<&str>, ConfigError> {
        Ok(self.given(field))
    }

    fn number(&self, field: Field, unit: &str, example: &str) -> Result<Option<f64>, ConfigError> {
        let Some(value) = self.given(field) else {
            return Ok(None);
        };
        value.parse::<f64>().map(Some).map_err(|_| {
            let variable = self.variable(field);
            self.error(
                field,
                Problem::new(
                    format!("must be a number of {unit}, not \"{value}\""),
                    format!("write digits only, e.g. {variable}={example}"),
                ),
            )
        })
    }

    fn flag(&self, field: Field) -> Result<Option<bool>, ConfigError> {
        let Some(value) = self.given(field) else {
            return Ok(None);
        };
        match value.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(Some(true)),
            "false" | "0" | "no" => Ok(Some(false)),
            _ => Err(self.error(
                field,
                Problem::new(
                    format!("must be true or false, not \"{value}\""),
                    format!("use true or false, e.g. {}=false", self.variable(field)),
                ),
            )),
        }
    }

    fn list(
        &self,
        field: Field,
        _what: &str,
        _fix: &str,
        _entry_fix: &str,
    ) -> Result<Option<Vec<(usize, &str)>>, ConfigError> {
        // Blank entries are skipped but keep their place in the count, so that "entry 3"
        // is the third thing between commas and a trailing comma is harmless.
        Ok(self.given(field).map(|value| {
            value
                .split(',')
                .map(str::trim)
                .enumerate()
                .filter(|(_, entry)| !entry.is_empty())
                .collect()
        }))
    }

    fn name(&self, field: Field) -> String {
        self.variable(field)
    }

    fn example_text(&self, field: Field, value: &str) -> String {
        format!("{}={value}", self.variable(field))
    }

    fn example_list(&self, field: Field, items: &[&str]) -> String {
        format!("{}={}", self.variable(field), items.join(","))
    }

    fn error_at(&self, field: Field, _at: Field, problem: Problem) -> ConfigError {
        ConfigError::Env {
            variable: self.variable(field),
            message: problem.message,
            fix: problem.fix,
        }
    }

    fn entry_error(&self, field: Field, index: usize, problem: Problem) -> ConfigError {
        let message = format!("entry {} {}", index + 1, problem.message);
        self.error(field, Problem::new(message, problem.fix))
    }

    fn name_user(&self, _username: &Login) {}
}
