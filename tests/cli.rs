//! The real binary as users and scripts see it: `--help`, `--version`, `check`, config
//! errors with exit code 2 and untouched files, arguments and variables that are not
//! UTF-8, users from the environment, logs without secrets, and a clean exit on SIGTERM.

mod common;

use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use fake_twitch::FakeTwitch;

const BINARY: &str = env!("CARGO_BIN_EXE_twitch-colorchanger");

/// The binary with a clean environment: no TWITCH_* variables from the machine.
fn binary(dir: &Path) -> Command {
    let mut command = Command::new(BINARY);
    command
        .env_clear()
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

struct Output {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run(command: &mut Command) -> Output {
    let output = command.output().expect("binary runs");
    Output {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    path
}

#[test]
fn help_and_version() {
    let dir = tempfile::tempdir().unwrap();
    for flag in ["--help", "-h"] {
        let out = run(binary(dir.path()).arg(flag));
        assert_eq!(out.code, Some(0));
        assert!(
            out.stdout.contains("Usage: twitch-colorchanger"),
            "{}",
            out.stdout
        );
        assert!(out.stdout.contains("check"));
    }
    let out = run(binary(dir.path()).arg("--version"));
    assert_eq!(out.code, Some(0));
    assert_eq!(
        out.stdout.trim(),
        format!("twitch-colorchanger {}", env!("CARGO_PKG_VERSION"))
    );
    let out = run(binary(dir.path()).arg("--frobnicate"));
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("--frobnicate"), "{}", out.stderr);
}

/// Bytes that are not UTF-8, as a shell's `$(printf '\xff')` makes them.
fn not_utf8(prefix: &str, suffix: &str) -> OsString {
    let mut bytes = prefix.as_bytes().to_vec();
    bytes.push(0xff);
    bytes.extend_from_slice(suffix.as_bytes());
    OsString::from_vec(bytes)
}

#[test]
fn bytes_that_are_not_utf8_are_usage_errors_or_paths_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    // A stray argument: exit 2 with the bytes shown escaped.
    let out = run(binary(dir.path()).arg("check").arg(not_utf8("", "")));
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("unknown argument \"\\xFF\"; see --help"),
        "{}",
        out.stderr
    );
    // One of our variables: exit 2 naming it, and not showing its (secret) value.
    let out = run(binary(dir.path())
        .arg("check")
        .env("TWITCH_ACCESS_TOKEN_1", not_utf8("secret", "")));
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("TWITCH_ACCESS_TOKEN_1 is not valid UTF-8"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("secret"), "{}", out.stderr);
    // A variable we do not read is ignored, whatever its bytes.
    let out = run(binary(dir.path())
        .arg("--version")
        .env("LC_WHATEVER", not_utf8("", ""))
        .env(not_utf8("X", ""), "1"));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout.starts_with("twitch-colorchanger "),
        "{}",
        out.stdout
    );
    // A config path that is not UTF-8 is used as a path, given as an option or a variable.
    let text = r#"{"users": [{"username": "alice", "client_id": "cid", "access_token": "at",
        "channels": ["alice"]}]}"#;
    let path = dir.path().join(not_utf8("", ".json"));
    fs::write(&path, text).unwrap();
    let out = run(binary(dir.path()).arg("check").arg("--config").arg(&path));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("1 user OK"), "{}", out.stdout);
    let out = run(binary(dir.path())
        .arg("check")
        .env("TWITCH_CONF_FILE", &path));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("1 user OK"), "{}", out.stdout);
}

#[test]
fn status_file_takes_its_value_after_an_equals_sign() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(binary(dir.path()).args(["health", "--status-file=elsewhere.json"]));
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("no status file at elsewhere.json"),
        "{}",
        out.stderr
    );
}

#[test]
fn check_summarises_a_valid_config_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let text = r##"{
  "_comment": "kept",
  "users": [
    {"username": "Alice", "client_id": "cid-a", "client_secret": "cs-secret-a",
     "access_token": "oauth:at-secret-a", "refresh_token": "rt-secret-a",
     "channels": ["#Alice", "bob", "BOB"]},
    {"username": "carol", "client_id": "cid-c", "access_token": "at-secret-c",
     "is_prime_or_turbo": false, "enabled": false}
  ]
}
"##;
    let path = write(dir.path(), "my.conf", text);
    let out = run(binary(dir.path()).args(["check", "--config", "my.conf"]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("2 users"), "{}", out.stdout);
    assert!(out.stdout.contains("alice: enabled"), "{}", out.stdout);
    assert!(out.stdout.contains("#alice, #bob"), "{}", out.stdout);
    assert!(
        out.stdout.contains("carol: disabled, named colors"),
        "{}",
        out.stdout
    );
    for secret in ["cs-secret-a", "at-secret-a", "rt-secret-a", "at-secret-c"] {
        assert!(!out.stdout.contains(secret) && !out.stderr.contains(secret));
    }
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        text,
        "check never writes"
    );

    // The same file found through TWITCH_CONF_FILE and through the default name.
    let out = run(binary(dir.path())
        .arg("check")
        .env("TWITCH_CONF_FILE", path.to_str().unwrap()));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    write(dir.path(), "twitch_colorchanger.conf", text);
    let out = run(binary(dir.path()).arg("check"));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}

