//! Tokens that never lapse, against the live daemon and the fake Twitch: validation,
//! refresh (ahead of time, on 401, on a refused chat login), persistence to the config
//! file, a refused refresh token and the headless device-code login it starts, a refresh in
//! flight at SIGTERM, a token without a needed scope, a removed user's late answer, a restart
//! mid-refresh, a suspend, and one user's slow refresh beside another's.

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
fn a_revoked_refresh_token_starts_a_login_without_a_terminal_and_changes_resume() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "", true);
    let bob = account(&twitch, "bob", "1002", "", true);
    twitch.set_device_interval(0);
    twitch.expire_access_token("alice");
    twitch.revoke_refresh_token("alice");
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &json!({"users": [user_json(&alice, true, &[]), user_json(&bob, true, &[])]}),
    );
    // `binary_for` gives the daemon no terminal: stdin is /dev/null, output goes to pipes.
    let mut command = binary_for(dir.path(), &twitch);
    command.env("DEBUG", "true");
    let process = Process::spawn(command);

    let line = process
        .wait_line(|line| line.contains("alice: to log in, open"), WAIT)
        .expect("one line with the login code");
    let user_code = twitch.wait_device_user_code(WAIT).expect("a device code");
    assert!(line.contains(&user_code), "{line}");
    assert!(line.contains("https://www.twitch.tv/activate"), "{line}");
    let device = twitch
        .requests()
        .into_iter()
        .find(|request| request.path == "/oauth2/device")
        .expect("the device endpoint was asked");
    let scopes = device.form_param("scopes").unwrap_or_default().to_string();
    for scope in ["chat:read", "user:manage:chat_color", "user:read:chat"] {
        assert!(scopes.split(' ').any(|s| s == scope), "{scopes}");
    }

    // The status file and `health` show the same code.
    process
        .wait_line(
            |line| {
                line.contains("status file written")
                    && line.contains(&format!("alice needs-login (code {user_code})"))
            },
            WAIT,
        )
        .expect("the status file shows the code");
    let (code, text) = health(dir.path(), &twitch);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains(&user_code), "{text}");
    assert!(text.contains("https://www.twitch.tv/activate"), "{text}");

    // Bob is not affected.
    assert!(twitch.wait_joined("bob", "bob", WAIT));
    twitch.send_line("bob", &own_message(&bob, "bob", "still here"));
    let put = twitch.wait_request(is_color_put, WAIT).expect("bob's PUT");
    assert_eq!(put.query_param("user_id"), Some("1002"));

    // The person approves; alice joins and changes colors in the same process.
    // The new login carries user:read:chat, so chat_transport auto reads over EventSub.
    twitch.approve_device(&user_code, "alice");
    assert!(
        twitch.wait_eventsub_subscribed("alice", "alice", WAIT),
        "alice reads chat"
    );
    twitch.say("alice", "alice", "back");
    let put = twitch
        .wait_request(is_color_put, WAIT)
        .expect("alice's PUT");
    assert_eq!(put.query_param("user_id"), Some("1001"));

    let (status, _, output) = process.terminate();
    assert_eq!(status.code(), Some(0), "{output}");
    let saved = read_config(&path);
    let user = user_entry(&saved, "alice");
    assert_eq!(user["access_token"], twitch.access_token("alice").as_str());
    assert_eq!(
        user["refresh_token"],
        twitch.refresh_token("alice").as_str()
    );
    let code_lines = output
        .lines()
        .filter(|line| line.contains("alice: to log in, open"))
        .count();
    assert_eq!(code_lines, 1, "one line per code: {output}");
    let new_access = twitch.access_token("alice");
    let new_refresh = twitch.refresh_token("alice");
    for secret in [
        "at-alice\"",
        "rt-alice\"",
        "cs-alice",
        "at-bob",
        "dc-",
        new_access.as_str(),
        new_refresh.as_str(),
    ] {
        assert!(!output.contains(secret), "{secret} leaked: {output}");
    }
}

#[test]
fn sigterm_during_a_slow_refresh_waits_for_it_and_saves_the_new_tokens() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "", true);
    twitch.expire_access_token("alice");
    // Twitch rotates the tokens when the refresh arrives, and answers 4 s later: longer than
    // the shutdown grace of 1.5 s, shorter than the HTTP timeout.
    twitch.delay_next("POST", "/oauth2/token", std::time::Duration::from_secs(4));
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &json!({"users": [user_json(&alice, true, &[])]}),
    );
    let process = Process::spawn(binary_for(dir.path(), &twitch));
    twitch
        .wait_request(|request| request.path == "/oauth2/token", WAIT)
        .expect("a refresh");

    let (status, _, output) = process.terminate();
    assert_eq!(status.code(), Some(0), "{output}");
    assert!(
        output.contains("waiting for 1 token call(s) in flight"),
        "{output}"
    );
    let saved = read_config(&path);
    let user = user_entry(&saved, "alice");
    assert_eq!(
        user["refresh_token"],
        twitch.refresh_token("alice").as_str(),
        "the rotated refresh token was saved"
    );
    assert_eq!(user["access_token"], twitch.access_token("alice").as_str());
}

