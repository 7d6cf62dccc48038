//! Helpers shared by the integration tests: configs for fake accounts, starting the daemon
//! in-process against a `FakeTwitch`, and synchronising with a user's chat thread.

#![allow(dead_code)]

pub mod eventsub;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fake_twitch::{Account, FakeTwitch, ScriptedResponse};
use twitch_colorchanger::base::stop::StopSignal;
use twitch_colorchanger::base::wall_clock::WallClock;
use twitch_colorchanger::cli::args;
use twitch_colorchanger::config::{self, UserConfig};
use twitch_colorchanger::daemon::settings::Settings;
use twitch_colorchanger::daemon::Daemon;

/// Long enough for any loopback round trip on a loaded 2-core CI machine; only reached when
/// a test is about to fail.
pub const WAIT: Duration = Duration::from_secs(10);

/// A config entry for `account` as a user would write it.
pub fn user_json(account: &Account, prime_or_turbo: bool, channels: &[&str]) -> serde_json::Value {
    account.config_entry(prime_or_turbo, channels)
}

/// Parses users through the real config loader.
pub fn users_from_json(users: Vec<serde_json::Value>) -> Vec<UserConfig> {
    let text = serde_json::json!({ "users": users }).to_string();
    let (config, _document) = config::parse(&text, Path::new("test.json")).expect("valid config");
    config.users
}

/// The environment a daemon needs to talk to `twitch` instead of Twitch.
pub fn fake_env(twitch: &FakeTwitch) -> HashMap<String, String> {
    HashMap::from([
        ("TWITCH_IRC_URL".to_string(), twitch.irc_url()),
        ("TWITCH_EVENTSUB_URL".to_string(), twitch.eventsub_url()),
        ("TWITCH_API_URL".to_string(), twitch.api_url()),
        ("TWITCH_AUTH_URL".to_string(), twitch.auth_url()),
    ])
}

pub fn settings_for(twitch: &FakeTwitch) -> Settings {
    settings_with(twitch, &[])
}

/// Settings for `twitch` with extra environment variables.
pub fn settings_with(twitch: &FakeTwitch, extra: &[(&str, &str)]) -> Settings {
    let mut env = fake_env(twitch);
    for (key, value) in extra {
        env.insert(key.to_string(), value.to_string());
    }
    args::parse(&[], &env).expect("valid settings").settings
}

/// Starts the daemon in this process for `users` against `twitch`.
pub fn start_daemon(twitch: &FakeTwitch, users: Vec<serde_json::Value>) -> Daemon {
    Daemon::start(&users_from_json(users), &settings_for(twitch), None).expect("daemon starts")
}

/// Starts the daemon with extra environment settings.
pub fn start_daemon_with(
    twitch: &FakeTwitch,
    users: Vec<serde_json::Value>,
    extra: &[(&str, &str)],
) -> Daemon {
    Daemon::start(&users_from_json(users), &settings_with(twitch, extra), None)
        .expect("daemon starts")
}

/// A daemon started from a config file, saving tokens through a config writer as the
/// binary does.
pub struct FileDaemon {
    pub daemon: Daemon,
    pub writer: twitch_colorchanger::config::writer::ConfigWriter,
    pub path: std::path::PathBuf,
}

impl FileDaemon {
    /// Waits until every change asked of the writer is on disk, then reads the file.
    pub fn saved_config(&self) -> serde_json::Value {
        assert!(self.writer.flush(WAIT), "config writes finished");
        let text = std::fs::read_to_string(&self.path).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// Runs the daemon's main loop in a thread, as the binary does: it reloads the file.
    pub fn run(self) -> RunningDaemon {
        let stop = self.daemon.stop_signal();
        let daemon = self.daemon;
        RunningDaemon {
            path: self.path,
            writer: self.writer,
            stop,
            main_loop: std::thread::spawn(move || daemon.run_until_stopped(WAIT)),
        }
    }
}

/// A daemon on a config file whose main loop runs in a thread, noticing edits of the file.
pub struct RunningDaemon {
    pub path: std::path::PathBuf,
    pub writer: twitch_colorchanger::config::writer::ConfigWriter,
    stop: StopSignal,
    main_loop: std::thread::JoinHandle<bool>,
}

impl RunningDaemon {
    /// Rewrites the config file in place, the way an editor saves it, once everything the
    /// daemon asked the writer to save is on disk: the edit is the only change.
    pub fn edit(&self, config: &serde_json::Value) {
        assert!(self.writer.flush(WAIT), "config writes finished");
        std::fs::write(&self.path, serde_json::to_string_pretty(config).unwrap()).unwrap();
    }

