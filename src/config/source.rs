//! One reader for a user's fields, whichever source holds them: a user's object in the
//! config file or the `TWITCH_*_N` environment variables. A [`Source`] looks a field up and
//! builds the error that says where it is (file: line and column; environment: the
//! variable's name; the file's `FileSource` is in `parse.rs`, the environment's `EnvSource`
//! in `env.rs`); [`read_user`] holds every field's rules once, so a new setting is added in
//! one place. Pure. It imports neither source's file, so the imports run one way.

use crate::base::ids::Login;
use crate::base::secret::Secret;
use crate::color::Color;

use super::fields::{
    build_color_mode, channels_fix, check_change_every_seconds, check_chat_transport,
    check_client_id, check_color_mode_name, check_not_placeholder, check_palette_color,
    check_palette_order, check_rainbow_step, check_username, color_mode_choices,
    normalise_channels, secret_fix, ColorModeName, Problem, CLIENT_ID_FIX, MAX_EVENTSUB_CHANNELS,
};
use super::model::{ChatTransport, ConfigError, Field, UserConfig};

/// Where one user's fields are read from. Each lookup either gives the value, `None` when
/// the field is not given, or the error for a value of the wrong kind.
pub(super) trait Source {
    /// Whether the field is given at all: in the file present and not `null`, in the
    /// environment set (even to a blank value).
    fn is_set(&self, field: Field) -> bool;
    /// The field's text. The file's value must be a JSON string (`fix` says how to write
    /// it); an environment value is trimmed, and a blank one counts as not given.
    fn text(&self, field: Field, fix: &str) -> Result<Option<&str>, ConfigError>;
    /// A number of `unit`s; `example` is a good value, shown in the fix.
    fn number(&self, field: Field, unit: &str, example: &str) -> Result<Option<f64>, ConfigError>;
    fn flag(&self, field: Field) -> Result<Option<bool>, ConfigError>;
    /// The entries of a list of `what`, each with its 0-based index. The file's value must
    /// be a JSON list of strings (`fix`, `entry_fix`); the environment's is a comma list
    /// whose blank entries are skipped.
    fn list(
        &self,
        field: Field,
        what: &str,
        fix: &str,
        entry_fix: &str,
    ) -> Result<Option<Vec<(usize, &str)>>, ConfigError>;
    /// The field as messages name it: `color_mode`, `TWITCH_COLOR_MODE_1`.
    fn name(&self, field: Field) -> String;
    /// How to set a text field to `value` here: `"color_mode": "rainbow"`,
    /// `TWITCH_COLOR_MODE_1=rainbow`.
    fn example_text(&self, field: Field, value: &str) -> String;
    /// How to set a list field to `items` here.
    fn example_list(&self, field: Field, items: &[&str]) -> String;
    /// An error about `field`, shown where `at` is written (or where the user is, when
    /// `at` is not written at all).
    fn error_at(&self, field: Field, at: Field, problem: Problem) -> ConfigError;
    /// An error about entry `index` (0-based) of a list field.
    fn entry_error(&self, field: Field, index: usize, problem: Problem) -> ConfigError;
    /// From now on, errors name the user as `username`.
    fn name_user(&self, username: &Login);

    fn error(&self, field: Field, problem: Problem) -> ConfigError {
        self.error_at(field, field, problem)
    }
}

/// A field that takes one of `values`: its default when not given, else what `check` makes
/// of it. The fix for a value of the wrong type names every value as this source writes it
/// (`write "cycle" or "random"`).
fn one_of<T: Default>(
    source: &dyn Source,
    field: Field,
    values: &[&str],
    check: fn(&str) -> Result<T, Problem>,
) -> Result<T, ConfigError> {
    let mut examples: Vec<String> = values
        .iter()
        .map(|value| source.example_text(field, value))
        .collect();
    let last = examples.pop().unwrap_or_default();
    let fix = if examples.is_empty() {
        format!("write {last}")
    } else {
        format!("write {} or {last}", examples.join(", "))
    };
    match source.text(field, &fix)? {
        None => Ok(T::default()),
        Some(value) => check(value).map_err(|problem| source.error(field, problem)),
    }
}

/// "is missing" or "is empty", whichever a field that gave no value is.
fn not_given(source: &dyn Source, field: Field) -> &'static str {
    if source.is_set(field) {
        "is empty"
    } else {
        "is missing"
    }
}

