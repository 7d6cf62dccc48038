//! The daemon's status file for `health`: the status model and its pure health verdict,
//! plus `StatusBoard`, the shared board the daemon updates and the "status-writer" thread
//! that writes it to disk. `evaluate` and `merge_state` are pure; the board, the writer,
//! `process_is_running` and `run_health` do file and `/proc` I/O.
//!
//! The file is JSON, rewritten atomically when a user's state changes (at most once per
//! `min_interval`) and at least once per `max_interval`, and removed at clean shutdown, so
//! `health` fails once the daemon is gone. It never holds a secret: states carry short
//! reasons written by the daemon, never tokens.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use log::{debug, info, warn};
use serde::{Deserialize, Serialize};

use crate::base::clock::unix_now;
use crate::base::ids::Login;
use crate::base::sync::lock;
use crate::config::file as config_file;

/// How long a user may be starting or reconnecting before `health` calls it unhealthy.
/// Reconnect backoff is capped at about two minutes, so this allows a couple of attempts.
pub const DEFAULT_HEALTH_GRACE: Duration = Duration::from_secs(300);
/// How old the file may be before `health` calls the daemon hung: more than twice the
/// writer's [`DEFAULT_MAX_INTERVAL`], so one slow write is not a failure.
pub const DEFAULT_MAX_STATUS_AGE: Duration = Duration::from_secs(150);
/// The writer writes at most once per this interval, however often states change.
pub const DEFAULT_MIN_INTERVAL: Duration = Duration::from_secs(1);
/// The writer writes at least once per this interval, even when nothing changed, so a
/// fresh file proves the daemon is not hung.
pub const DEFAULT_MAX_INTERVAL: Duration = Duration::from_secs(60);

/// What one user's chat connection is doing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UserState {
    /// The user's threads were started and have not connected yet.
    Starting { since_unix: u64 },
    /// Logged in to chat.
    Connected { since_unix: u64 },
    /// The connection was lost; `since_unix` is when it was lost, not the latest attempt.
    Reconnecting { since_unix: u64, reason: String },
    /// The tokens were refused for good; only a new login (a person) can fix it.
    NeedsLogin { reason: String },
    /// The user's threads gave up or were stopped while the daemon runs on.
    Stopped { reason: String },
    /// The daemon deliberately does not run this user; `health` ignores it.
    Disabled,
}

impl UserState {
    /// When the current episode began, for the states that have one.
    pub fn since_unix(&self) -> Option<u64> {
        match self {
            UserState::Starting { since_unix }
            | UserState::Connected { since_unix }
            | UserState::Reconnecting { since_unix, .. } => Some(*since_unix),
            UserState::NeedsLogin { .. } | UserState::Stopped { .. } | UserState::Disabled => None,
        }
    }
}

/// One user's line in the status file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserStatus {
    pub state: UserState,
    /// Whether automatic color changes are on (`ccd`/`cce`, the config's `enabled`). A user
    /// with changes off still needs its chat connection for `cce` and `ccc`, so `health`
    /// checks it all the same.
    pub changes_enabled: bool,
    /// When the color was last changed, in Unix seconds.
    pub last_change_unix: Option<u64>,
    /// The color set by the last change, as sent to Helix (`#RRGGBB` or a named color).
    pub last_color: Option<String>,
}

/// The whole status file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    /// The daemon's process id, so `health` can tell a crashed daemon from a live one.
    pub pid: u32,
    pub version: String,
    pub started_unix: u64,
    /// When this report was written; a stale report means a hung or dead daemon.
    pub written_unix: u64,
    /// By login.
    pub users: BTreeMap<String, UserStatus>,
}

impl StatusReport {
    /// A report for this process with no users yet.
    pub fn for_this_process(started_unix: u64) -> StatusReport {
        StatusReport {
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_unix,
            written_unix: started_unix,
            users: BTreeMap::new(),
        }
    }
}

/// `<config file stem>.status.json` in the config's directory: the default config
/// `twitch_colorchanger.conf` gets `twitch_colorchanger.status.json`. Two daemons with
/// different configs in one directory get different status files.
pub fn default_status_path(config_path: &Path) -> PathBuf {
    let stem = config_path
        .file_stem()
        .filter(|stem| !stem.is_empty())
        .map_or_else(
            || "twitch_colorchanger".to_string(),
            |stem| stem.to_string_lossy().into_owned(),
        );
    let file_name = format!("{stem}.status.json");
    match config_path.parent() {
        Some(parent) => parent.join(file_name),
        None => PathBuf::from(file_name),
    }
}

