//! The status model and its pure health verdict: each user's state, the report the status
//! file holds, `evaluate` (healthy or why not), `summarize` and `merge_state`. Pure: the
//! caller passes `now`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

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
    /// No usable token: only a person can fix it, by approving the device-code login the
    /// daemon started (`login_code`, while one is on show) or by giving new tokens.
    NeedsLogin {
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        login_code: Option<LoginCode>,
    },
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

/// How many of a user's latest colors the status page shows.
pub const COLOR_HISTORY: usize = 20;

/// A device-code login on show: where to go and which code to enter. Not a secret (the
/// device code that goes with it is, and never appears here).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginCode {
    pub verification_uri: String,
    pub user_code: String,
    /// When the code stops working, in Unix seconds; a new one follows.
    pub expires_unix: u64,
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
    /// The color Twitch reported at login (`#RRGGBB`), before any change of ours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_color: Option<String>,
    /// How the user's chat is read (`IRC`, `EventSub`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    /// The channels whose chat is watched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
    /// The latest error: a failed change, a lost connection, a refused token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<TimedText>,
    /// When the token thread next refreshes the tokens, in Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token_refresh_unix: Option<u64>,
    /// The latest colors set, oldest first, at most [`COLOR_HISTORY`]. Only for the status
    /// page: the file does not carry them.
    #[serde(skip)]
    pub recent_colors: Vec<TimedText>,
}

/// A short text and when it happened, in Unix seconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimedText {
    pub at_unix: u64,
    pub text: String,
}

impl UserStatus {
    /// A user in `state` with nothing else known yet.
    pub fn new(state: UserState, changes_enabled: bool) -> UserStatus {
        UserStatus {
            state,
            changes_enabled,
            last_change_unix: None,
            last_color: None,
            login_color: None,
            transport: None,
            channels: Vec::new(),
            last_error: None,
            next_token_refresh_unix: None,
            recent_colors: Vec::new(),
        }
    }

    /// The color the user has now as far as the daemon knows: the last one it set, else
    /// the one seen at login.
    pub fn current_color(&self) -> Option<&str> {
        self.last_color.as_deref().or(self.login_color.as_deref())
    }

    /// Records a color set at `now_unix`, keeping the last [`COLOR_HISTORY`].
    pub fn push_color(&mut self, color: &str, now_unix: u64) {
        self.last_change_unix = Some(now_unix);
        self.last_color = Some(color.to_string());
        if self.recent_colors.len() == COLOR_HISTORY {
            self.recent_colors.remove(0);
        }
        self.recent_colors.push(TimedText {
            at_unix: now_unix,
            text: color.to_string(),
        });
    }
}

/// The error a state carries, if it is one (a lost connection, a refused login, a stop).
pub fn state_error(state: &UserState) -> Option<&str> {
    match state {
        UserState::Reconnecting { reason, .. }
        | UserState::NeedsLogin { reason, .. }
        | UserState::Stopped { reason } => Some(reason),
        UserState::Starting { .. } | UserState::Connected { .. } | UserState::Disabled => None,
    }
}

/// The last error after a user's state `old` was replaced by `merged` (see [`merge_state`])
/// on a report that carries `reported` (the report's own error, see [`state_error`]).
///
/// A reported error replaces the last one, and any other error stays until the next one:
/// a lost connection is still worth seeing after the user is back. A login prompt is not
/// such an error: while it is on show its text ("… to log in, open … and enter the code …")
/// is the last error, but once the login is done (the prompt gives way to any state but
/// another prompt or a stop) it is history, and is dropped rather than left beside
/// "connected", where a person reads it as "still not working". An error recorded during
/// the prompt that is not the prompt's own text (a failed token call) stays.
pub fn last_error_after(
    old: &UserState,
    merged: &UserState,
    last_error: Option<TimedText>,
    reported: Option<TimedText>,
) -> Option<TimedText> {
    if reported.is_some() {
        return reported;
    }
    let login_done = matches!(
        (old, merged),
        (
            UserState::NeedsLogin { .. },
            UserState::Starting { .. } | UserState::Connected { .. }
        )
    );
    match (old, last_error) {
        (UserState::NeedsLogin { reason, .. }, Some(error))
            if login_done && error.text == *reason =>
        {
            None
        }
        (_, last_error) => last_error,
    }
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
    /// Set while changes (tokens among them) wait because the config cannot be written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_unsaved: Option<ConfigUnsaved>,
}

