//! `StatusBoard`, the shared board the daemon updates with each user's state, and the
//! "status-writer" thread that writes it to the status file. Does file I/O.
//!
//! The file is JSON, rewritten atomically when a user's state changes (at most once per
//! `min_interval`) and at least once per `max_interval`, and removed at clean shutdown, so
//! `health` fails once the daemon is gone.

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use log::{debug, info, warn};

use super::model::{
    last_error_after, merge_state, state_error, ConfigUnsaved, StatusReport, TimedText, UserState,
    UserStatus, DEFAULT_MAX_INTERVAL, DEFAULT_MIN_INTERVAL,
};
use crate::base::clock::unix_now;
use crate::base::ids::Login;
use crate::base::sync::lock;
use crate::config::file as config_file;

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

    /// A board that no thread writes to a file: for the status server alone.
    pub fn without_file() -> StatusBoard {
        // The receiver is dropped: nudges find the channel disconnected and are ignored.
        let (changed, _) = crossbeam_channel::bounded(1);
        StatusBoard {
            report: Arc::new(Mutex::new(StatusReport::for_this_process(unix_now()))),
            changed,
        }
    }

    /// Adds a user as [`UserState::Starting`] now (or resets one that is already there).
    pub fn add_user(&self, login: &Login, changes_enabled: bool) {
        let status = UserStatus::new(
            UserState::Starting {
                since_unix: unix_now(),
            },
            changes_enabled,
        );
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

    /// Records a user's new state, merged by [`merge_state`]. A user not on the board (taken
    /// off because it was removed from the config) stays off: a thread of it that is still
    /// finishing must not bring it back. Only a real change wakes the writer.
    pub fn set_state(&self, login: &Login, state: UserState) {
        let changed = {
            let mut report = lock(&self.report);
            let error = state_error(&state).map(|text| TimedText {
                at_unix: unix_now(),
                text: text.to_string(),
            });
            match report.users.get_mut(login.as_str()) {
                Some(status) => {
                    let merged = merge_state(&status.state, state);
                    let changed = merged != status.state;
                    // A lost connection stays on the page after the user is back, until
                    // the next error; a login prompt goes once the login is done.
                    status.last_error =
                        last_error_after(&status.state, &merged, status.last_error.take(), error);
                    status.state = merged;
                    changed
                }
                None => false,
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
            status.push_color(color, unix_now());
        }
    }

    /// Records how the user's chat is read and which channels, for the status page.
    pub fn set_chat(&self, login: &Login, transport: &str, channels: &[Login]) {
        if let Some(status) = lock(&self.report).users.get_mut(login.as_str()) {
            status.transport = Some(transport.to_string());
            status.channels = channels.iter().map(Login::to_string).collect();
        }
    }

    /// Records the color Twitch reported at login (`#RRGGBB`).
    pub fn set_login_color(&self, login: &Login, color: Option<String>) {
        if let Some(status) = lock(&self.report).users.get_mut(login.as_str()) {
            status.login_color = color;
        }
    }

    /// Records an error that is not a state of its own (a failed change, a failed token
    /// check). It is shown until the next one; never holds a secret.
    pub fn record_error(&self, login: &Login, text: &str) {
        if let Some(status) = lock(&self.report).users.get_mut(login.as_str()) {
            status.last_error = Some(TimedText {
                at_unix: unix_now(),
                text: text.to_string(),
            });
        }
    }

    /// Records when the token thread next refreshes the tokens.
    pub fn set_next_token_refresh(&self, login: &Login, at_unix: Option<u64>) {
        if let Some(status) = lock(&self.report).users.get_mut(login.as_str()) {
            status.next_token_refresh_unix = at_unix;
        }
    }

    /// Records that changes wait for a config that cannot be written (`None`: saved).
    pub fn set_config_unsaved(&self, unsaved: Option<ConfigUnsaved>) {
        let changed = {
            let mut report = lock(&self.report);
            let changed = report.config_unsaved != unsaved;
            report.config_unsaved = unsaved;
            changed
        };
        if changed {
            self.nudge();
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
                .map(|(login, status)| match &status.state {
                    UserState::NeedsLogin {
                        login_code: Some(code),
                        ..
                    } => format!("{login} needs-login (code {})", code.user_code),
                    state => format!("{login} {}", state_kind(state)),
                })
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
    use super::super::fixtures::*;
    use super::*;
    use std::path::Path;

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
                login_code: None,
            },
        );
        loop {
            let write = notices.recv_timeout(WAIT).unwrap();
            let done = write.report.users.get("alice").map(|status| &status.state)
                == Some(&UserState::NeedsLogin {
                    reason: "final".into(),
                    login_code: None,
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
        // A user not on the board (removed) is not brought back by a late report.
        board.set_state(&bob, reconnecting(10));
        assert_eq!(board.snapshot().users.keys().collect::<Vec<_>>(), ["alice"]);
        board.add_user(&bob, true);
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