#[test]
fn bad_configs_exit_2_with_a_clear_error_and_stay_byte_identical() {
    let example = include_str!("../config.example.json");
    let user = |fields: &str| {
        format!(
            r#"{{"users": [{{"username": "alice", "client_id": "cid", "access_token": "at"{fields}}}]}}"#
        )
    };
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "syntax",
            "{\n  \"users\": [\n    {\"username\": \"alice\",}\n  ]\n}\n".to_string(),
            vec!["bad.conf:3:"],
        ),
        (
            "missing username",
            r#"{"users": [{"client_id": "cid", "access_token": "at"}]}"#.to_string(),
            vec!["bad.conf", "user 1", "username"],
        ),
        (
            "duplicate users",
            r#"{"users": [
                {"username": "alice", "client_id": "a", "access_token": "at"},
                {"username": "ALICE", "client_id": "b", "access_token": "at"}]}"#
                .to_string(),
            vec!["bad.conf", "user 2", "alice"],
        ),
        (
            "placeholder from the example",
            example.to_string(),
            vec!["bad.conf", "user 1", "your_twitch_username"],
        ),
        (
            "empty client id",
            r#"{"users": [{"username": "alice", "client_id": "", "access_token": "at"}]}"#
                .to_string(),
            vec!["bad.conf", "alice", "client_id"],
        ),
        (
            "channels not a list",
            user(r#", "channels": "alice""#),
            vec!["alice", "channels"],
        ),
        (
            "no users",
            r#"{"users": []}"#.to_string(),
            vec!["bad.conf", "users"],
        ),
    ];
    for (name, text, expected) in cases {
        for command in ["check", "run"] {
            let dir = tempfile::tempdir().unwrap();
            let path = write(dir.path(), "bad.conf", &text);
            fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
            let out = run(binary(dir.path()).args([command, "--config", "bad.conf"]));
            assert_eq!(out.code, Some(2), "{name} ({command}): {}", out.stderr);
            assert_eq!(
                out.stderr.lines().filter(|l| !l.trim().is_empty()).count(),
                1,
                "{name} ({command}): one clear error line: {}",
                out.stderr
            );
            for fragment in &expected {
                assert!(
                    out.stderr.contains(fragment),
                    "{name} ({command}): {fragment:?} not in {}",
                    out.stderr
                );
            }
            assert_eq!(
                fs::read_to_string(&path).unwrap(),
                text,
                "{name}: file untouched"
            );
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o640, "{name}: mode untouched");
            let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
            assert_eq!(names.len(), 1, "{name}: no other file appeared");
        }
    }
}

#[test]
fn a_missing_config_without_env_users_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(binary(dir.path()).arg("check"));
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains("twitch_colorchanger.conf"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("config.example.json"), "{}", out.stderr);
}

fn env_user(command: &mut Command, n: u32, login: &str, channels: &str) {
    command
        .env(format!("TWITCH_USERNAME_{n}"), login)
        .env(
            format!("TWITCH_ACCESS_TOKEN_{n}"),
            format!("oauth:at-{login}"),
        )
        .env(format!("TWITCH_REFRESH_TOKEN_{n}"), format!("rt-{login}"))
        .env(format!("TWITCH_CLIENT_ID_{n}"), format!("cid-{login}"))
        .env(format!("TWITCH_CLIENT_SECRET_{n}"), format!("cs-{login}"))
        .env(format!("TWITCH_CHANNELS_{n}"), channels);
}

#[test]
fn check_accepts_users_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = binary(dir.path());
    command.arg("check");
    env_user(&mut command, 1, "alice", "#alice, Bob");
    env_user(&mut command, 2, "carol", "");
    command.env("USE_RANDOM_COLORS_2", "false");
    let out = run(&mut command);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout.contains(
            "alice: enabled, hex (Turbo/Prime) colors, mode random, channels #alice, #bob"
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("carol: enabled, named colors, mode random, channels #carol"),
        "{}",
        out.stdout
    );
    assert!(
        !dir.path().join("twitch_colorchanger.conf").exists(),
        "check writes nothing"
    );
}