#[test]
fn a_missing_scope_is_one_clear_error_and_costs_no_refresh_per_message() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "", true);
    twitch.set_scopes("alice", &["chat:read"]);
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &json!({"users": [user_json(&alice, true, &[])]}),
    );
    let before = std::fs::read_to_string(&path).unwrap();
    let process = Process::spawn(binary_for(dir.path(), &twitch));
    assert!(twitch.wait_joined("alice", "alice", WAIT));
    process
        .wait_line(|line| line.contains("lacks the scope"), WAIT)
        .expect("the scope error");
    for n in 1..=3 {
        twitch.send_line("alice", &own_message(&alice, "alice", "hi"));
        assert_eq!(twitch.wait_color_puts(n, WAIT).len(), n, "PUT {n}");
    }
    sync_chat(&twitch, "alice", "done");

    let (status, _, output) = process.terminate();
    assert_eq!(status.code(), Some(0), "{output}");
    let scope_errors: Vec<&str> = output
        .lines()
        .filter(|line| line.contains("lacks the scope"))
        .collect();
    assert_eq!(scope_errors.len(), 1, "{output}");
    let error = scope_errors[0];
    assert!(error.contains("user:manage:chat_color"), "{error}");
    assert!(
        error.contains("twitch-colorchanger auth --user alice"),
        "{error}"
    );
    let n_refreshes = twitch
        .requests()
        .iter()
        .filter(|request| request.path == "/oauth2/token")
        .count();
    assert!(n_refreshes <= 1, "{n_refreshes} refreshes");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        before,
        "no config writes"
    );
}

#[test]
fn a_removed_users_late_token_answer_does_not_bring_it_back_to_the_status_file() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "", true);
    let bob = account(&twitch, "bob", "1002", "", true);
    twitch.expire_access_token("alice");
    twitch.revoke_refresh_token("alice");
    twitch.delay_next("POST", "/oauth2/token", std::time::Duration::from_secs(3));
    let dir = tempfile::tempdir().unwrap();
    let status_path = dir.path().join("twitch_colorchanger.status.json");
    write_config(
        dir.path(),
        &json!({"users": [user_json(&alice, true, &[]), user_json(&bob, true, &[])]}),
    );
    let mut command = binary_for(dir.path(), &twitch);
    command.env("DEBUG", "true").env("TWITCH_RELOAD_SECS", "1");
    let process = Process::spawn(command);
    assert!(twitch.wait_joined("bob", "bob", WAIT));
    twitch
        .wait_request(|request| request.path == "/oauth2/token", WAIT)
        .expect("alice's refresh, answered late");

    write_config(dir.path(), &json!({"users": [user_json(&bob, true, &[])]}));
    process
        .wait_line(|line| line.contains("alice: removed from the config"), WAIT)
        .expect("alice is removed");
    // The refusal of alice's refresh token arrives after her removal.
    process
        .wait_line(
            |line| line.contains("alice: the token call of a removed or restarted entry answered"),
            WAIT,
        )
        .expect("the late answer");
    // Make the status file be written again, after the late answer.
    twitch.drop_connections("bob");
    assert!(twitch.wait_n_logins("bob", 2, WAIT));
    let written = process
        .wait_line(
            |line| line.contains("status file written") && line.contains("bob connected"),
            WAIT,
        )
        .expect("a status write after the late answer");
    assert!(!written.contains("alice"), "{written}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&status_path).unwrap()).unwrap();
    assert!(report["users"].get("alice").is_none(), "{report}");
    let (status, _, output) = process.terminate();
    assert_eq!(status.code(), Some(0), "{output}");
    assert!(!output.contains("alice needs-login"), "{output}");
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

    // The new login carries user:read:chat, so chat_transport auto reads over EventSub.
    assert!(
        twitch.wait_eventsub_subscribed("alice", "alice", WAIT),
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

#[test]
fn a_user_restarted_during_a_refresh_takes_over_the_newest_tokens() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "", true);
    account(&twitch, "bob", "1002", "", true);
    twitch.expire_access_token("alice");
    // Twitch rotates the tokens when the refresh arrives and answers 3 s later.
    twitch.delay_next("POST", "/oauth2/token", std::time::Duration::from_secs(3));
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &json!({"users": [user_json(&alice, true, &["alice"])]}),
    );
    let mut command = binary_for(dir.path(), &twitch);
    command.env("TWITCH_RELOAD_SECS", "1");
    let process = Process::spawn(command);
    twitch
        .wait_request(|request| request.path == "/oauth2/token", WAIT)
        .expect("a refresh, answered late");

    // A channel is added while the refresh is in flight: the user restarts, and the file
    // still holds the refresh token Twitch is rotating away.
    write_config(
        dir.path(),
        &json!({"users": [user_json(&alice, true, &["alice", "bob"])]}),
    );
    assert!(
        twitch.wait_joined("alice", "bob", WAIT),
        "the restarted user"
    );
    twitch.send_line("alice", &own_message(&alice, "bob", "hi"));
    let put = twitch.wait_request(is_color_put, WAIT).expect("a PUT");
    let new_access = twitch.access_token("alice");
    assert_eq!(
        put.header("authorization"),
        Some(format!("Bearer {new_access}").as_str())
    );

    let (status, _, output) = process.terminate();
    assert_eq!(status.code(), Some(0), "{output}");
    assert!(!output.contains("rejected the refresh token"), "{output}");
    assert!(
        output.contains("alice: the config holds tokens Twitch has since rotated"),
        "{output}"
    );
    let saved = read_config(&path);
    let user = user_entry(&saved, "alice");
    assert_eq!(
        user["refresh_token"],
        twitch.refresh_token("alice").as_str(),
        "the newest refresh token is saved"
    );
    assert_eq!(user["channels"], json!(["alice", "bob"]));
    let n_refreshes = twitch
        .requests()
        .iter()
        .filter(|request| request.path == "/oauth2/token")
        .count();
    assert_eq!(n_refreshes, 1, "the successor did not refresh again");
}