/// Decides whether a report describes a healthy daemon at `now_unix`. Pure: the process
/// check is [`process_is_running`], done by [`run_health`].
///
/// Healthy means the report was written within `max_age`, and every user not
/// [`UserState::Disabled`] is connected, or has been starting or reconnecting for less
/// than `grace`. The error names every unhealthy user, in login order, on one line.
pub fn evaluate(
    report: &StatusReport,
    now_unix: u64,
    grace: Duration,
    max_age: Duration,
) -> Result<(), String> {
    let age = now_unix.saturating_sub(report.written_unix);
    if age > max_age.as_secs() {
        return Err(format!(
            "status file was last written {} ago (allowed {}): the daemon is hung or gone",
            format_seconds(age),
            format_seconds(max_age.as_secs())
        ));
    }
    let problems: Vec<String> = report
        .users
        .iter()
        .filter_map(|(login, status)| user_problem(login, &status.state, now_unix, grace))
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

fn user_problem(login: &str, state: &UserState, now_unix: u64, grace: Duration) -> Option<String> {
    let grace_seconds = grace.as_secs();
    match state {
        UserState::Connected { .. } | UserState::Disabled => None,
        UserState::Starting { since_unix } => {
            let waited = now_unix.saturating_sub(*since_unix);
            (waited >= grace_seconds)
                .then(|| format!("{login} has not connected in {}", format_seconds(waited)))
        }
        UserState::Reconnecting { since_unix, reason } => {
            let waited = now_unix.saturating_sub(*since_unix);
            (waited >= grace_seconds).then(|| {
                format!(
                    "{login} has been reconnecting for {}: {reason}",
                    format_seconds(waited)
                )
            })
        }
        UserState::NeedsLogin { reason } => Some(format!("{login} needs a new login: {reason}")),
        UserState::Stopped { reason } => Some(format!("{login} is stopped: {reason}")),
    }
}

/// A one-line description of a report for `health`'s success output.
pub fn summarize(report: &StatusReport, now_unix: u64) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for status in report.users.values() {
        let word = match status.state {
            UserState::Starting { .. } => "starting",
            UserState::Connected { .. } => "connected",
            UserState::Reconnecting { .. } => "reconnecting",
            UserState::NeedsLogin { .. } => "needing login",
            UserState::Stopped { .. } => "stopped",
            UserState::Disabled => "disabled",
        };
        *counts.entry(word).or_default() += 1;
    }
    let mut summary = String::from("healthy: ");
    if counts.is_empty() {
        summary.push_str("no users");
    }
    for (index, (word, count)) in counts.iter().enumerate() {
        let separator = if index == 0 { "" } else { ", " };
        let noun = if *count == 1 { "user" } else { "users" };
        let _ = write!(summary, "{separator}{count} {noun} {word}");
    }
    let _ = write!(
        summary,
        " (pid {}, version {}, written {} ago)",
        report.pid,
        report.version,
        format_seconds(now_unix.saturating_sub(report.written_unix))
    );
    summary
}

/// `45 s` below two minutes, then `7 min` or `7 min 5 s`: precise where it matters.
fn format_seconds(seconds: u64) -> String {
    match (seconds / 60, seconds % 60) {
        _ if seconds < 120 => format!("{seconds} s"),
        (minutes, 0) => format!("{minutes} min"),
        (minutes, rest) => format!("{minutes} min {rest} s"),
    }
}

/// The state to store when `new` replaces `old`. Staying in the same kind of state keeps
/// the old `since_unix`: a reconnect loop that reports every failed attempt must not
/// restart the grace period each time, or a user who never reconnects would look healthy.
pub fn merge_state(old: &UserState, new: UserState) -> UserState {
    match (old, new) {
        (UserState::Reconnecting { since_unix, .. }, UserState::Reconnecting { reason, .. }) => {
            UserState::Reconnecting {
                since_unix: *since_unix,
                reason,
            }
        }
        (UserState::Connected { since_unix }, UserState::Connected { .. }) => {
            UserState::Connected {
                since_unix: *since_unix,
            }
        }
        (UserState::Starting { since_unix }, UserState::Starting { .. }) => UserState::Starting {
            since_unix: *since_unix,
        },
        (_, new) => new,
    }
}

/// Whether process `pid` exists, by looking for `/proc/<pid>`; `None` where there is no
/// `/proc` to ask (not Linux), so the caller can skip the check rather than guess.
///
/// It only means something in the daemon's PID namespace: run `health` inside the same
/// container as the daemon (which is what Docker's HEALTHCHECK does).
pub fn process_is_running(pid: u32) -> Option<bool> {
    if !Path::new("/proc/self").exists() {
        return None;
    }
    Some(pid != 0 && Path::new("/proc").join(pid.to_string()).exists())
}