#[test]
fn env_users_run_are_written_to_the_config_and_logs_hold_no_secrets() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "", true);
    let dir = tempfile::tempdir().unwrap();
    let mut command = binary_for(dir.path(), &twitch);
    env_user(&mut command, 1, "alice", "alice");
    command.env("DEBUG", "true");
    let daemon = Process::spawn(command);
    assert!(twitch.wait_joined("alice", "alice", WAIT));

    twitch.send_line("alice", &own_message(&alice, "alice", "hi"));
    let put = twitch
        .wait_request(|r| r.method == "PUT", WAIT)
        .expect("color PUT");
    let color = put.query_param("color").unwrap().to_string();
    sync_chat(&twitch, "alice", "before-exit");

    let (status, _, stderr) = daemon.terminate();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains(&format!("alice → {color}")), "{stderr}");
    for secret in ["at-alice", "rt-alice", "cs-alice"] {
        assert!(!stderr.contains(secret), "{secret} leaked: {stderr}");
    }

    let path = dir.path().join("twitch_colorchanger.conf");
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "a new config file is private");
    let written: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    let user = &written["users"][0];
    assert_eq!(user["username"], "alice");
    assert_eq!(user["access_token"], "at-alice");
    assert_eq!(user["refresh_token"], "rt-alice");
    assert_eq!(user["channels"], serde_json::json!(["alice"]));
}

#[test]
fn sigterm_with_100_connected_users_exits_0_promptly() {
    let twitch = FakeTwitch::start();
    let accounts: Vec<_> = (0..100)
        .map(|n| {
            account(
                &twitch,
                &format!("user{n}"),
                &format!("{}", 7000 + n),
                "",
                true,
            )
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let config = serde_json::json!({
        "users": accounts.iter().map(|a| user_json(a, true, &[])).collect::<Vec<_>>()
    });
    write(dir.path(), "twitch_colorchanger.conf", &config.to_string());
    let daemon = Process::spawn(binary_for(dir.path(), &twitch));
    for account in &accounts {
        assert!(
            twitch.wait_joined(&account.login, &account.login, WAIT),
            "{}",
            account.login
        );
    }
    let (status, elapsed, stderr) = daemon.terminate();
    eprintln!("exit after SIGTERM with 100 users took {elapsed:?}");
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");
    assert!(
        !stderr.contains("still busy"),
        "every thread ended: {stderr}"
    );
}

/// Runs the daemon for `alice` with stderr going to a file, waits until it joined, stops
/// it, and returns the log.
fn log_to_file(dir: &Path, extra_env: impl Fn(&Path) -> Vec<(String, String)>) -> String {
    let twitch = &FakeTwitch::start();
    account(twitch, "alice", "1001", "", true);
    let log_path = dir.join("daemon.log");
    let log = fs::File::create(&log_path).unwrap();
    let mut command = binary_for(dir, twitch);
    env_user(&mut command, 1, "alice", "alice");
    command.env("TERM", "xterm-256color");
    for (key, value) in extra_env(&log_path) {
        command.env(key, value);
    }
    let mut child = command.stdout(Stdio::null()).stderr(log).spawn().unwrap();
    let joined = twitch.wait_joined("alice", "alice", WAIT);
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(joined && killed.success() && status.success(), "{status}");
    fs::read_to_string(&log_path).unwrap()
}

#[test]
fn logs_to_a_file_have_no_colors_and_in_the_journal_no_timestamps() {
    use std::os::unix::fs::MetadataExt;

    // From a shell with TERM set, into a file: plain text with our timestamps.
    let dir = tempfile::tempdir().unwrap();
    let log = log_to_file(dir.path(), |_| Vec::new());
    assert!(log.contains("alice: watching #alice"), "{log}");
    assert!(!log.contains('\u{1b}'), "escape codes in a file: {log:?}");
    for line in log.lines() {
        let time = line.split(' ').next().unwrap();
        assert!(
            time.len() == 8 && time.chars().filter(|c| *c == ':').count() == 2,
            "no timestamp: {line}"
        );
    }

    // Under systemd, JOURNAL_STREAM names stderr: journald adds the time, we do not.
    let dir = tempfile::tempdir().unwrap();
    let log = log_to_file(dir.path(), |log_path| {
        let metadata = fs::metadata(log_path).unwrap();
        vec![(
            "JOURNAL_STREAM".to_string(),
            format!("{}:{}", metadata.dev(), metadata.ino()),
        )]
    });
    assert!(log.contains("alice: watching #alice"), "{log}");
    for line in log.lines() {
        assert!(line.starts_with('['), "a timestamp of our own: {line}");
    }
}
