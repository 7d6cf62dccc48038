//! `auth --client-id` from nothing: no config file at all, a device-code login, and a
//! config with the account's tokens and default settings; again for a second account;
//! then `check` passes and `run` starts both. A broken config is reported before any
//! login and never overwritten.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;
use fake_twitch::FakeTwitch;

/// Runs `auth --client-id` and approves the code it shows for `login`; returns the output.
fn auth_as(
    twitch: &FakeTwitch,
    dir: &Path,
    client_id: &str,
    extra: &[&str],
    login: &str,
) -> String {
    let mut command = binary_for(dir, twitch);
    command.args(["auth", "--client-id", client_id, "--config", "new.conf"]);
    command.args(extra);
    let process = Process::spawn(command);
    let line = process
        .wait_line(|line| line.contains("enter the code"), WAIT)
        .expect("the code is shown");
    let code = line
        .split("enter the code ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .expect("a code in the line");
    assert!(line.contains("https://www.twitch.tv/activate"), "{line}");
    twitch.approve_device(code, login);
    let (status, _, output) = process.wait_exit();
    assert_eq!(status.code(), Some(0), "{output}");
    output
}

#[test]
fn auth_creates_the_config_and_adds_accounts_then_check_and_run_work() {
    let twitch = FakeTwitch::start();
    twitch.set_device_interval(0);
    let alice = account(&twitch, "alice", "1001", "", true);
    let bob = account(&twitch, "bob", "1002", "", false);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.conf");

    let output = auth_as(
        &twitch,
        dir.path(),
        &alice.client_id,
        &["--client-secret", &alice.client_secret],
        "alice",
    );
    assert!(output.contains("alice: logged in; added to"), "{output}");
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600,
        "the config holds tokens: private"
    );
    let saved: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    let user = user_entry(&saved, "alice");
    assert_eq!(user["client_id"], alice.client_id.as_str());
    assert_eq!(user["client_secret"], alice.client_secret.as_str());
    assert_eq!(user["access_token"], twitch.access_token("alice").as_str());
    assert_eq!(
        user["refresh_token"],
        twitch.refresh_token("alice").as_str()
    );
    assert_eq!(user["channels"], serde_json::json!([]));
    assert_eq!(user["is_prime_or_turbo"], true);
    assert_eq!(user["enabled"], true);
    assert!(user["token_expires_at"].as_u64().is_some(), "{user}");
    for secret in [
        twitch.access_token("alice"),
        twitch.refresh_token("alice"),
        alice.client_secret.clone(),
    ] {
        assert!(
            !output.contains(&secret),
            "{secret} in the output: {output}"
        );
    }

    // A second account, no client secret (a public client); a note of the user's is kept.
    let mut edited = saved.clone();
    edited["_comment"] = "my accounts".into();
    fs::write(&path, serde_json::to_string_pretty(&edited).unwrap()).unwrap();
    let output = auth_as(
        &twitch,
        dir.path(),
        &bob.client_id,
        &["--user", "bob"],
        "bob",
    );
    assert!(output.contains("bob: logged in; added to"), "{output}");
    let saved: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(saved["_comment"], "my accounts");
    assert_eq!(saved["users"].as_array().unwrap().len(), 2);
    assert_eq!(user_entry(&saved, "bob")["client_secret"], "");
    assert_eq!(
        user_entry(&saved, "bob")["access_token"],
        twitch.access_token("bob").as_str()
    );

    // Logging alice in again replaces her tokens and keeps her entry where it is.
    let before = twitch.access_token("alice");
    let output = auth_as(&twitch, dir.path(), &alice.client_id, &[], "alice");
    assert!(
        output.contains("alice: logged in; new tokens saved in"),
        "{output}"
    );
    let saved: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(saved["users"][0]["username"], "alice");
    assert_ne!(saved["users"][0]["access_token"], before.as_str());
    assert_eq!(
        saved["users"][0]["access_token"],
        twitch.access_token("alice").as_str()
    );
    assert_eq!(
        saved["users"][0]["client_secret"],
        alice.client_secret.as_str(),
        "same client: kept"
    );

    let mut check = binary_for(dir.path(), &twitch);
    check.args(["check", "--config", "new.conf"]);
    let (status, _, output) = Process::spawn(check).wait_exit();
    assert_eq!(status.code(), Some(0), "{output}");
    assert!(output.contains("2 users OK"), "{output}");

    let mut run = binary_for(dir.path(), &twitch);
    run.args(["--config", "new.conf"]);
    let daemon = Process::spawn(run);
    // Logins made by auth carry user:read:chat, so chat_transport auto reads over EventSub.
    assert!(twitch.wait_eventsub_subscribed("alice", "alice", WAIT));
    assert!(twitch.wait_eventsub_subscribed("bob", "bob", WAIT));
    let (status, _, output) = daemon.terminate();
    assert_eq!(status.code(), Some(0), "{output}");
}

#[test]
fn auth_never_touches_a_broken_config_and_checks_the_account_asked_for() {
    let twitch = FakeTwitch::start();
    twitch.set_device_interval(0);
    let alice = account(&twitch, "alice", "1001", "", true);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.conf");
    let broken = "{\"users\": [\n  {\"username\": \"x\",}\n]}\n";
    fs::write(&path, broken).unwrap();
    let spawn_auth = |args: &[&str]| {
        let mut command = binary_for(dir.path(), &twitch);
        command
            .args(["auth", "--client-id", &alice.client_id])
            .args(args);
        Process::spawn(command)
    };
    let (status, _, output) = spawn_auth(&["--config", "new.conf"]).wait_exit();
    assert_eq!(status.code(), Some(2), "{output}");
    assert!(output.contains("new.conf:2:"), "positioned: {output}");
    assert_eq!(fs::read_to_string(&path).unwrap(), broken);
    assert!(
        twitch.device_user_codes().is_empty(),
        "no login was started"
    );

    // A config in a directory that does not exist is refused before the login, too.
    let (status, _, output) = spawn_auth(&["--config", "nowhere/new.conf"]).wait_exit();
    assert_eq!(status.code(), Some(2), "{output}");
    assert!(
        output.contains("the directory nowhere does not exist"),
        "{output}"
    );
    assert!(
        twitch.device_user_codes().is_empty(),
        "no login was started"
    );

    // --user names the account expected: logging in as another is refused, nothing written.
    fs::remove_file(&path).unwrap();
    let process = spawn_auth(&["--user", "mallory", "--config", "new.conf"]);
    let code = twitch.wait_device_user_code(WAIT).expect("a device code");
    twitch.approve_device(&code, "alice");
    let (status, _, output) = process.wait_exit();
    assert_eq!(status.code(), Some(1), "{output}");
    assert!(output.contains("logged in to Twitch as alice"), "{output}");
    assert!(!path.exists());
}
