//! `twitch-colorchanger health` against a running daemon (the real binary and the fake
//! Twitch): healthy while every user is connected, unhealthy when a user cannot log in or
//! the daemon is gone.

mod common;

use common::*;
use fake_twitch::FakeTwitch;
use serde_json::json;

#[test]
fn health_follows_the_daemon_and_its_users() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "", true);
    let bob = account(&twitch, "bob", "1002", "", true);
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        &json!({"users": [user_json(&alice, true, &[])]}),
    );

    let (code, text) = health(dir.path(), &twitch);
    assert_eq!(code, Some(1), "no daemon yet: {text}");

    let mut command = binary_for(dir.path(), &twitch);
    command.env("DEBUG", "true");
    let process = Process::spawn(command);
    assert!(twitch.wait_joined("alice", "alice", WAIT));
    process
        .wait_line(
            |line| line.contains("status file written: alice connected"),
            WAIT,
        )
        .expect("the status file shows alice connected");
    let (code, text) = health(dir.path(), &twitch);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("1 user connected"), "{text}");

    let (status, _, output) = process.terminate();
    assert_eq!(status.code(), Some(0), "{output}");
    let (code, text) = health(dir.path(), &twitch);
    assert_eq!(code, Some(1), "a stopped daemon is not healthy: {text}");

    // A user whose login is gone for good makes the daemon unhealthy, naming the user.
    twitch.expire_access_token("bob");
    twitch.revoke_refresh_token("bob");
    write_config(
        dir.path(),
        &json!({"users": [user_json(&alice, true, &[]), user_json(&bob, true, &[])]}),
    );
    let mut command = binary_for(dir.path(), &twitch);
    command.env("DEBUG", "true");
    let process = Process::spawn(command);
    process
        .wait_line(
            |line| line.contains("status file written") && line.contains("bob needs-login"),
            WAIT,
        )
        .expect("the status file shows bob needing a login");
    let (code, text) = health(dir.path(), &twitch);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("bob"), "{text}");
    let (status, _, output) = process.terminate();
    assert_eq!(status.code(), Some(0), "{output}");
}