/// The `health` command: reads the status file, checks the daemon's process is alive, and
/// evaluates the report with [`DEFAULT_HEALTH_GRACE`] and [`DEFAULT_MAX_STATUS_AGE`].
/// `Ok` is a summary for stdout (exit 0), `Err` the reason for stderr (exit 1).
pub fn run_health(status_path: &Path, now_unix: u64) -> Result<String, String> {
    run_health_with(
        status_path,
        now_unix,
        DEFAULT_HEALTH_GRACE,
        DEFAULT_MAX_STATUS_AGE,
    )
}

/// [`run_health`] with the grace period and the allowed file age given, for tests and for
/// settings that override them.
pub fn run_health_with(
    status_path: &Path,
    now_unix: u64,
    grace: Duration,
    max_age: Duration,
) -> Result<String, String> {
    let text = match std::fs::read_to_string(status_path) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Err(format!(
                "no status file at {}: the daemon is not running, or it writes its status \
                 elsewhere (--status-file, TWITCH_STATUS_FILE)",
                status_path.display()
            ))
        }
        Err(error) => {
            return Err(format!(
                "cannot read the status file {}: {error}",
                status_path.display()
            ))
        }
    };
    let report: StatusReport = serde_json::from_str(&text).map_err(|error| {
        format!(
            "cannot understand the status file {}: {error}",
            status_path.display()
        )
    })?;
    if process_is_running(report.pid) == Some(false) {
        return Err(format!(
            "the daemon (pid {}) is not running; its status file {} was left behind",
            report.pid,
            status_path.display()
        ));
    }
    evaluate(&report, now_unix, grace, max_age)?;
    Ok(summarize(&report, now_unix))
}

/// Where and how often the status writer writes.
#[derive(Clone, Debug)]
pub struct WriterSettings {
    pub path: PathBuf,
    /// At most one write per this interval (changes in between are written together).
    pub min_interval: Duration,
    /// At least one write per this interval.
    pub max_interval: Duration,
    /// Told about every successful write, for tests that must wait for one.
    pub written: Option<Sender<StatusWritten>>,
}

impl WriterSettings {
    /// The production intervals ([`DEFAULT_MIN_INTERVAL`], [`DEFAULT_MAX_INTERVAL`]).
    pub fn new(path: PathBuf) -> WriterSettings {
        WriterSettings {
            path,
            min_interval: DEFAULT_MIN_INTERVAL,
            max_interval: DEFAULT_MAX_INTERVAL,
            written: None,
        }
    }
}

/// A notice from the writer that it wrote `report` to disk at `at`.
#[derive(Clone, Debug)]
pub struct StatusWritten {
    pub at: Instant,
    pub report: StatusReport,
}

/// The daemon's shared view of every user's state. Cheap to clone and to update: an update
/// takes a short lock and, when a state changed, nudges the writer thread without waiting.
/// When the last clone is dropped the writer removes the file and ends.
#[derive(Clone)]
pub struct StatusBoard {
    report: Arc<Mutex<StatusReport>>,
    /// Capacity one: a full channel already means "something changed", so a failed
    /// `try_send` loses nothing.
    changed: Sender<()>,
}

/// The "status-writer" thread. Join it after firing the stop signal (or dropping every
/// [`StatusBoard`]); by then the status file is removed.
pub struct StatusWriter {
    handle: JoinHandle<()>,
}

impl StatusWriter {
    pub fn join(self) -> thread::Result<()> {
        self.handle.join()
    }
}

impl StatusBoard {
    /// Starts the writer thread, which writes a first report (no users) at once. `stop` is
    /// a receiver that disconnects (or yields) when the daemon stops, such as
    /// [`crate::base::stop::StopSignal::receiver`].
    pub fn start(
        settings: WriterSettings,
        stop: Receiver<()>,
    ) -> io::Result<(StatusBoard, StatusWriter)> {
        let report = Arc::new(Mutex::new(StatusReport::for_this_process(unix_now())));
        let (changed, changes) = crossbeam_channel::bounded(1);
        let writer_report = Arc::clone(&report);
        let handle = thread::Builder::new()
            .name("status-writer".to_string())
            .spawn(move || run_writer(&writer_report, &changes, &stop, &settings))?;
        Ok((StatusBoard { report, changed }, StatusWriter { handle }))
    }

    /// Adds a user as [`UserState::Starting`] now (or resets one that is already there).
    pub fn add_user(&self, login: &Login, changes_enabled: bool) {
        let status = UserStatus {
            state: UserState::Starting {
                since_unix: unix_now(),
            },
            changes_enabled,
            last_change_unix: None,
            last_color: None,
        };
        lock(&self.report).users.insert(login.to_string(), status);
        self.nudge();
    }