/// Changes wait because the config file cannot be written (a full disk, a read-only file,
/// a hand edit that does not parse). The tokens are kept meanwhile (see README "How your
/// tokens are kept").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigUnsaved {
    /// Since when changes wait.
    pub since_unix: u64,
    /// Why, without secrets.
    pub problem: String,
}

/// How long changes may wait for a config that cannot be written before `health` fails:
/// long enough for a person finishing an edit, short enough that a full disk is noticed
/// well before a token could be lost.
pub const CONFIG_UNSAVED_GRACE: Duration = Duration::from_secs(600);

impl StatusReport {
    /// A report for this process with no users yet.
    pub fn for_this_process(started_unix: u64) -> StatusReport {
        StatusReport {
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_unix,
            written_unix: started_unix,
            users: BTreeMap::new(),
            config_unsaved: None,
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
    let mut problems: Vec<String> = report
        .users
        .iter()
        .filter_map(|(login, status)| user_problem(login, &status.state, now_unix, grace))
        .collect();
    if let Some(unsaved) = &report.config_unsaved {
        let waited = now_unix.saturating_sub(unsaved.since_unix);
        if waited >= CONFIG_UNSAVED_GRACE.as_secs() {
            problems.push(format!(
                "config changes not saved for {}: {}",
                format_seconds(waited),
                unsaved.problem
            ));
        }
    }
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
        UserState::NeedsLogin { reason, .. } => {
            Some(format!("{login} needs a new login: {reason}"))
        }
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
pub fn format_seconds(seconds: u64) -> String {
    match (seconds / 60, seconds % 60) {
        _ if seconds < 120 => format!("{seconds} s"),
        (minutes, 0) => format!("{minutes} min"),
        (minutes, rest) => format!("{minutes} min {rest} s"),
    }
}

/// The state to store when `new` replaces `old`. Staying in the same kind of state keeps
/// the old `since_unix`: a reconnect loop that reports every failed attempt must not
/// restart the grace period each time, or a user who never reconnects would look healthy.
/// A login on show stays while chat reconnects; only the login's end (`Starting`, from the
/// token refresher) or a chat login replaces it, and that `Starting` never hides a state
/// chat reported since.
pub fn merge_state(old: &UserState, new: UserState) -> UserState {
    match (old, new) {
        // Chat reconnecting for want of a token does not hide the login a person must do.
        (UserState::NeedsLogin { .. }, UserState::Reconnecting { .. }) => old.clone(),
        // `Starting` comes from the token refresher after a login; it only ends a login.
        (UserState::NeedsLogin { .. }, new @ UserState::Starting { .. }) => new,
        (
            UserState::Connected { .. } | UserState::Reconnecting { .. },
            UserState::Starting { .. },
        ) => old.clone(),
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

/// Values and builders the status tests share.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    pub(crate) const NOW: u64 = 1_800_000_000;
    pub(crate) const GRACE: Duration = Duration::from_secs(300);
    pub(crate) const MAX_AGE: Duration = Duration::from_secs(150);
    /// Only reached when a test is about to fail.
    pub(crate) const WAIT: Duration = Duration::from_secs(10);

    pub(crate) fn status(state: UserState) -> UserStatus {
        UserStatus::new(state, true)
    }

    pub(crate) fn report(written_unix: u64, users: &[(&str, UserState)]) -> StatusReport {
        StatusReport {
            pid: 42,
            version: "0.1.0".into(),
            started_unix: NOW - 3600,
            written_unix,
            users: users
                .iter()
                .map(|(login, state)| (login.to_string(), status(state.clone())))
                .collect(),
            config_unsaved: None,
        }
    }

    pub(crate) fn connected() -> UserState {
        UserState::Connected {
            since_unix: NOW - 1000,
        }
    }

    pub(crate) fn reconnecting(seconds_ago: u64) -> UserState {
        UserState::Reconnecting {
            since_unix: NOW - seconds_ago,
            reason: "connection refused".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

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
                            login_code: None,
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
                                login_code: None,
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
    fn a_config_that_cannot_be_written_fails_health_after_ten_minutes() {
        let cases = [
            (0, Ok(())),
            (599, Ok(())),
            (
                600,
                Err("config changes not saved for 10 min: cannot write c.json: disk full"),
            ),
        ];
        for (waited, expected) in cases {
            let mut report = report(NOW, &[("alice", connected())]);
            report.config_unsaved = Some(ConfigUnsaved {
                since_unix: NOW - waited,
                problem: "cannot write c.json: disk full".into(),
            });
            assert_eq!(
                evaluate(&report, NOW, GRACE, MAX_AGE),
                expected.map_err(str::to_string),
                "{waited}"
            );
            let text = serde_json::to_string(&report).unwrap();
            assert_eq!(serde_json::from_str::<StatusReport>(&text).unwrap(), report);
        }
        // Reports without the entry (older daemons) still read.
        let mut plain = serde_json::to_value(report(NOW, &[])).unwrap();
        assert!(plain.get("config_unsaved").is_none());
        plain.as_object_mut().unwrap().remove("config_unsaved");
        assert!(serde_json::from_value::<StatusReport>(plain).is_ok());
    }

    #[test]
    fn users_with_changes_turned_off_still_need_their_connection() {
        let mut report = report(NOW, &[("alice", reconnecting(600))]);
        report.users.get_mut("alice").unwrap().changes_enabled = false;
        assert!(evaluate(&report, NOW, GRACE, MAX_AGE).is_err());
    }

    #[test]
    fn merge_state_keeps_the_start_of_an_episode() {
        let needs_login = || UserState::NeedsLogin {
            reason: "no usable token; to log in, open URL and enter the code ABCD".into(),
            login_code: Some(LoginCode {
                verification_uri: "https://www.twitch.tv/activate".into(),
                user_code: "ABCD".into(),
                expires_unix: NOW + 1800,
            }),
        };
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
            // A login a person must do stays on show while chat keeps failing...
            (needs_login(), reconnecting(0), needs_login()),
            // ...until the login ends it (the refresher reports `Starting`) or chat connects.
            (
                needs_login(),
                UserState::Starting { since_unix: 9 },
                UserState::Starting { since_unix: 9 },
            ),
            (
                needs_login(),
                UserState::Connected { since_unix: 9 },
                UserState::Connected { since_unix: 9 },
            ),
            // The refresher's `Starting` after a login never hides what chat reported since.
            (
                connected(),
                UserState::Starting { since_unix: 9 },
                connected(),
            ),
            (
                reconnecting(5),
                UserState::Starting { since_unix: 9 },
                reconnecting(5),
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
    fn a_finished_login_is_history_and_other_errors_stay() {
        const PROMPT: &str =
            "the config has no tokens; to log in, open URL and enter the code ABCD";
        let prompt = || UserState::NeedsLogin {
            reason: PROMPT.into(),
            login_code: Some(LoginCode {
                verification_uri: "https://www.twitch.tv/activate".into(),
                user_code: "ABCD".into(),
                expires_unix: NOW + 1800,
            }),
        };
        let text = |text: &str| {
            Some(TimedText {
                at_unix: NOW - 60,
                text: text.into(),
            })
        };
        let starting = UserState::Starting { since_unix: NOW };
        let connected_now = UserState::Connected { since_unix: NOW };
        let stopped = UserState::Stopped {
            reason: "gave up".into(),
        };
        // (case, old state, merged state, last error, reported error, expected)
        type Case = (
            &'static str,
            UserState,
            UserState,
            Option<TimedText>,
            Option<TimedText>,
            Option<TimedText>,
        );
        let cases: Vec<Case> = vec![
            (
                "the prompt is the last error while on show",
                starting.clone(),
                prompt(),
                None,
                text(PROMPT),
                text(PROMPT),
            ),
            (
                "the login is done: the token refresher starts the user",
                prompt(),
                starting.clone(),
                text(PROMPT),
                None,
                None,
            ),
            (
                "the login is done: chat connects first",
                prompt(),
                connected_now.clone(),
                text(PROMPT),
                None,
                None,
            ),
            (
                "a failed token call during the prompt stays",
                prompt(),
                starting.clone(),
                text("token device login failed: timed out"),
                None,
                text("token device login failed: timed out"),
            ),
            (
                "a prompt that ends in a stop stays",
                prompt(),
                stopped.clone(),
                text(PROMPT),
                text("gave up"),
                text("gave up"),
            ),
            (
                "chat failing during the prompt is still recorded",
                prompt(),
                prompt(),
                text(PROMPT),
                text("login refused"),
                text("login refused"),
            ),
            (
                "a lost connection stays after the user is back",
                reconnecting(30),
                connected_now.clone(),
                text("connection refused"),
                None,
                text("connection refused"),
            ),
            (
                "a failed change stays while connected",
                connected(),
                connected(),
                text("Helix answered 500"),
                None,
                text("Helix answered 500"),
            ),
        ];
        for (name, old, merged, last_error, reported, expected) in cases {
            assert_eq!(
                last_error_after(&old, &merged, last_error, reported),
                expected,
                "case {name}"
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
                (
                    "carol",
                    UserState::NeedsLogin {
                        reason: "x".into(),
                        login_code: None,
                    },
                ),
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
}