    /// Stops the daemon and asserts that every thread ended in time.
    pub fn stop(self) {
        self.stop.stop();
        assert!(self.main_loop.join().unwrap(), "every thread ended");
    }
}

/// Writes `config` as `twitch_colorchanger.conf` in `dir`, where the binary looks first;
/// returns its path.
pub fn write_config(dir: &Path, config: &serde_json::Value) -> std::path::PathBuf {
    let path = dir.join("twitch_colorchanger.conf");
    std::fs::write(&path, serde_json::to_string_pretty(config).unwrap()).unwrap();
    path
}

pub fn read_config(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Writes `config` to `dir` and starts the daemon on it in this process.
pub fn start_daemon_on_file(
    twitch: &FakeTwitch,
    dir: &Path,
    config: &serde_json::Value,
    extra: &[(&str, &str)],
) -> FileDaemon {
    let path = write_config(dir, config);
    let (mut loaded, document) =
        twitch_colorchanger::config::file::load(&path).expect("valid config");
    let (writer, _thread) = twitch_colorchanger::config::writer::ConfigWriter::spawn(
        path.clone(),
        document,
        &mut loaded.users,
    )
    .unwrap();
    let mut settings = settings_with(twitch, extra);
    settings.config_path = path.clone();
    let daemon =
        Daemon::start(&loaded.users, &settings, Some(writer.clone())).expect("daemon starts");
    FileDaemon {
        daemon,
        writer,
        path,
    }
}

/// The user entry called `login` in a config document.
pub fn user_entry<'a>(config: &'a serde_json::Value, login: &str) -> &'a serde_json::Value {
    config["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|user| user["username"] == login)
        .unwrap_or_else(|| panic!("no user {login} in {config}"))
}

pub fn is_color_put(request: &fake_twitch::HttpRequest) -> bool {
    request.method == "PUT" && request.path == "/helix/chat/color"
}

/// Now in whole seconds since the Unix epoch, as Twitch's `Ratelimit-Reset` counts.
pub fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Twitch's 429 when a rate-limit bucket stays empty until `reset` (Unix seconds).
pub fn rate_limited_until(reset: u64) -> ScriptedResponse {
    ScriptedResponse::json(
        429,
        r#"{"error":"Too Many Requests","status":429,"message":"Too Many Requests"}"#,
    )
    .with_header("Ratelimit-Limit", "800")
    .with_header("Ratelimit-Remaining", "0")
    .with_header("Ratelimit-Reset", &reset.to_string())
}

/// A wall clock that a test moves ahead (by the returned seconds), as a suspend does while
/// `Instant` stands still.
pub fn movable_clock() -> (WallClock, Arc<AtomicU64>) {
    let ahead_secs = Arc::new(AtomicU64::new(0));
    let ahead = Arc::clone(&ahead_secs);
    let clock = WallClock::from_source(Arc::new(move || {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        now + Duration::from_secs(ahead.load(Ordering::SeqCst))
    }));
    (clock, ahead_secs)
}

/// Sends a burst of ten messages through `send` while the first color change is slow, as a
/// real one can be: the rest of the burst arrives while it is in flight. Returns once the
/// first change has reached Twitch.
pub fn send_burst_during_a_slow_change(twitch: &FakeTwitch, mut send: impl FnMut(&str)) {
    twitch.push_response(
        "PUT",
        "/helix/chat/color",
        ScriptedResponse::status(204).delayed(Duration::from_millis(300)),
    );
    for n in 0..10 {
        send(&format!("spam {n}"));
    }
    // The first change is under way before the test goes on: a daemon stopped right after
    // sends no change it had not started.
    assert!(
        !twitch.wait_color_puts(1, WAIT).is_empty(),
        "the first change of the burst"
    );
}

/// Asserts that the burst of [`send_burst_during_a_slow_change`] coalesced into one to three
/// color changes, the last one away from `old_color`.
pub fn assert_burst_coalesced(twitch: &FakeTwitch, old_color: &str) {
    let puts = twitch.color_puts();
    assert!(
        (1..=3).contains(&puts.len()),
        "{} PUTs for a burst of ten",
        puts.len()
    );
    let last = puts.last().unwrap().query_param("color").unwrap();
    assert_ne!(last.to_ascii_uppercase(), old_color, "ends on a new color");
}

/// Registers `login` with the fake and returns its account.
pub fn account(
    twitch: &FakeTwitch,
    login: &str,
    user_id: &str,
    color: &str,
    turbo: bool,
) -> Account {
    let mut account = Account::new(login, user_id);
    account.color = color.to_string();
    account.turbo = turbo;
    twitch.add_user(account.clone());
    account
}

/// Returns once `login`'s chat thread has handled every line sent to it before: the thread
/// handles lines in order, so the answer to a PING sent now comes after all of them.
pub fn sync_chat(twitch: &FakeTwitch, login: &str, tag: &str) {
    twitch.send_line(login, &format!("PING :{tag}"));
    let pong = format!("PONG :{tag}");
    assert!(
        twitch
            .wait_line_from(login, |line| line == pong, WAIT)
            .is_some(),
        "{login} did not answer PING :{tag}"
    );
}

/// An own message of `account` in `channel`, as Twitch delivers it.
pub fn own_message(account: &Account, channel: &str, text: &str) -> String {
    FakeTwitch::privmsg_line(
        &account.login,
        &account.user_id,
        &account.login,
        channel,
        text,
    )
}

/// True for `#RRGGBB`.
pub fn is_hex_color(color: &str) -> bool {
    color.len() == 7 && color.starts_with('#') && color[1..].chars().all(|c| c.is_ascii_hexdigit())
}

/// The real binary with a clean environment (no TWITCH_* variables of the machine) that
/// talks to `twitch`.
pub fn binary_for(dir: &Path, twitch: &FakeTwitch) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_twitch-colorchanger"));
    command
        .env_clear()
        .current_dir(dir)
        .stdin(std::process::Stdio::null());
    for (key, value) in fake_env(twitch) {
        command.env(key, value);
    }
    command
}