    /// Takes a user off the board (removed from the config).
    pub fn remove_user(&self, login: &Login) {
        let removed = lock(&self.report).users.remove(login.as_str()).is_some();
        if removed {
            self.nudge();
        }
    }

    /// Records a user's new state, merged by [`merge_state`]; an unknown user is added with
    /// changes enabled. Only a real change wakes the writer.
    pub fn set_state(&self, login: &Login, state: UserState) {
        let changed = {
            let mut report = lock(&self.report);
            match report.users.get_mut(login.as_str()) {
                Some(status) => {
                    let merged = merge_state(&status.state, state);
                    let changed = merged != status.state;
                    status.state = merged;
                    changed
                }
                None => {
                    report.users.insert(
                        login.to_string(),
                        UserStatus {
                            state,
                            changes_enabled: true,
                            last_change_unix: None,
                            last_color: None,
                        },
                    );
                    true
                }
            }
        };
        if changed {
            self.nudge();
        }
    }

    /// Records `ccd`/`cce` (automatic changes off or on).
    pub fn set_changes_enabled(&self, login: &Login, changes_enabled: bool) {
        let changed = lock(&self.report)
            .users
            .get_mut(login.as_str())
            .is_some_and(|status| {
                let changed = status.changes_enabled != changes_enabled;
                status.changes_enabled = changes_enabled;
                changed
            });
        if changed {
            self.nudge();
        }
    }

    /// Records a successful color change. Does not wake the writer: colors change up to a
    /// few times a minute per user, and the periodic write carries them out soon enough.
    pub fn record_change(&self, login: &Login, color: &str) {
        if let Some(status) = lock(&self.report).users.get_mut(login.as_str()) {
            status.last_change_unix = Some(unix_now());
            status.last_color = Some(color.to_string());
        }
    }

    /// A copy of the current report (`written_unix` is that of the last write).
    pub fn snapshot(&self) -> StatusReport {
        lock(&self.report).clone()
    }

    fn nudge(&self) {
        match self.changed.try_send(()) {
            // Full: a nudge is already waiting. Disconnected: the writer has stopped.
            Ok(()) | Err(TrySendError::Full(())) | Err(TrySendError::Disconnected(())) => {}
        }
    }
}

/// The writer loop: blocks in one `select!` until a change, the stop signal, or the next
/// write is due. Never polls; an idle daemon costs one wake-up per `max_interval`.
fn run_writer(
    report: &Mutex<StatusReport>,
    changes: &Receiver<()>,
    stop: &Receiver<()>,
    settings: &WriterSettings,
) {
    let mut failing = false;
    write_report(report, settings, &mut failing);
    let mut last_write = Instant::now();
    // A change arrived that is not on disk yet; it is written at `last_write + min_interval`.
    let mut dirty = false;
    loop {
        let due = if dirty {
            last_write + settings.min_interval
        } else {
            last_write + settings.max_interval
        };
        let timeout = due.saturating_duration_since(Instant::now());
        let mut write_due = false;
        if dirty {
            // Further changes are not listened for until the pending write is done: they
            // would only say "dirty" again, and a flood of them could starve the timeout.
            crossbeam_channel::select! {
                recv(stop) -> _ => break,
                default(timeout) => write_due = true,
            }
        } else {
            crossbeam_channel::select! {
                recv(changes) -> message => match message {
                    Ok(()) => dirty = true,
                    // Every `StatusBoard` is gone: the daemon has shut down.
                    Err(_) => break,
                },
                recv(stop) -> _ => break,
                default(timeout) => write_due = true,
            }
        }
        if write_due {
            write_report(report, settings, &mut failing);
            last_write = Instant::now();
            dirty = false;
        }
    }
    match std::fs::remove_file(&settings.path) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => warn!(
            "cannot remove the status file {}: {error}",
            settings.path.display()
        ),
    }
}

/// The one-word name of a state, for log lines.
fn state_kind(state: &UserState) -> &'static str {
    match state {
        UserState::Starting { .. } => "starting",
        UserState::Connected { .. } => "connected",
        UserState::Reconnecting { .. } => "reconnecting",
        UserState::NeedsLogin { .. } => "needs-login",
        UserState::Stopped { .. } => "stopped",
        UserState::Disabled => "disabled",
    }
}

