//! Tokens that never lapse, against the live daemon and the fake Twitch: validation,
//! refresh (ahead of time, on 401, on a refused chat login), persistence to the config
//! file, a refused refresh token, and the device-code login.

mod common;

use common::*;
use fake_twitch::FakeTwitch;
use serde_json::json;

fn config_with_extras(users: Vec<serde_json::Value>) -> serde_json::Value {
    json!({
        "_comment": "top-level notes survive",
        "users": users,
        "custom_setting": {"kept": [1, 2, 3]},
    })
}

fn with_unknown_field(mut user: serde_json::Value) -> serde_json::Value {
    user["_comment"] = json!("per-user notes survive");
    user["nickname"] = json!("the tester");
    user
}

#[test]
fn an_expired_access_token_is_refreshed_saved_and_used() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "", true);
    twitch.expire_access_token("alice");
    let dir = tempfile::tempdir().unwrap();
    let config = config_with_extras(vec![with_unknown_field(user_json(&alice, true, &[]))]);
    let running = start_daemon_on_file(&twitch, dir.path(), &config, &[]);

    // The refused chat login and the failed validation both lead to one refresh; chat then
    // logs in with the new token.
    assert!(twitch.wait_joined("alice", "alice", WAIT));
    let new_access = twitch.access_token("alice");
    let new_refresh = twitch.refresh_token("alice");
    assert_ne!(new_access, alice.access_token);
    twitch.send_line("alice", &own_message(&alice, "alice", "hi"));
    let put = twitch.wait_request(is_color_put, WAIT).expect("PUT");
    assert_eq!(
        put.header("authorization"),
        Some(format!("Bearer {new_access}").as_str())
    );

    let saved = running.saved_config();
    let user = user_entry(&saved, "alice");
    assert_eq!(user["access_token"], new_access.as_str());
    assert_eq!(user["refresh_token"], new_refresh.as_str());
    assert!(user["token_expires_at"].as_u64().is_some());
    assert_eq!(user["_comment"], "per-user notes survive");
    assert_eq!(user["nickname"], "the tester");
    assert_eq!(saved["_comment"], "top-level notes survive");
    assert_eq!(saved["custom_setting"], json!({"kept": [1, 2, 3]}));
    let keys: Vec<&String> = saved.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["_comment", "users", "custom_setting"],
        "key order kept"
    );
    assert!(running.daemon.shutdown(WAIT));
}

#[test]
fn a_401_on_the_color_change_refreshes_and_retries_the_same_change_once() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "", true);
    let dir = tempfile::tempdir().unwrap();
    let config = config_with_extras(vec![user_json(&alice, true, &[])]);
    let running = start_daemon_on_file(&twitch, dir.path(), &config, &[]);
    assert!(twitch.wait_joined("alice", "alice", WAIT));

    // The token lapses while chat stays connected: Helix is the first to notice.
    twitch.expire_access_token("alice");
    twitch.send_line("alice", &own_message(&alice, "alice", "hi"));
    let refused = twitch.wait_request(is_color_put, WAIT).expect("first PUT");
    let retried = twitch
        .wait_request(is_color_put, WAIT)
        .expect("retried PUT");
    assert_eq!(retried.query_param("color"), refused.query_param("color"));
    let new_access = twitch.access_token("alice");
    assert_eq!(
        retried.header("authorization"),
        Some(format!("Bearer {new_access}").as_str())
    );
    sync_chat(&twitch, "alice", "done");
    let saved = running.saved_config();
    assert!(running.daemon.shutdown(WAIT));
    assert_eq!(twitch.color_puts().len(), 2, "retried once, not more");
    assert_eq!(
        twitch.current_color("1001"),
        retried.query_param("color").unwrap()
    );
    assert_eq!(
        user_entry(&saved, "alice")["access_token"],
        new_access.as_str()
    );
}

#[test]
fn three_users_refreshing_at_once_are_all_saved() {
    let twitch = FakeTwitch::start();
    let accounts: Vec<_> = ["alice", "bob", "carol"]
        .iter()
        .enumerate()
        .map(|(n, login)| account(&twitch, login, &format!("{}", 1001 + n), "", true))
        .collect();
    for account in &accounts {
        twitch.expire_access_token(&account.login);
    }
    let dir = tempfile::tempdir().unwrap();
    let config = config_with_extras(
        accounts
            .iter()
            .map(|a| with_unknown_field(user_json(a, true, &[])))
            .collect(),
    );
    let running = start_daemon_on_file(&twitch, dir.path(), &config, &[]);
    for account in &accounts {
        assert!(twitch.wait_joined(&account.login, &account.login, WAIT));
    }
    let saved = running.saved_config();
    for account in &accounts {
        let user = user_entry(&saved, &account.login);
        assert_eq!(
            user["access_token"],
            twitch.access_token(&account.login).as_str()
        );
        assert_eq!(
            user["refresh_token"],
            twitch.refresh_token(&account.login).as_str()
        );
        assert_eq!(user["nickname"], "the tester");
    }
    assert!(running.daemon.shutdown(WAIT));
}

