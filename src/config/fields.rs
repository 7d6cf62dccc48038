//! The checks every config value goes through, whether it came from the file or the
//! environment: names, channels, placeholders, color settings, each with its fix. Pure.

use std::collections::HashSet;
use std::time::Duration;

use crate::base::ids::Login;
use crate::color::{
    self, Color, ColorMode, NamedColor, PaletteOrder, DEFAULT_RAINBOW_STEP_DEGREES,
};

use super::model::{ChatTransport, Field};

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
pub(super) const GETTING_TOKENS: &str = "see README \"Getting tokens\"";

/// A problem with one value, before we know whether it came from the file or the
/// environment.
/// Channels one user may read over EventSub: Twitch enables at most 300 subscriptions on one
/// WebSocket session (dev.twitch.tv/docs/eventsub/handling-websocket-events, "Subscription
/// limits"), and each channel is one. Here, where config checks it; `chat::transport` reads
/// it to choose IRC under `auto`.
pub const MAX_EVENTSUB_CHANNELS: usize = 300;

pub(super) struct Problem {
    pub(super) message: String,
    pub(super) fix: String,
}

impl Problem {
    pub(super) fn new(message: impl Into<String>, fix: impl Into<String>) -> Problem {
        Problem {
            message: message.into(),
            fix: fix.into(),
        }
    }
}

pub(super) const CLIENT_ID_FIX: &str = "set it to the client id of your Twitch app from \
                             https://dev.twitch.tv/console (see README \"Getting tokens\")";

pub(super) fn secret_fix(field: Field) -> String {
    match field {
        Field::ClientSecret => format!(
            "set it to the client secret of your Twitch app from https://dev.twitch.tv/console, \
             or \"\" for an app without one ({GETTING_TOKENS})"
        ),
        _ => format!(
            "set it to a token with scopes chat:read and user:manage:chat_color, or to \"\" \
             to log in with a device code ({GETTING_TOKENS})"
        ),
    }
}

pub(super) fn channels_fix(username: &Login) -> String {
    format!("write it like [\"{username}\"], or leave it out to watch your own channel")
}

/// A Twitch login: 1 to 25 ASCII letters, digits and underscores.
pub(super) fn is_valid_login(login: &Login) -> bool {
    let name = login.as_str();
    (1..=25).contains(&name.len())
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
}

pub(super) fn check_username(value: &str) -> Result<Login, Problem> {
    let username = Login::new(value);
    if username.as_str().is_empty() {
        return Err(Problem::new(
            "is empty",
            "set it to your Twitch login name, e.g. \"bob\"",
        ));
    }
    check_not_placeholder(value, Field::Username)?;
    if !is_valid_login(&username) {
        return Err(Problem::new(
            format!("\"{}\" is not a Twitch login name", value.trim()),
            "use the login name from your Twitch URL: 1 to 25 letters, digits or _",
        ));
    }
    Ok(username)
}

pub(super) fn check_client_id(value: &str) -> Result<String, Problem> {
    let client_id = value.trim();
    if client_id.is_empty() {
        return Err(Problem::new("is empty", CLIENT_ID_FIX));
    }
    check_not_placeholder(client_id, Field::ClientId)?;
    Ok(client_id.to_string())
}

/// The placeholder `value` is, if it is one of [`PLACEHOLDERS`].
pub(super) fn placeholder_in(value: &str) -> Option<&'static str> {
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

pub(super) fn check_not_placeholder(value: &str, field: Field) -> Result<(), Problem> {
    let Some(placeholder) = placeholder_in(value) else {
        return Ok(());
    };
    let replacement = match field {
        Field::Username => format!("your Twitch login name ({GETTING_TOKENS})"),
        Field::Channels => "the name of a channel to watch, or remove it".to_string(),
        Field::ClientId | Field::ClientSecret => format!(
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
/// `names` are the entries with their 0-based index; on error, returns the index of the
/// bad entry.
pub(super) fn normalise_channels(
    names: &[(usize, &str)],
    owner: &Login,
) -> Result<Vec<Login>, (usize, Problem)> {
    let mut seen = HashSet::new();
    let mut channels = Vec::new();
    for &(index, name) in names {
        let channel = Login::new(name);
        if channel.as_str().is_empty() {
            continue;
        }
        check_not_placeholder(name, Field::Channels).map_err(|problem| (index, problem))?;
        if !is_valid_login(&channel) {
            let problem = Problem::new(
                format!("\"{}\" is not a channel name", name.trim()),
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
pub(super) enum ColorModeName {
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

    pub(super) fn as_str(self) -> &'static str {
        match self {
            ColorModeName::Random => "random",
            ColorModeName::Preset => "preset",
            ColorModeName::Rainbow => "rainbow",
            ColorModeName::Palette => "palette",
            ColorModeName::Readable => "readable",
        }
    }

    pub(super) fn of(mode: &ColorMode) -> ColorModeName {
        match mode {
            ColorMode::Random => ColorModeName::Random,
            ColorMode::Preset => ColorModeName::Preset,
            ColorMode::Rainbow { .. } => ColorModeName::Rainbow,
            ColorMode::Palette { .. } => ColorModeName::Palette,
            ColorMode::Readable => ColorModeName::Readable,
        }
    }
}

pub(super) fn palette_order_name(order: PaletteOrder) -> &'static str {
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
pub(super) fn shown_number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else if value.is_finite() && (1e-4..1e15).contains(&value.abs()) {
        format!("{value}")
    } else {
        format!("{value:e}")
    }
}

/// `"random", "preset", "rainbow", "palette" or "readable"`, for fixes.
pub(super) fn color_mode_choices() -> String {
    let quoted: Vec<String> = ColorModeName::ALL
        .iter()
        .map(|name| format!("\"{}\"", name.as_str()))
        .collect();
    let (last, rest) = quoted.split_last().expect("there are color modes");
    format!("{} or {last}", rest.join(", "))
}

pub(super) fn check_color_mode_name(value: &str) -> Result<ColorModeName, Problem> {
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

pub(super) fn check_palette_order(value: &str) -> Result<PaletteOrder, Problem> {
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

pub(super) fn check_chat_transport(value: &str) -> Result<ChatTransport, Problem> {
    let wanted = value.trim();
    [
        ChatTransport::Auto,
        ChatTransport::Irc,
        ChatTransport::EventSub,
    ]
    .into_iter()
    .find(|transport| transport.name().eq_ignore_ascii_case(wanted))
    .ok_or_else(|| {
        Problem::new(
            format!("\"{wanted}\" is not a chat transport"),
            "use \"auto\" (EventSub when the token has user:read:chat, else IRC), \"irc\" or \"eventsub\"",
        )
    })
}

pub(super) fn check_rainbow_step(step_degrees: f64) -> Result<f64, Problem> {
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
pub(super) fn palette_color_fix() -> String {
    let names: Vec<&str> = NamedColor::ALL
        .iter()
        .map(|named| named.api_name())
        .collect();
    format!(
        "use a named color ({}; any case) or hex like \"#1E90FF\" or \"#ABC\"",
        names.join(", ")
    )
}

pub(super) fn check_palette_color(value: &str) -> Result<Color, Problem> {
    color::parse_user_color(value).map_err(|error| {
        let message = match error {
            color::ColorParseError::Empty => "is empty".to_string(),
            not_a_color => not_a_color.to_string(),
        };
        Problem::new(message, palette_color_fix())
    })
}

/// `None` for 0 (no timer), the interval otherwise.
pub(super) fn check_change_every_seconds(seconds: f64) -> Result<Option<Duration>, Problem> {
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
pub(super) fn build_color_mode(
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
