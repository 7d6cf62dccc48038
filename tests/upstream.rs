//! Configs written for upstream twitch_colorchanger: a bare list of users, a single user
//! object, `token_expiry` as an ISO date. `check` reads them as they are; `run` writes them
//! back in this project's shape with one log line; anything else is a positioned error.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use fake_twitch::FakeTwitch;

fn run_until_joined(twitch: &FakeTwitch, dir: &Path, login: &str) -> String {
    let n_logins = twitch.n_logins(login);
    let daemon = Process::spawn(binary_for(dir, twitch));
    assert!(twitch.wait_n_logins(login, n_logins + 1, WAIT));
    assert!(twitch.wait_n_joins(login, login, n_logins + 1, WAIT));
    let (status, _, output) = daemon.terminate();
    assert_eq!(status.code(), Some(0), "{output}");
    output
}

fn check(twitch: &FakeTwitch, dir: &Path) -> (Option<i32>, String) {
    let mut command = binary_for(dir, twitch);
    command.arg("check");
    let (status, _, output) = Process::spawn(command).wait_exit();
    (status.code(), output)
}

#[test]
fn upstream_shapes_are_read_and_written_back_in_this_shape() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "", true);
    let mut entry = user_json(&alice, true, &["alice"]);
    entry["token_expiry"] = "2030-01-31T12:00:00.000123".into();
    entry["_note"] = "mine".into();
    for (name, text) in [
        ("a bare list of users", serde_json::json!([entry.clone()])),
        ("a single user object", entry.clone()),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("twitch_colorchanger.conf");
        let original = serde_json::to_string_pretty(&text).unwrap();
        fs::write(&path, &original).unwrap();

        let (code, output) = check(&twitch, dir.path());
        assert_eq!(code, Some(0), "{output}");
        assert!(output.contains(name), "{output}");
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            original,
            "check writes nothing"
        );

        let output = run_until_joined(&twitch, dir.path(), "alice");
        let conversions: Vec<&str> = output
            .lines()
            .filter(|line| line.contains("converted from upstream"))
            .collect();
        assert_eq!(conversions.len(), 1, "one log line: {output}");
        assert!(conversions[0].contains(name), "{output}");
        assert!(
            conversions[0].contains("token_expiry as a date (1)"),
            "{output}"
        );

        let saved: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        let user = user_entry(&saved, "alice");
        assert_eq!(user["token_expires_at"], 1_896_091_200, "{saved}");
        assert!(user.get("token_expiry").is_none(), "{saved}");
        assert_eq!(user["_note"], "mine");
        assert_eq!(user["channels"], serde_json::json!(["alice"]));

        // Converted once: the next start has nothing to convert.
        let output = run_until_joined(&twitch, dir.path(), "alice");
        assert!(!output.contains("converted from upstream"), "{output}");
    }
}

#[test]
fn anything_else_stays_a_positioned_error() {
    let twitch = FakeTwitch::start();
    let cases = [
        (
            "[\n  {\"username\": \"alice\", \"client_id\": \"c\",\n   \"token_expiry\": \"next week\"}\n]\n",
            ":3:",
            "token_expiry",
        ),
        ("[\n  {\"username\": \"\"}\n]\n", ":2:", "username"),
        ("{\n  \"username\": 5\n}\n", ":2:", "username"),
        ("[\n  1\n]\n", ":2:", "user 1"),
    ];
    for (text, position, words) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("twitch_colorchanger.conf");
        fs::write(&path, text).unwrap();
        let (code, output) = check(&twitch, dir.path());
        assert_eq!(code, Some(2), "{text}: {output}");
        assert!(
            output.contains(position) && output.contains(words),
            "{text}: {output}"
        );
        // `run` refuses it the same way and leaves it alone.
        let (status, _, output) = Process::spawn(binary_for(dir.path(), &twitch)).wait_exit();
        assert_eq!(status.code(), Some(2), "{output}");
        assert_eq!(fs::read_to_string(&path).unwrap(), text);
    }
}
