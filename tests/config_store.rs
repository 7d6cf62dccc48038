//! The config file as the one store of the tokens, against the live daemon and the fake
//! Twitch (which accepts only the newest refresh token): an editor's stale copy saved after
//! a refresh, and a start after an in-place write that was cut off.

mod common;

use common::*;
use fake_twitch::FakeTwitch;
use serde_json::json;
use twitch_colorchanger::config::file as config_file;
use twitch_colorchanger::config::writer::ConfigWriter;
use twitch_colorchanger::daemon::Daemon;

/// Starts the daemon on the config already at `path`, as the binary does.
fn start_on_existing_file(twitch: &FakeTwitch, path: &std::path::Path) -> (Daemon, ConfigWriter) {
    let (mut loaded, document) = config_file::load(path).expect("valid config");
    let (writer, _thread) =
        ConfigWriter::spawn(path.to_path_buf(), document, &mut loaded.users).unwrap();
    let mut settings = settings_with(twitch, &[("TWITCH_RELOAD_SECS", "1")]);
    settings.config_path = path.to_path_buf();
    let daemon = Daemon::start(&loaded.users, &settings, Some(writer.clone())).unwrap();
    (daemon, writer)
}

fn saved_refresh_token(path: &std::path::Path) -> String {
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    user_entry(&saved, "alice")["refresh_token"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_stale_editor_save_after_a_refresh_keeps_the_newest_refresh_token_across_a_restart() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "", true);
    twitch.expire_access_token("alice");
    let dir = tempfile::tempdir().unwrap();
    let config = json!({"users": [user_json(&alice, true, &[])]});
    // A person opens the config in an editor now, before the daemon refreshes.
    let file_daemon =
        start_daemon_on_file(&twitch, dir.path(), &config, &[("TWITCH_RELOAD_SECS", "1")]);
    let path = file_daemon.path.clone();
    let editor_buffer = std::fs::read_to_string(&path).unwrap();
    assert!(twitch.wait_joined("alice", "alice", WAIT));
    let newest = twitch.refresh_token("alice");
    assert_ne!(newest, alice.refresh_token, "Twitch rotated the token");
    assert_eq!(
        user_entry(&file_daemon.saved_config(), "alice")["refresh_token"],
        newest.as_str()
    );

    let running = file_daemon.run();

    // The editor saves its old buffer with one change: another channel.
    let mut stale: serde_json::Value = serde_json::from_str(&editor_buffer).unwrap();
    stale["users"][0]["channels"] = json!(["alice", "somewhere"]);
    running.edit(&stale);

    // The edit is applied, with the newest tokens: the channel is joined, and the file
    // gets the newest refresh token back.
    assert!(twitch.wait_joined("alice", "somewhere", WAIT));
    assert!(running.writer.flush(WAIT));
    assert_eq!(saved_refresh_token(&path), newest);
    running.stop();

    // The next start refreshes with what the file holds, and Twitch accepts it: with the
    // access token expired, chat can only log in again after a refresh.
    twitch.expire_access_token("alice");
    let n_logins = twitch.n_logins("alice");
    let (daemon, writer) = start_on_existing_file(&twitch, &path);
    assert!(
        twitch.wait_n_logins("alice", n_logins + 1, WAIT),
        "logged in again"
    );
    let after_restart = twitch.refresh_token("alice");
    assert_ne!(after_restart, newest, "refreshed with the newest token");
    assert!(writer.flush(WAIT));
    assert_eq!(saved_refresh_token(&path), after_restart);
    assert!(daemon.shutdown(WAIT));
}

#[test]
fn the_binary_completes_an_in_place_write_that_was_cut_off_instead_of_exiting_2() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "", true);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("twitch_colorchanger.conf");
    let complete =
        serde_json::to_string_pretty(&json!({"users": [user_json(&alice, true, &[])]})).unwrap();
    // What a cut-off in-place write leaves: half a file, and the complete copy beside it.
    std::fs::write(config_file::in_place_copy_path(&path), &complete).unwrap();
    std::fs::write(&path, &complete[..complete.len() / 2]).unwrap();

    let process = Process::spawn(binary_for(dir.path(), &twitch));
    let line = process
        .wait_line(|line| line.contains("completed it from the copy"), WAIT)
        .expect("the recovery is logged");
    assert!(line.contains("twitch_colorchanger.conf"), "{line}");
    assert!(twitch.wait_joined("alice", "alice", WAIT));
    let (status, _, output) = process.terminate();
    assert_eq!(status.code(), Some(0), "{output}");
    assert!(config_file::load(&path).is_ok());
    assert!(!config_file::in_place_copy_path(&path).exists());
    // The half file is kept as the newest backup, not thrown away.
    let backup = std::fs::read_to_string(config_file::backup_path(&path, 1)).unwrap();
    assert_eq!(backup, complete[..complete.len() / 2]);
}

