//! Live reload against the live daemon and the fake Twitch: edits of the config file while
//! the daemon runs start, stop and reconnect exactly the users they touch; a broken edit is
//! ignored and the running setup stays.

mod common;

use common::*;
use fake_twitch::FakeTwitch;
use serde_json::json;

#[test]
fn edits_start_added_users_stop_removed_ones_and_reconnect_changed_ones() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "", true);
    let bob = account(&twitch, "bob", "1002", "", true);
    let carol = account(&twitch, "carol", "1003", "", true);
    let dir = tempfile::tempdir().unwrap();
    let config = json!({"users": [user_json(&alice, true, &[]), user_json(&bob, true, &[])]});
    let running =
        start_daemon_on_file(&twitch, dir.path(), &config, &[("TWITCH_RELOAD_SECS", "1")]).run();
    assert!(twitch.wait_joined("alice", "alice", WAIT));
    assert!(twitch.wait_joined("bob", "bob", WAIT));

    // Carol is added, Bob removed, Alice gets another channel.
    let edited = json!({"users": [
        user_json(&alice, true, &["alice", "somewhere"]),
        user_json(&carol, true, &[]),
    ]});
    running.edit(&edited);
    assert!(
        twitch.wait_joined("carol", "carol", WAIT),
        "added user started"
    );
    assert!(
        twitch.wait_live_connections("bob", 0, WAIT),
        "removed user stopped"
    );
    assert!(
        twitch.wait_joined("alice", "somewhere", WAIT),
        "changed user rejoined"
    );
    assert!(
        twitch.wait_n_logins("alice", 2, WAIT),
        "changed user reconnected"
    );

    twitch.send_line("carol", &own_message(&carol, "carol", "hi"));
    let put = twitch
        .wait_request(is_color_put, WAIT)
        .expect("carol's PUT");
    assert_eq!(put.query_param("user_id"), Some("1003"));

    // Disabling Carol changes a setting in place: no reconnect, and no changes any more.
    let mut carol_disabled = user_json(&carol, true, &[]);
    carol_disabled["enabled"] = json!(false);
    let disabled = json!({"users": [
        user_json(&alice, true, &["alice", "somewhere"]),
        carol_disabled,
    ]});
    running.edit(&disabled);
    twitch.send_line("alice", &own_message(&alice, "alice", "marker"));
    twitch
        .wait_request(is_color_put, WAIT)
        .expect("alice still changes");
    running.stop();
    assert_eq!(
        twitch.n_logins("carol"),
        1,
        "no reconnect for a settings change"
    );
}

#[test]
fn a_broken_edit_is_reported_with_its_position_ignored_and_left_alone() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "", true);
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &json!({"users": [user_json(&alice, true, &[])]}),
    );
    let mut command = binary_for(dir.path(), &twitch);
    command.env("TWITCH_RELOAD_SECS", "1");
    let process = Process::spawn(command);
    assert!(twitch.wait_joined("alice", "alice", WAIT));

    let broken = "{\"users\": [\n  {\"username\": \"alice\",\n";
    std::fs::write(&path, broken).unwrap();
    let report = process
        .wait_line(|line| line.contains("config edit ignored"), WAIT)
        .expect("the broken edit is reported");
    assert!(report.contains("twitch_colorchanger.conf:3:"), "{report}");

    // Still working on the setup it had, on the same connection.
    twitch.send_line("alice", &own_message(&alice, "alice", "hi"));
    assert!(twitch.wait_request(is_color_put, WAIT).is_some());
    let (status, _, output) = process.terminate();
    assert_eq!(status.code(), Some(0), "{output}");
    assert_eq!(twitch.n_logins("alice"), 1);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        broken,
        "never overwritten"
    );
}

/// Issue 12, item 1: users added by an edit used to share a worker pool sized for the users
/// at start, so one user waiting on Helix held up everybody else's changes.
#[test]
fn a_user_waiting_on_helix_never_holds_up_users_added_later() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "", true);
    let bob = account(&twitch, "bob", "1002", "", true);
    let carol = account(&twitch, "carol", "1003", "", true);
    let dir = tempfile::tempdir().unwrap();
    let config = json!({"users": [user_json(&alice, true, &[])]});
    // Calls may take two minutes, so that a stalled answer really holds a worker.
    let running = start_daemon_on_file(
        &twitch,
        dir.path(),
        &config,
        &[
            ("TWITCH_RELOAD_SECS", "1"),
            ("TWITCH_HTTP_TIMEOUT_SECS", "120"),
        ],
    )
    .run();
    assert!(twitch.wait_joined("alice", "alice", WAIT));
    let all = json!({"users": [
        user_json(&alice, true, &[]),
        user_json(&bob, true, &[]),
        user_json(&carol, true, &[]),
    ]});
    running.edit(&all);
    assert!(twitch.wait_joined("bob", "bob", WAIT));
    assert!(twitch.wait_joined("carol", "carol", WAIT));

    // Alice's rate-limit bucket is empty for a minute: her change waits for the reset.
    twitch.push_response(
        "PUT",
        "/helix/chat/color",
        rate_limited_until(unix_seconds() + 60),
    );
    twitch.send_line("alice", &own_message(&alice, "alice", "hi"));
    let refused = twitch
        .wait_request(is_color_put, WAIT)
        .expect("alice's PUT");
    assert_eq!(refused.query_param("user_id"), Some("1001"));

    // Bob's answer stalls for two minutes.
    twitch.push_response(
        "PUT",
        "/helix/chat/color",
        fake_twitch::ScriptedResponse::status(204).delayed(std::time::Duration::from_secs(120)),
    );
    twitch.send_line("bob", &own_message(&bob, "bob", "hi"));
    let stalled = twitch.wait_request(is_color_put, WAIT).expect("bob's PUT");
    assert_eq!(stalled.query_param("user_id"), Some("1002"));

    // Carol's change goes out while both wait.
    twitch.send_line("carol", &own_message(&carol, "carol", "hi"));
    let put = twitch
        .wait_request(is_color_put, WAIT)
        .expect("carol's change is not held up by alice's and bob's waits");
    assert_eq!(put.query_param("user_id"), Some("1003"));

    // Ending the fake ends Bob's stalled call; the stop ends Alice's wait.
    drop(twitch);
    running.stop();
}
