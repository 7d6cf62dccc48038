//! Helpers shared by the integration tests: configs for fake accounts, starting the daemon
//! in-process against a `FakeTwitch`, and synchronising with a user's chat thread.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use fake_twitch::{Account, FakeTwitch};
use twitch_colorchanger::config::{self, UserConfig};
use twitch_colorchanger::daemon::Daemon;
use twitch_colorchanger::settings::{self, Settings};

/// Long enough for any loopback round trip on a loaded 2-core CI machine; only reached when
/// a test is about to fail.
pub const WAIT: Duration = Duration::from_secs(10);

/// A config entry for `account` as a user would write it.
pub fn user_json(account: &Account, prime_or_turbo: bool, channels: &[&str]) -> serde_json::Value {
    serde_json::json!({
        "username": account.login,
        "client_id": account.client_id,
        "client_secret": account.client_secret,
        "access_token": format!("oauth:{}", account.access_token),
        "refresh_token": account.refresh_token,
        "channels": channels,
        "is_prime_or_turbo": prime_or_turbo,
    })
}

/// Parses users through the real config loader.
pub fn users_from_json(users: Vec<serde_json::Value>) -> Vec<UserConfig> {
    let text = serde_json::json!({ "users": users }).to_string();
    let (config, _document) = config::parse(&text, Path::new("test.json")).expect("valid config");
    config.users
}

/// The environment a daemon needs to talk to `twitch` instead of Twitch.
pub fn fake_env(twitch: &FakeTwitch) -> HashMap<String, String> {
    HashMap::from([
        ("TWITCH_IRC_URL".to_string(), twitch.irc_url()),
        ("TWITCH_API_URL".to_string(), twitch.api_url()),
        ("TWITCH_AUTH_URL".to_string(), twitch.auth_url()),
    ])
}

pub fn settings_for(twitch: &FakeTwitch) -> Settings {
    settings_with(twitch, &[])
}

/// Settings for `twitch` with extra environment variables.
pub fn settings_with(twitch: &FakeTwitch, extra: &[(&str, &str)]) -> Settings {
    let mut env = fake_env(twitch);
    for (key, value) in extra {
        env.insert(key.to_string(), value.to_string());
    }
    settings::parse(&[], &env).expect("valid settings")
}

/// Starts the daemon in this process for `users` against `twitch`.
pub fn start_daemon(twitch: &FakeTwitch, users: Vec<serde_json::Value>) -> Daemon {
    Daemon::start(&users_from_json(users), &settings_for(twitch)).expect("daemon starts")
}

/// Starts the daemon with extra environment settings.
pub fn start_daemon_with(
    twitch: &FakeTwitch,
    users: Vec<serde_json::Value>,
    extra: &[(&str, &str)],
) -> Daemon {
    Daemon::start(&users_from_json(users), &settings_with(twitch, extra)).expect("daemon starts")
}

pub fn is_color_put(request: &fake_twitch::HttpRequest) -> bool {
    request.method == "PUT" && request.path == "/helix/chat/color"
}

/// Registers `login` with the fake and returns its account.
pub fn account(
    twitch: &FakeTwitch,
    login: &str,
    user_id: &str,
    color: &str,
    turbo: bool,
) -> Account {
    let mut account = Account::new(login, user_id);
    account.color = color.to_string();
    account.turbo = turbo;
    twitch.add_user(account.clone());
    account
}

/// Returns once `login`'s chat thread has handled every line sent to it before: the thread
/// handles lines in order, so the answer to a PING sent now comes after all of them.
pub fn sync_chat(twitch: &FakeTwitch, login: &str, tag: &str) {
    twitch.send_line(login, &format!("PING :{tag}"));
    let pong = format!("PONG :{tag}");
    assert!(
        twitch
            .wait_line_from(login, |line| line == pong, WAIT)
            .is_some(),
        "{login} did not answer PING :{tag}"
    );
}

/// An own message of `account` in `channel`, as Twitch delivers it.
pub fn own_message(account: &Account, channel: &str, text: &str) -> String {
    FakeTwitch::privmsg_line(
        &account.login,
        &account.user_id,
        &account.login,
        channel,
        text,
    )
}

/// The 15 colors every user may pick.
pub const NAMED_COLORS: [&str; 15] = [
    "blue",
    "blue_violet",
    "cadet_blue",
    "chocolate",
    "coral",
    "dodger_blue",
    "firebrick",
    "golden_rod",
    "green",
    "hot_pink",
    "orange_red",
    "red",
    "sea_green",
    "spring_green",
    "yellow_green",
];

/// True for `#RRGGBB`.
pub fn is_hex_color(color: &str) -> bool {
    color.len() == 7 && color.starts_with('#') && color[1..].chars().all(|c| c.is_ascii_hexdigit())
}
