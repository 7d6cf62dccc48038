//! Twitch's token quirks from issue 20, against the live daemon and the fake Twitch: a 401 on
//! a color change for a token that still validates (retried once, and a token that dies later
//! still refreshed), a token made for another app's client id (named, with its fix), and
//! device codes Twitch calls invalid while they are still pending (kept until approved).

mod common;

use std::time::{Duration, Instant};

use common::*;
use fake_twitch::{FakeTwitch, ScriptedResponse};

/// Twitch's answer to a Helix call with a token it does not take.
const HELIX_401: &str = r#"{"error":"Unauthorized","status":401,"message":"Invalid OAuth token"}"#;

fn is_token_call(request: &fake_twitch::HttpRequest) -> bool {
    request.path == "/oauth2/token"
}

/// Issue 20, point 1: the refused change is tried again at once with the token that
/// validates, and the refusal leaves no episode open: when Twitch invalidates the token
/// later, the next refused change is checked, the token refreshed and the change made.
#[test]
fn a_401_for_a_token_that_validates_retries_the_change_and_a_later_death_is_refreshed() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "", true);
    let dir = tempfile::tempdir().unwrap();
    let config = serde_json::json!({"users": [user_json(&alice, true, &[])]});
    let running = start_daemon_on_file(&twitch, dir.path(), &config, &[]);
    assert!(twitch.wait_joined("alice", "alice", WAIT));

    // One passing refusal: validation still says the token is good.
    twitch.push_response(
        "PUT",
        "/helix/chat/color",
        ScriptedResponse::json(401, HELIX_401),
    );
    twitch.send_line("alice", &own_message(&alice, "alice", "hi"));
    let puts = twitch.wait_color_puts(2, WAIT);
    assert_eq!(puts.len(), 2, "the refused change is tried again");
    assert_eq!(puts[1].query_param("color"), puts[0].query_param("color"));
    assert_eq!(
        puts[1].header("authorization"),
        puts[0].header("authorization")
    );
    assert!(
        !twitch.requests().iter().any(is_token_call),
        "a token that validates is not refreshed"
    );

    // Twitch invalidates the token early. The next change is refused; that is new evidence.
    twitch.expire_access_token("alice");
    let invalidated = Instant::now();
    twitch.send_line("alice", &own_message(&alice, "alice", "again"));
    let puts = twitch.wait_color_puts(4, WAIT);
    assert_eq!(puts.len(), 4, "the refused change is made with a new token");
    let recovered = invalidated.elapsed();
    assert!(recovered < Duration::from_secs(5), "took {recovered:?}");
    let new_access = twitch.access_token("alice");
    assert_ne!(new_access, alice.access_token);
    assert_eq!(
        puts[3].header("authorization"),
        Some(format!("Bearer {new_access}").as_str())
    );
    assert_eq!(puts[3].query_param("color"), puts[2].query_param("color"));
    sync_chat(&twitch, "alice", "done");
    assert!(running.daemon.shutdown(WAIT));
    assert_eq!(
        twitch.current_color("1001"),
        puts[3].query_param("color").unwrap()
    );
    assert_eq!(
        twitch
            .requests()
            .iter()
            .filter(|r| is_token_call(r))
            .count(),
        1,
        "one refresh"
    );
}

/// Issue 20, point 6: a token pasted from another app (its client id is not the configured
/// one) is named with its fix at start and again after Helix refuses it, Twitch's 401 message
/// is logged, and nothing is refreshed or retried in vain.
#[test]
fn a_token_made_for_another_client_id_is_explained_with_its_fix() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "", true);
    let mut user = user_json(&alice, true, &[]);
    user["client_id"] = serde_json::json!("cid-mine");
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &serde_json::json!({"users": [user]}));
    let process = Process::spawn(binary_for(dir.path(), &twitch));
    assert!(twitch.wait_joined("alice", "alice", WAIT));
    let explains = |line: &str| line.contains("made for another Twitch app");
    let at_start = process
        .wait_line(explains, WAIT)
        .expect("the mismatch is named at start");
    for part in [
        "cid-alice",
        "cid-mine",
        "twitch-colorchanger auth --user alice",
    ] {
        assert!(at_start.contains(part), "{part} missing: {at_start}");
    }

    twitch.send_line("alice", &own_message(&alice, "alice", "hi"));
    // The change fails with Twitch's 401 message, and the refusal is checked: validation
    // names the mismatch again. The two lines come in either order.
    let after_401: Vec<String> = (0..2)
        .map(|_| {
            process
                .wait_line(
                    |line| explains(line) || line.contains("color change to"),
                    WAIT,
                )
                .expect("the failed change and the explanation")
        })
        .collect();
    let failed = after_401
        .iter()
        .find(|line| line.contains("color change to"))
        .expect("the failed change");
    assert!(
        failed.contains("Client ID and OAuth token do not match"),
        "Twitch's 401 message: {failed}"
    );
    assert!(after_401.iter().any(|line| explains(line)), "{after_401:?}");
    let (status, _, output) = process.terminate();
    assert_eq!(status.code(), Some(0), "{output}");
    assert_eq!(
        output.lines().filter(|line| explains(line)).count(),
        2,
        "named at start and after the 401: {output}"
    );
    assert_eq!(twitch.color_puts().len(), 1, "no retry that cannot help");
    assert!(
        !twitch.requests().iter().any(is_token_call),
        "no refresh that cannot help"
    );
}