/// Reads and validates one user's fields, in the order a person reads them in the file.
/// Every field that is given is validated, even one the chosen color mode does not use, so
/// that switching modes later cannot reveal an old mistake. The fields with more than one
/// rule have a reader each; this one stays a list of fields, one line or match per field.
pub(super) fn read_user(source: &dyn Source) -> Result<UserConfig, ConfigError> {
    let username = read_username(source)?;
    source.name_user(&username);

    let client_id = match source.text(Field::ClientId, CLIENT_ID_FIX)? {
        None => Err(Problem::new(
            not_given(source, Field::ClientId),
            CLIENT_ID_FIX,
        )),
        Some(value) => check_client_id(value),
    }
    .map_err(|problem| source.error(Field::ClientId, problem))?;

    let client_secret = Secret::new(read_secret(source, Field::ClientSecret)?);
    let access_token = Secret::token(&read_secret(source, Field::AccessToken)?);
    let refresh_token = Secret::token(&read_secret(source, Field::RefreshToken)?);

    let fix = channels_fix(&username);
    let channels = match source.list(Field::Channels, "channel names", &fix, &fix)? {
        None => vec![username.clone()],
        Some(entries) => normalise_channels(&entries, &username)
            .map_err(|(index, problem)| source.entry_error(Field::Channels, index, problem))?,
    };

    let is_prime_or_turbo = source.flag(Field::IsPrimeOrTurbo)?.unwrap_or(true);
    let enabled = source.flag(Field::Enabled)?.unwrap_or(true);

    let mode_fix = format!(
        "write one of {} in quotes, e.g. {}",
        color_mode_choices(),
        source.example_text(Field::ColorMode, "rainbow")
    );
    let mode_name = match source.text(Field::ColorMode, &mode_fix)? {
        None => ColorModeName::Random,
        Some(value) => check_color_mode_name(value)
            .map_err(|problem| source.error(Field::ColorMode, problem))?,
    };

    let rainbow_step = match source.number(Field::RainbowStep, "degrees", "30")? {
        None => None,
        Some(step_degrees) => Some(
            check_rainbow_step(step_degrees)
                .map_err(|problem| source.error(Field::RainbowStep, problem))?,
        ),
    };

    let palette = read_palette(source, mode_name)?;
    let palette_order = one_of(
        source,
        Field::PaletteOrder,
        &["cycle", "random"],
        check_palette_order,
    )?;

    let change_every = match source.number(Field::ChangeEverySeconds, "seconds", "60")? {
        None => None,
        Some(seconds) => check_change_every_seconds(seconds)
            .map_err(|problem| source.error(Field::ChangeEverySeconds, problem))?,
    };

    let chat_transport = one_of(
        source,
        Field::ChatTransport,
        &["auto", "irc", "eventsub"],
        check_chat_transport,
    )?;
    if chat_transport == ChatTransport::EventSub && channels.len() > MAX_EVENTSUB_CHANNELS {
        let problem = Problem::new(
            format!(
                "{} channels are more than EventSub reads for one user: Twitch allows {MAX_EVENTSUB_CHANNELS} subscriptions on one WebSocket session",
                channels.len()
            ),
            format!(
                "set {} (IRC reads any number of channels), or keep at most {MAX_EVENTSUB_CHANNELS} channels",
                source.example_text(Field::ChatTransport, "auto")
            ),
        );
        return Err(source.error_at(Field::Channels, Field::ChatTransport, problem));
    }

    Ok(UserConfig {
        username,
        client_id,
        client_secret,
        access_token,
        refresh_token,
        channels,
        is_prime_or_turbo,
        enabled,
        color_mode: build_color_mode(mode_name, rainbow_step, palette, palette_order),
        change_every,
        chat_transport,
    })
}

/// The user's Twitch login, which must be given. An invalid one still names the user in
/// the error when it is readable at all.
fn read_username(source: &dyn Source) -> Result<Login, ConfigError> {
    let username_fix = format!(
        "write your Twitch login name in quotes, e.g. {}",
        source.example_text(Field::Username, "bob")
    );
    let Some(raw_username) = source.text(Field::Username, &username_fix)? else {
        let problem = Problem::new(
            not_given(source, Field::Username),
            format!(
                "add {}",
                source.example_text(Field::Username, "<your Twitch login name>")
            ),
        );
        return Err(source.error(Field::Username, problem));
    };
    check_username(raw_username).map_err(|problem| {
        let shown = Login::new(raw_username);
        if !shown.as_str().is_empty() {
            source.name_user(&shown);
        }
        source.error(Field::Username, problem)
    })
}

/// A secret field, trimmed; empty when not given, refused when it is still a placeholder.
/// Secrets are never echoed in an error.
fn read_secret(source: &dyn Source, field: Field) -> Result<String, ConfigError> {
    let value = source.text(field, &secret_fix(field))?.unwrap_or("");
    check_not_placeholder(value, field).map_err(|problem| source.error(field, problem))?;
    Ok(value.trim().to_string())
}

/// The palette's colors, each checked. The palette mode needs at least one: a palette
/// that is not written at all is pointed out where that mode is chosen.
fn read_palette(source: &dyn Source, mode_name: ColorModeName) -> Result<Vec<Color>, ConfigError> {
    const EXAMPLE_PALETTE: [&str; 3] = ["sea_green", "#1E90FF", "hot_pink"];
    let mut palette = Vec::new();
    let entries = source.list(
        Field::Palette,
        "colors",
        "write it like [\"sea_green\", \"#1E90FF\", \"hot_pink\"]",
        "write each color in quotes, e.g. \"sea_green\" or \"#1E90FF\"",
    )?;
    for (index, entry) in entries.unwrap_or_default() {
        let color = check_palette_color(entry)
            .map_err(|problem| source.entry_error(Field::Palette, index, problem))?;
        palette.push(color);
    }
    if mode_name == ColorModeName::Palette && palette.is_empty() {
        let at = if source.is_set(Field::Palette) {
            Field::Palette
        } else {
            Field::ColorMode
        };
        let problem = Problem::new(
            format!(
                "{}, but {} is \"palette\"",
                not_given(source, Field::Palette),
                source.name(Field::ColorMode)
            ),
            format!(
                "add {} with your colors, or choose another {}",
                source.example_list(Field::Palette, &EXAMPLE_PALETTE),
                source.name(Field::ColorMode)
            ),
        );
        return Err(source.error_at(Field::Palette, at, problem));
    }
    Ok(palette)
}
