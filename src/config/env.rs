//! Users from the environment (`TWITCH_USERNAME_N` and friends) for container setups,
//! read by the same field reader as the file. Pure: the caller passes the variables in.

use super::fields::Problem;
use super::model::{ConfigError, Field, UserConfig};
use super::source::{read_user, EnvSource, Source};

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