/// Waits for `n_polls` polls of the device-code grant.
fn wait_device_polls(twitch: &FakeTwitch, n_polls: usize) {
    for n in 1..=n_polls {
        twitch
            .wait_request(
                |r| is_token_call(r) && r.form_param("device_code").is_some(),
                WAIT,
            )
            .unwrap_or_else(|| panic!("poll {n}"));
    }
}

/// Issue 20, point 2, for `auth`: a code Twitch calls "invalid" while it is pending stays
/// on show, and the person who enters it afterwards is logged in with it.
#[test]
fn auth_keeps_a_code_twitch_calls_invalid_while_it_is_pending() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "", true);
    twitch.set_device_interval(0);
    twitch.answer_pending_polls_invalid(2);
    let dir = tempfile::tempdir().unwrap();
    let config = serde_json::json!({"users": [{
        "username": "alice",
        "client_id": alice.client_id,
        "channels": ["alice"],
    }]});
    let path = dir.path().join("my.conf");
    std::fs::write(&path, config.to_string()).unwrap();
    let mut command = binary_for(dir.path(), &twitch);
    command.args(["auth", "--user", "alice", "--config", "my.conf"]);
    let process = Process::spawn(command);

    let user_code = twitch.wait_device_user_code(WAIT).expect("a device code");
    wait_device_polls(&twitch, 2);
    twitch.approve_device(&user_code, "alice");
    let (status, _, output) = process.wait_exit();
    assert_eq!(status.code(), Some(0), "{output}");
    assert_eq!(
        twitch.device_user_codes(),
        [user_code],
        "one code, kept until approved"
    );
    let saved = read_config(&path);
    assert_eq!(
        user_entry(&saved, "alice")["access_token"],
        twitch.access_token("alice").as_str()
    );
}

/// Issue 20, point 2, for the daemon's own login: the same, without a terminal.
#[test]
fn the_daemon_keeps_a_code_twitch_calls_invalid_while_it_is_pending() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "", true);
    twitch.set_device_interval(0);
    twitch.answer_pending_polls_invalid(2);
    let dir = tempfile::tempdir().unwrap();
    let config = serde_json::json!({"users": [{
        "username": "alice",
        "client_id": alice.client_id,
        "access_token": "",
        "refresh_token": "",
    }]});
    let running = start_daemon_on_file(&twitch, dir.path(), &config, &[]);

    let user_code = twitch.wait_device_user_code(WAIT).expect("a device code");
    wait_device_polls(&twitch, 2);
    twitch.approve_device(&user_code, "alice");
    assert!(
        twitch.wait_eventsub_subscribed("alice", "alice", WAIT),
        "logged in with the first code, chat starts"
    );
    assert_eq!(
        twitch.device_user_codes(),
        [user_code],
        "one code, kept until approved"
    );
    assert_eq!(
        user_entry(&running.saved_config(), "alice")["access_token"],
        twitch.access_token("alice").as_str()
    );
    assert!(running.daemon.shutdown(WAIT));
}

/// Issue 20, start-up: under the default `auto`, each user's chat waits for its token's
/// validation, so validations at start run as concurrently as connections are dialled. With
/// every validation answered slowly, all twelve users' validations are under way together
/// (four token-call threads and a 20 ms stagger let four through), and all join.
#[test]
fn at_start_every_users_validation_is_under_way_at_once() {
    const N_USERS: usize = 12;
    const SLOW_ANSWER: Duration = Duration::from_secs(3);
    let twitch = FakeTwitch::start();
    let accounts: Vec<_> = (0..N_USERS)
        .map(|n| {
            account(
                &twitch,
                &format!("user{n:02}"),
                &format!("{}", 2001 + n),
                "",
                true,
            )
        })
        .collect();
    for _ in 0..N_USERS {
        twitch.delay_next("GET", "/oauth2/validate", SLOW_ANSWER);
    }
    let users = accounts
        .iter()
        .map(|account| user_json(account, true, &[]))
        .collect();
    let started = Instant::now();
    let daemon = start_daemon(&twitch, users);
    // Well before the first slow answer comes back, every validation has arrived.
    let deadline = started + SLOW_ANSWER - Duration::from_millis(500);
    for n in 1..=N_USERS {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            twitch
                .wait_request(|r| r.path == "/oauth2/validate", left)
                .is_some(),
            "only {} of {N_USERS} validations under way at once",
            n - 1
        );
    }
    for account in &accounts {
        assert!(
            twitch.wait_joined(&account.login, &account.login, WAIT),
            "{} joins",
            account.login
        );
    }
    assert!(daemon.shutdown(WAIT));
}