#[test]
fn a_config_broken_by_hand_exits_2_and_names_the_backup() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "", true);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("twitch_colorchanger.conf");
    let good =
        serde_json::to_string_pretty(&json!({"users": [user_json(&alice, true, &[])]})).unwrap();
    std::fs::write(config_file::backup_path(&path, 1), &good).unwrap();
    let broken = "{\"users\": [\n";
    std::fs::write(&path, broken).unwrap();
    let output = binary_for(dir.path(), &twitch)
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("twitch_colorchanger.conf:2:"), "{stderr}");
    assert!(
        stderr.contains("kept in") && stderr.contains("twitch_colorchanger.conf.bak.1"),
        "{stderr}"
    );
    // Without a copy of an interrupted write, a broken file is a person's: left alone.
    assert_eq!(std::fs::read_to_string(&path).unwrap(), broken);
}

/// Sets the file-size limit of process `pid` (0: this one) in bytes; writes past it fail
/// with EFBIG, as a full disk fails them with ENOSPC.
#[cfg(target_os = "linux")]
fn set_file_size_limit(pid: libc::pid_t, bytes: libc::rlim_t) -> std::io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: prlimit only reads `limit`; a null old-limit pointer is allowed.
    let result = unsafe { libc::prlimit(pid, libc::RLIMIT_FSIZE, &limit, std::ptr::null_mut()) };
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The real binary on a "disk" where a file can hold at most `bytes`: writes past that fail
/// with an error, as on a full disk.
#[cfg(target_os = "linux")]
fn spawn_on_a_full_disk(
    dir: &std::path::Path,
    twitch: &FakeTwitch,
    bytes: libc::rlim_t,
) -> Process {
    use std::os::unix::process::CommandExt;

    let mut command = binary_for(dir, twitch);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(move || {
            // The size limit would also send SIGXFSZ, which must not end the daemon.
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            set_file_size_limit(0, bytes)
        });
    }
    Process::spawn(command)
}

#[cfg(target_os = "linux")]
#[test]
fn the_binary_on_a_full_disk_keeps_the_newest_tokens_and_saves_them_once_there_is_room() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "", true);
    twitch.expire_access_token("alice");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("twitch_colorchanger.conf");
    // A config larger than the room left; the status file and the token journal fit.
    let mut user = user_json(&alice, true, &[]);
    user["_notes"] = json!("n".repeat(3000));
    let original = serde_json::to_string_pretty(&json!({"users": [user]})).unwrap();
    std::fs::write(&path, &original).unwrap();

    let process = spawn_on_a_full_disk(dir.path(), &twitch, 2000);
    // The expired token is refreshed; saving it fails.
    let blocked = process
        .wait_line(
            |line| line.contains("cannot write") && line.contains("tokens are kept"),
            WAIT,
        )
        .expect("the failed save is logged, with where the tokens are");
    assert!(
        blocked.contains("twitch_colorchanger.conf.tokens"),
        "{blocked}"
    );
    let newest = twitch.refresh_token("alice");
    assert_ne!(newest, alice.refresh_token);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        original,
        "untouched"
    );
    let journaled = std::fs::read_to_string(dir.path().join("twitch_colorchanger.conf.tokens"))
        .expect("the tokens are kept beside the config");
    assert!(journaled.contains(&newest));

    // Space returns: the next retry saves the tokens in the config.
    set_file_size_limit(process.pid() as libc::pid_t, libc::RLIM_INFINITY).unwrap();
    process
        .wait_line(
            |line| line.contains("the waiting changes are saved now"),
            WAIT,
        )
        .expect("saved once there is room");
    assert_eq!(saved_refresh_token(&path), newest);
    // The tokens file stays, holding the newest tokens: the record that tells a stale copy
    // of the config from a paste at the next start.
    let kept = std::fs::read_to_string(dir.path().join("twitch_colorchanger.conf.tokens"))
        .expect("the tokens file stays");
    assert!(kept.contains(&newest));
    let (status, _, output) = process.terminate();
    assert_eq!(status.code(), Some(0), "{output}");
    assert!(!output.contains(&newest), "no token in the log");
}

#[cfg(target_os = "linux")]
#[test]
fn on_a_disk_too_full_for_the_token_journal_the_log_says_the_tokens_are_only_in_memory() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "", true);
    twitch.expire_access_token("alice");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("twitch_colorchanger.conf");
    let mut user = user_json(&alice, true, &[]);
    user["_notes"] = json!("n".repeat(3000));
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&json!({"users": [user]})).unwrap(),
    )
    .unwrap();

    // Room for no file at all: neither the config nor the journal can be written.
    let process = spawn_on_a_full_disk(dir.path(), &twitch, 10);
    let blocked = process
        .wait_line(
            |line| line.contains("cannot write") && line.contains("waiting"),
            WAIT,
        )
        .expect("the failed save is logged");
    assert!(blocked.contains("only in memory"), "{blocked}");
    assert!(!blocked.contains("kept in"), "{blocked}");
    let (status, _, output) = process.terminate();
    assert_eq!(status.code(), Some(0), "{output}");
    assert!(!output.contains("tokens are kept in"), "{output}");
}