#[test]
fn a_rejected_refresh_token_stops_that_user_with_one_clear_error_while_others_go_on() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "", true);
    let bob = account(&twitch, "bob", "1002", "", true);
    twitch.expire_access_token("alice");
    twitch.revoke_refresh_token("alice");
    let dir = tempfile::tempdir().unwrap();
    let config = json!({"users": [user_json(&alice, true, &[]), user_json(&bob, true, &[])]});
    let path = dir.path().join("twitch_colorchanger.conf");
    std::fs::write(&path, config.to_string()).unwrap();
    let process = Process::spawn(binary_for(dir.path(), &twitch));

    let error = process
        .wait_line(
            |line| line.contains("alice") && line.contains("stopped"),
            WAIT,
        )
        .expect("an error line about alice");
    assert!(error.contains("refresh token"), "{error}");
    assert!(
        error.contains("twitch-colorchanger auth --user alice"),
        "{error}"
    );

    assert!(twitch.wait_joined("bob", "bob", WAIT));
    twitch.send_line("bob", &own_message(&bob, "bob", "still here"));
    let put = twitch.wait_request(is_color_put, WAIT).expect("bob's PUT");
    assert_eq!(put.query_param("user_id"), Some("1002"));

    let (status, _, output) = process.terminate();
    assert_eq!(status.code(), Some(0), "{output}");
    let alice_errors = output
        .lines()
        .filter(|line| line.contains("alice") && line.contains("ERROR"))
        .count();
    assert_eq!(alice_errors, 1, "one error line for alice: {output}");
    for secret in ["at-alice", "rt-alice", "cs-alice", "at-bob"] {
        assert!(!output.contains(secret), "{secret} leaked: {output}");
    }
}

#[test]
fn a_user_without_tokens_logs_in_with_a_device_code_and_starts_chat() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "", true);
    twitch.set_device_interval(0);
    let dir = tempfile::tempdir().unwrap();
    let config = config_with_extras(vec![with_unknown_field(json!({
        "username": "alice",
        "client_id": alice.client_id,
        "access_token": "",
        "refresh_token": "",
    }))]);
    let running = start_daemon_on_file(&twitch, dir.path(), &config, &[]);

    let user_code = twitch.wait_device_user_code(WAIT).expect("a device code");
    // Polling starts and is told to wait before the person enters the code.
    let pending = twitch
        .wait_request(|r| r.path == "/oauth2/token", WAIT)
        .expect("a poll");
    assert_eq!(
        pending.form_param("grant_type"),
        Some("urn:ietf:params:oauth:grant-type:device_code")
    );
    twitch.approve_device(&user_code, "alice");

    assert!(
        twitch.wait_joined("alice", "alice", WAIT),
        "chat starts without a restart"
    );
    let saved = running.saved_config();
    let user = user_entry(&saved, "alice");
    assert_eq!(user["access_token"], twitch.access_token("alice").as_str());
    assert_eq!(
        user["refresh_token"],
        twitch.refresh_token("alice").as_str()
    );
    assert_eq!(user["nickname"], "the tester");
    assert!(running.daemon.shutdown(WAIT));
}

#[test]
fn the_auth_command_logs_a_user_in_and_saves_the_tokens() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "", true);
    twitch.set_device_interval(0);
    let dir = tempfile::tempdir().unwrap();
    let config = json!({"users": [{
        "username": "alice",
        "client_id": alice.client_id,
        "client_secret": alice.client_secret,
        "channels": ["alice"],
        "_comment": "kept",
    }]});
    let path = dir.path().join("my.conf");
    std::fs::write(&path, config.to_string()).unwrap();
    let mut command = binary_for(dir.path(), &twitch);
    command.args(["auth", "--user", "Alice", "--config", "my.conf"]);
    let process = Process::spawn(command);

    let user_code = twitch.wait_device_user_code(WAIT).expect("a device code");
    let instructions = process
        .wait_line(|line| line.contains(&user_code), WAIT)
        .expect("the code is shown");
    assert!(
        instructions.contains("https://www.twitch.tv/activate"),
        "{instructions}"
    );
    twitch.approve_device(&user_code, "alice");
    let (status, _, output) = process.wait_exit();
    assert_eq!(status.code(), Some(0), "{output}");

    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let user = user_entry(&saved, "alice");
    assert_eq!(user["access_token"], twitch.access_token("alice").as_str());
    assert_eq!(
        user["refresh_token"],
        twitch.refresh_token("alice").as_str()
    );
    assert_eq!(user["_comment"], "kept");
    assert!(!output.contains(&twitch.access_token("alice")), "{output}");

    // An unknown user is a usage error.
    let mut command = binary_for(dir.path(), &twitch);
    command.args(["auth", "--user", "mallory", "--config", "my.conf"]);
    let (status, _, output) = Process::spawn(command).wait_exit();
    assert_eq!(status.code(), Some(2), "{output}");
}