/// `twitch-colorchanger health` in `dir`: its exit code and everything it printed.
pub fn health(dir: &Path, twitch: &FakeTwitch) -> (Option<i32>, String) {
    let output = binary_for(dir, twitch).arg("health").output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), text)
}

/// A running binary whose stdout and stderr lines are collected as they come; killed if a
/// test fails before it ends.
pub struct Process {
    child: Option<std::process::Child>,
    lines: crossbeam_channel::Receiver<String>,
    all_lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Process {
    pub fn spawn(mut command: std::process::Command) -> Process {
        use std::io::BufRead;
        command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = command.spawn().expect("binary starts");
        let (sender, lines) = crossbeam_channel::unbounded();
        let all_lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stdout: Box<dyn std::io::Read + Send> = Box::new(child.stdout.take().unwrap());
        let stderr: Box<dyn std::io::Read + Send> = Box::new(child.stderr.take().unwrap());
        let readers = [stdout, stderr]
            .into_iter()
            .map(|stream| {
                let sender = sender.clone();
                let all_lines = std::sync::Arc::clone(&all_lines);
                std::thread::spawn(move || {
                    for line in std::io::BufReader::new(stream).lines() {
                        let Ok(line) = line else { break };
                        all_lines.lock().unwrap().push(line.clone());
                        let _ = sender.send(line);
                    }
                })
            })
            .collect();
        Process {
            child: Some(child),
            lines,
            all_lines,
            readers,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Waits for an output line (stdout or stderr) matching `pred`, skipping the others.
    pub fn wait_line(&self, pred: impl Fn(&str) -> bool, timeout: Duration) -> Option<String> {
        let deadline = std::time::Instant::now() + timeout;
        while let Ok(line) = self.lines.recv_deadline(deadline) {
            if pred(&line) {
                return Some(line);
            }
        }
        None
    }

    /// Sends SIGTERM, then waits for the exit like `wait_exit`.
    pub fn terminate(self) -> (std::process::ExitStatus, Duration, String) {
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        self.wait_exit()
    }

    /// Waits for the process to end; returns its status, how long that took, and all output.
    pub fn wait_exit(mut self) -> (std::process::ExitStatus, Duration, String) {
        let started = std::time::Instant::now();
        let mut child = self.child.take().expect("running");
        let (sender, receiver) = crossbeam_channel::bounded(1);
        std::thread::spawn(move || {
            let _ = sender.send(child.wait());
        });
        let status = receiver
            .recv_timeout(WAIT)
            .expect("the process exits")
            .unwrap();
        let elapsed = started.elapsed();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        let output = self.all_lines.lock().unwrap().join("\n");
        (status, elapsed, output)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