#[test]
fn after_a_suspend_the_token_is_validated_at_once() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "", true);
    let mut settings = settings_with(&twitch, &[("TWITCH_RELOAD_SECS", "1")]);
    let (clock, ahead_secs) = movable_clock();
    settings.wall_clock = clock;
    let daemon = twitch_colorchanger::daemon::Daemon::start(
        &users_from_json(vec![user_json(&alice, true, &[])]),
        &settings,
        None,
    )
    .expect("daemon starts");
    assert!(twitch.wait_joined("alice", "alice", WAIT));
    twitch
        .wait_request(|request| request.path == "/oauth2/validate", WAIT)
        .expect("the validation at start");

    // Five hours pass on the wall clock and none on the monotonic one: longer than the
    // token's four hours of life, and the hourly validation is long overdue.
    ahead_secs.store(5 * 3600, std::sync::atomic::Ordering::SeqCst);
    twitch
        .wait_request(|request| request.path == "/oauth2/validate", WAIT)
        .expect("a validation right after the suspend");
    assert!(daemon.shutdown(WAIT));
}

#[test]
fn one_users_slow_refresh_does_not_hold_up_anothers() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "", true);
    let bob = account(&twitch, "bob", "1002", "", true);
    twitch.expire_access_token("alice");
    twitch.expire_access_token("bob");
    // The first refresh to arrive (either user's) is answered 6 s late.
    twitch.delay_next("POST", "/oauth2/token", std::time::Duration::from_secs(6));
    let daemon = start_daemon(
        &twitch,
        vec![user_json(&alice, true, &[]), user_json(&bob, true, &[])],
    );
    let first = twitch
        .wait_request(|request| request.path == "/oauth2/token", WAIT)
        .expect("a refresh");
    let (slow, fast) = if first.form_param("refresh_token") == Some("rt-alice") {
        ("alice", "bob")
    } else {
        ("bob", "alice")
    };
    // The other user's refresh goes to another caller: it joins while the slow one waits.
    assert!(twitch.wait_joined(fast, fast, WAIT), "{fast} joined");
    assert!(
        !twitch.wait_joined(slow, slow, std::time::Duration::ZERO),
        "{slow} joined before its refresh was answered"
    );
    assert!(twitch.wait_joined(slow, slow, WAIT), "{slow} joined later");
    assert!(daemon.shutdown(WAIT));
}

#[test]
fn a_user_given_up_after_a_refused_device_login_is_told_why_it_needed_one() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "", true);
    twitch.expire_access_token("alice");
    twitch.revoke_refresh_token("alice");
    twitch.push_response(
        "POST",
        "/oauth2/device",
        fake_twitch::ScriptedResponse::json(400, r#"{"status":400,"message":"invalid client"}"#),
    );
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        &json!({"users": [user_json(&alice, true, &[])]}),
    );
    let process = Process::spawn(binary_for(dir.path(), &twitch));
    let line = process
        .wait_line(|line| line.contains("This user is stopped"), WAIT)
        .expect("alice is given up");
    assert!(line.contains("Twitch rejected the refresh token"), "{line}");
    assert!(!line.contains("the config has no tokens"), "{line}");
    let (status, _, output) = process.terminate();
    assert_eq!(status.code(), Some(0), "{output}");
}
