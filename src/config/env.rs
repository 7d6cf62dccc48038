//! Users from the environment (`TWITCH_USERNAME_N` and friends) for container setups,
//! validated with the same checks as the file. Pure: the caller passes the variables in.

use std::time::Duration;

use crate::base::secret::Secret;
use crate::color::{ColorMode, PaletteOrder};

use super::fields::{
    build_color_mode, check_change_every_seconds, check_client_id, check_color_mode_name,
    check_not_placeholder, check_palette_color, check_palette_order, check_rainbow_step,
    check_username, normalise_channels, ColorModeName, Problem, CLIENT_ID_FIX,
};
use super::model::{ConfigError, UserConfig};

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
pub(super) fn env_colors<'a>(
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

pub(super) fn parse_env_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}