/// Writes the current report with a fresh `written_unix`. A failure is logged once, and
/// the recovery once, so a full disk does not fill the log every minute.
fn write_report(report: &Mutex<StatusReport>, settings: &WriterSettings, failing: &mut bool) {
    let snapshot = {
        let mut report = lock(report);
        report.written_unix = unix_now();
        report.clone()
    };
    let mut json = match serde_json::to_vec_pretty(&snapshot) {
        Ok(json) => json,
        Err(error) => {
            warn!("cannot serialise the status report: {error}");
            return;
        }
    };
    json.push(b'\n');
    match config_file::write_atomic(&settings.path, &json) {
        Ok(_) => {
            let states: Vec<String> = snapshot
                .users
                .iter()
                .map(|(login, status)| format!("{login} {}", state_kind(&status.state)))
                .collect();
            debug!("status file written: {}", states.join(", "));
            if *failing {
                info!("status file {} is written again", settings.path.display());
                *failing = false;
            }
            if let Some(written) = &settings.written {
                let _ = written.send(StatusWritten {
                    at: Instant::now(),
                    report: snapshot,
                });
            }
        }
        Err(error) => {
            if !*failing {
                warn!(
                    "cannot write the status file {}: {error}; `health` will report the \
                     daemon as unhealthy",
                    settings.path.display()
                );
                *failing = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;
    const GRACE: Duration = Duration::from_secs(300);
    const MAX_AGE: Duration = Duration::from_secs(150);
    /// Only reached when a test is about to fail.
    const WAIT: Duration = Duration::from_secs(10);

    fn status(state: UserState) -> UserStatus {
        UserStatus {
            state,
            changes_enabled: true,
            last_change_unix: None,
            last_color: None,
        }
    }

    fn report(written_unix: u64, users: &[(&str, UserState)]) -> StatusReport {
        StatusReport {
            pid: 42,
            version: "0.1.0".into(),
            started_unix: NOW - 3600,
            written_unix,
            users: users
                .iter()
                .map(|(login, state)| (login.to_string(), status(state.clone())))
                .collect(),
        }
    }

    fn connected() -> UserState {
        UserState::Connected {
            since_unix: NOW - 1000,
        }
    }

    fn reconnecting(seconds_ago: u64) -> UserState {
        UserState::Reconnecting {
            since_unix: NOW - seconds_ago,
            reason: "connection refused".into(),
        }
    }

    #[test]
    fn evaluate_table() {
        let cases: Vec<(&str, StatusReport, Result<(), &str>)> = vec![
            ("no users, fresh", report(NOW, &[]), Ok(())),
            ("connected", report(NOW - 10, &[("alice", connected())]), Ok(())),
            (
                "written exactly max_age ago is still fresh",
                report(NOW - 150, &[("alice", connected())]),
                Ok(()),
            ),
            (
                "stale",
                report(NOW - 151, &[("alice", connected())]),
                Err("status file was last written 2 min 31 s ago (allowed 2 min 30 s): the daemon is hung or gone"),
            ),
            (
                "a clock step back is not staleness",
                report(NOW + 30, &[("alice", connected())]),
                Ok(()),
            ),
            (
                "reconnecting within grace",
                report(NOW, &[("alice", connected()), ("bob", reconnecting(299))]),
                Ok(()),
            ),
            (
                "reconnecting beyond grace",
                report(NOW, &[("alice", connected()), ("bob", reconnecting(300))]),
                Err("bob has been reconnecting for 5 min: connection refused"),
            ),
            (
                "starting within grace",
                report(NOW, &[("alice", UserState::Starting { since_unix: NOW - 5 })]),
                Ok(()),
            ),
            (
                "starting beyond grace",
                report(NOW, &[("alice", UserState::Starting { since_unix: NOW - 400 })]),
                Err("alice has not connected in 6 min 40 s"),
            ),
            (
                "needs login",
                report(
                    NOW,
                    &[(
                        "alice",
                        UserState::NeedsLogin {
                            reason: "refresh token rejected".into(),
                        },
                    )],
                ),
                Err("alice needs a new login: refresh token rejected"),
            ),
            (
                "stopped",
                report(
                    NOW,
                    &[(
                        "carol",
                        UserState::Stopped {
                            reason: "chat thread kept panicking".into(),
                        },
                    )],
                ),
                Err("carol is stopped: chat thread kept panicking"),
            ),
            (
                "disabled users are ignored",
                report(NOW, &[("alice", connected()), ("dave", UserState::Disabled)]),
                Ok(()),
            ),
            (
                "every unhealthy user is named, in login order",
                report(
                    NOW,
                    &[
                        ("zed", reconnecting(1000)),
                        ("alice", connected()),
                        (
                            "bob",
                            UserState::NeedsLogin {
                                reason: "no refresh token".into(),
                            },
                        ),
                    ],
                ),
                Err("bob needs a new login: no refresh token; zed has been reconnecting for 16 min 40 s: connection refused"),
            ),
        ];
        for (name, report, expected) in cases {
            let result = evaluate(&report, NOW, GRACE, MAX_AGE);
            assert_eq!(result, expected.map_err(str::to_string), "case {name}");
        }
    }

    #[test]
    fn users_with_changes_turned_off_still_need_their_connection() {
        let mut report = report(NOW, &[("alice", reconnecting(600))]);
        report.users.get_mut("alice").unwrap().changes_enabled = false;
        assert!(evaluate(&report, NOW, GRACE, MAX_AGE).is_err());
    }

    #[test]
    fn merge_state_keeps_the_start_of_an_episode() {
        let cases = [
            (
                reconnecting(100),
                UserState::Reconnecting {
                    since_unix: NOW,
                    reason: "timed out".into(),
                },
                UserState::Reconnecting {
                    since_unix: NOW - 100,
                    reason: "timed out".into(),
                },
            ),
            (
                connected(),
                UserState::Connected { since_unix: NOW },
                connected(),
            ),
            (
                UserState::Starting { since_unix: 7 },
                UserState::Starting { since_unix: 9 },
                UserState::Starting { since_unix: 7 },
            ),
            (
                reconnecting(100),
                UserState::Connected { since_unix: NOW },
                UserState::Connected { since_unix: NOW },
            ),
            (connected(), reconnecting(0), reconnecting(0)),
            (
                UserState::Disabled,
                UserState::Starting { since_unix: 9 },
                UserState::Starting { since_unix: 9 },
            ),
        ];
        for (old, new, expected) in cases {
            assert_eq!(
                merge_state(&old, new.clone()),
                expected,
                "{old:?} + {new:?}"
            );
        }
    }

    #[test]
    fn report_round_trips_through_json() {
        let mut report = report(
            NOW,
            &[
                ("alice", connected()),
                ("bob", reconnecting(5)),
                ("carol", UserState::NeedsLogin { reason: "x".into() }),
                ("dave", UserState::Stopped { reason: "y".into() }),
                ("erin", UserState::Disabled),
                ("frank", UserState::Starting { since_unix: NOW }),
            ],
        );
        let alice = report.users.get_mut("alice").unwrap();
        alice.last_change_unix = Some(NOW - 3);
        alice.last_color = Some("#1A2B3C".into());
        let json = serde_json::to_string_pretty(&report).unwrap();
        assert!(json.contains("\"kind\": \"needs_login\""), "{json}");
        let parsed: StatusReport = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed, report);
    }

    #[test]
    fn summary_counts_states() {
        let cases = [
            (report(NOW - 3, &[]), "healthy: no users (pid 42, version 0.1.0, written 3 s ago)"),
            (
                report(
                    NOW,
                    &[
                        ("alice", connected()),
                        ("bob", connected()),
                        ("carol", reconnecting(1)),
                    ],
                ),
                "healthy: 2 users connected, 1 user reconnecting (pid 42, version 0.1.0, written 0 s ago)",
            ),
        ];
        for (report, expected) in cases {
            assert_eq!(summarize(&report, NOW), expected);
        }
    }

    #[test]
    fn default_status_path_sits_beside_the_config() {
        let cases = [
            (
                "twitch_colorchanger.conf",
                "twitch_colorchanger.status.json",
            ),
            ("/config/users.json", "/config/users.status.json"),
            ("/config/noextension", "/config/noextension.status.json"),
            ("", "twitch_colorchanger.status.json"),
        ];
        for (config, expected) in cases {
            assert_eq!(
                default_status_path(Path::new(config)),
                PathBuf::from(expected),
                "config {config:?}"
            );
        }
    }

    #[test]
    fn this_process_is_running_and_an_impossible_pid_is_not() {
        if process_is_running(std::process::id()).is_none() {
            return; // No /proc on this system.
        }
        assert_eq!(process_is_running(std::process::id()), Some(true));
        // Linux pids never exceed 2^22, so this pid cannot exist.
        assert_eq!(process_is_running(u32::MAX), Some(false));
        assert_eq!(process_is_running(0), Some(false));
    }

    fn write_report_file(path: &Path, report: &StatusReport) {
        std::fs::write(path, serde_json::to_vec(report).unwrap()).unwrap();
    }

    /// Name, file contents (`None`: no file), and how the summary or reason starts.
    type HealthCase = (
        &'static str,
        Option<Vec<u8>>,
        Result<&'static str, &'static str>,
    );

    #[test]
    fn run_health_table() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("twitch_colorchanger.status.json");
        let alive = std::process::id();
        let has_proc = process_is_running(alive).is_some();
        let with_pid = |pid: u32, mut report: StatusReport| {
            report.pid = pid;
            report
        };
        let cases: Vec<HealthCase> = vec![
            ("missing file", None, Err("no status file at")),
            (
                "not JSON",
                Some(b"{\"pid\": ".to_vec()),
                Err("cannot understand the status file"),
            ),
            (
                "healthy",
                Some(
                    serde_json::to_vec(&with_pid(alive, report(NOW, &[("alice", connected())])))
                        .unwrap(),
                ),
                Ok("healthy: 1 user connected"),
            ),
            (
                "alive but a user needs login",
                Some(
                    serde_json::to_vec(&with_pid(
                        alive,
                        report(
                            NOW,
                            &[(
                                "alice",
                                UserState::NeedsLogin {
                                    reason: "gone".into(),
                                },
                            )],
                        ),
                    ))
                    .unwrap(),
                ),
                Err("alice needs a new login: gone"),
            ),
            (
                "dead pid with a fresh, healthy report",
                Some(
                    serde_json::to_vec(&with_pid(u32::MAX, report(NOW, &[("alice", connected())])))
                        .unwrap(),
                ),
                if has_proc {
                    Err("the daemon (pid 4294967295) is not running")
                } else {
                    Ok("healthy")
                },
            ),
        ];
        for (name, contents, expected) in cases {
            let _ = std::fs::remove_file(&path);
            if let Some(contents) = contents {
                std::fs::write(&path, contents).unwrap();
            }
            let result = run_health(&path, NOW);
            match (&result, expected) {
                (Ok(summary), Ok(start)) => {
                    assert!(summary.starts_with(start), "{name}: {summary}")
                }
                (Err(reason), Err(start)) => assert!(reason.starts_with(start), "{name}: {reason}"),
                _ => panic!("{name}: expected {expected:?}, got {result:?}"),
            }
        }
        write_report_file(&path, &with_pid(alive, report(NOW - 1000, &[])));
        assert!(run_health(&path, NOW).unwrap_err().contains("hung or gone"));

        // The grace period and the allowed age can be shortened.
        write_report_file(
            &path,
            &with_pid(alive, report(NOW - 5, &[("alice", reconnecting(20))])),
        );
        assert!(run_health(&path, NOW).is_ok());
        let short = Duration::from_secs(10);
        let reason = run_health_with(&path, NOW, short, MAX_AGE).unwrap_err();
        assert_eq!(
            reason,
            "alice has been reconnecting for 20 s: connection refused"
        );
        let reason = run_health_with(&path, NOW, GRACE, Duration::from_secs(1)).unwrap_err();
        assert!(reason.contains("hung or gone"), "{reason}");
    }

    fn start_board(
        path: &Path,
        min_interval: Duration,
        max_interval: Duration,
    ) -> (
        StatusBoard,
        StatusWriter,
        Receiver<StatusWritten>,
        Sender<()>,
    ) {
        let (written, notices) = crossbeam_channel::unbounded();
        let (stop_sender, stop) = crossbeam_channel::bounded(0);
        let settings = WriterSettings {
            path: path.to_path_buf(),
            min_interval,
            max_interval,
            written: Some(written),
        };
        let (board, writer) = StatusBoard::start(settings, stop).unwrap();
        (board, writer, notices, stop_sender)
    }

    fn read_file(path: &Path) -> StatusReport {
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    #[test]
    fn board_writes_at_start_and_on_change_and_removes_the_file_on_stop() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("status.json");
        let (board, writer, notices, stop) =
            start_board(&path, Duration::from_millis(1), Duration::from_secs(3600));
        let first = notices.recv_timeout(WAIT).unwrap().report;
        assert_eq!(first.pid, std::process::id());
        assert!(first.users.is_empty());
        assert_eq!(read_file(&path), first);

        let alice = Login::new("alice");
        board.add_user(&alice, true);
        board.set_state(&alice, UserState::Connected { since_unix: 5 });
        let written = loop {
            let report = notices.recv_timeout(WAIT).unwrap().report;
            if matches!(report.users["alice"].state, UserState::Connected { .. }) {
                break report;
            }
        };
        assert_eq!(read_file(&path), written);

        drop(stop);
        writer.join().unwrap();
        assert!(!path.exists());
        // Updates after the writer stopped are harmless.
        board.set_state(&alice, reconnecting(1));
    }

    #[test]
    fn board_writes_periodically_without_changes() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("status.json");
        let (board, writer, notices, _stop) =
            start_board(&path, Duration::from_millis(1), Duration::from_millis(20));
        let writes: Vec<StatusWritten> = (0..3)
            .map(|_| notices.recv_timeout(WAIT).unwrap())
            .collect();
        for pair in writes.windows(2) {
            assert!(pair[1].at.duration_since(pair[0].at) >= Duration::from_millis(20));
        }
        // Dropping every board handle ends the writer and removes the file.
        drop(board);
        writer.join().unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn board_writes_at_most_once_per_min_interval() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("status.json");
        let min_interval = Duration::from_millis(100);
        let (board, writer, notices, stop) =
            start_board(&path, min_interval, Duration::from_secs(3600));
        let mut writes = vec![notices.recv_timeout(WAIT).unwrap()];
        let alice = Login::new("alice");
        board.add_user(&alice, true);
        for attempt in 0..200u64 {
            board.set_state(
                &alice,
                UserState::Connected {
                    since_unix: attempt,
                },
            );
            board.set_state(&alice, reconnecting(attempt));
        }
        board.set_state(
            &alice,
            UserState::NeedsLogin {
                reason: "final".into(),
            },
        );
        loop {
            let write = notices.recv_timeout(WAIT).unwrap();
            let done = write.report.users.get("alice").map(|status| &status.state)
                == Some(&UserState::NeedsLogin {
                    reason: "final".into(),
                });
            writes.push(write);
            if done {
                break;
            }
        }
        for pair in writes.windows(2) {
            assert!(
                pair[1].at.duration_since(pair[0].at) >= min_interval,
                "writes closer than {min_interval:?}"
            );
        }
        // 401 changes made as fast as possible are far fewer writes.
        assert!(writes.len() < 20, "{} writes", writes.len());
        drop(stop);
        writer.join().unwrap();
    }

    /// A board without a writer thread, so a test can see its nudges directly.
    fn board_without_writer() -> (StatusBoard, Receiver<()>) {
        let (changed, changes) = crossbeam_channel::bounded(1);
        let report = Arc::new(Mutex::new(StatusReport::for_this_process(NOW)));
        (StatusBoard { report, changed }, changes)
    }

    #[test]
    fn only_real_changes_wake_the_writer() {
        let alice = Login::new("alice");
        let nobody = Login::new("nobody");
        type Update = fn(&StatusBoard, &Login, &Login);
        let cases: [(&str, Update, bool); 9] = [
            (
                "same state again",
                |b, a, _| b.set_state(a, connected()),
                false,
            ),
            (
                "same kind of state, later since",
                |b, a, _| b.set_state(a, UserState::Connected { since_unix: NOW }),
                false,
            ),
            ("new state", |b, a, _| b.set_state(a, reconnecting(1)), true),
            (
                "new reason",
                |b, a, _| {
                    b.set_state(
                        a,
                        UserState::Reconnecting {
                            since_unix: NOW,
                            reason: "other".into(),
                        },
                    )
                },
                true,
            ),
            (
                "color change",
                |b, a, _| b.record_change(a, "#112233"),
                false,
            ),
            (
                "flag unchanged",
                |b, a, _| b.set_changes_enabled(a, true),
                false,
            ),
            (
                "flag changed",
                |b, a, _| b.set_changes_enabled(a, false),
                true,
            ),
            (
                "unknown user's flag",
                |b, _, n| b.set_changes_enabled(n, false),
                false,
            ),
            ("remove unknown user", |b, _, n| b.remove_user(n), false),
        ];
        let (board, changes) = board_without_writer();
        board.add_user(&alice, true);
        board.set_state(&alice, connected());
        while changes.try_recv().is_ok() {}
        for (name, update, expect_nudge) in cases {
            update(&board, &alice, &nobody);
            assert_eq!(changes.try_recv().is_ok(), expect_nudge, "case {name}");
        }
        assert_eq!(
            board.snapshot().users["alice"].last_color.as_deref(),
            Some("#112233")
        );
        assert!(board.snapshot().users["alice"].last_change_unix.is_some());
        board.remove_user(&alice);
        assert!(changes.try_recv().is_ok());
        assert!(board.snapshot().users.is_empty());
    }

    #[test]
    fn board_tracks_users_and_flags() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("status.json");
        let (board, writer, _notices, stop) =
            start_board(&path, Duration::from_secs(3600), Duration::from_secs(3600));
        let alice = Login::new("alice");
        let bob = Login::new("bob");
        board.add_user(&alice, false);
        board.set_state(&bob, reconnecting(10));
        board.set_changes_enabled(&alice, true);
        board.set_changes_enabled(&Login::new("nobody"), true);
        board.record_change(&Login::new("nobody"), "red");
        let snapshot = board.snapshot();
        assert_eq!(snapshot.users.keys().collect::<Vec<_>>(), ["alice", "bob"]);
        assert!(snapshot.users["alice"].changes_enabled);
        assert!(matches!(
            snapshot.users["alice"].state,
            UserState::Starting { .. }
        ));
        assert_eq!(snapshot.users["bob"].state, reconnecting(10));
        board.remove_user(&alice);
        assert_eq!(board.snapshot().users.keys().collect::<Vec<_>>(), ["bob"]);
        drop(stop);
        writer.join().unwrap();
    }
}
