//! Helpers for the tests of chat over EventSub: readers (accounts whose tokens carry
//! `user:read:chat`), config entries naming a transport, the subscriptions the fake
//! received, and the real binary with debug logs.

use fake_twitch::{Account, FakeTwitch, HttpRequest, READ_CHAT_SCOPE};
use serde_json::json;

use super::{binary_for, is_color_put, user_json, write_config, Process, WAIT};

/// Helix's path for EventSub subscriptions.
pub const SUBSCRIPTIONS: &str = "/helix/eventsub/subscriptions";

/// An account whose tokens carry `user:read:chat`, registered with the fake.
pub fn reader(twitch: &FakeTwitch, login: &str, user_id: &str, color: &str) -> Account {
    let mut account = Account::new(login, user_id);
    account.color = color.to_string();
    account.scopes.push(READ_CHAT_SCOPE.to_string());
    twitch.add_user(account.clone());
    account
}

/// A config entry reading `channels` over `transport`.
pub fn entry(account: &Account, transport: &str, channels: &[&str]) -> serde_json::Value {
    let mut entry = user_json(account, true, channels);
    entry["chat_transport"] = json!(transport);
    entry
}

pub fn is_subscription_post(request: &HttpRequest) -> bool {
    request.method == "POST" && request.path == SUBSCRIPTIONS
}

pub fn subscription_posts(twitch: &FakeTwitch) -> Vec<HttpRequest> {
    twitch
        .requests()
        .into_iter()
        .filter(is_subscription_post)
        .collect()
}

/// Waits for a color PUT for `user_id` and returns its color.
pub fn next_change_of(twitch: &FakeTwitch, user_id: &str) -> String {
    let put = twitch
        .wait_request(
            |request| is_color_put(request) && request.query_param("user_id") == Some(user_id),
            WAIT,
        )
        .unwrap_or_else(|| panic!("a color change for user {user_id}"));
    put.query_param("color").unwrap_or_default().to_string()
}

/// Runs the binary with `config` and debug logs.
pub fn spawn_binary(
    twitch: &FakeTwitch,
    dir: &std::path::Path,
    config: &serde_json::Value,
) -> Process {
    write_config(dir, config);
    let mut command = binary_for(dir, twitch);
    command.env("DEBUG", "true");
    Process::spawn(command)
}
