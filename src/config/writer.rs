//! The one thread that writes the config file. Token threads (and chat commands) send it
//! field changes; it applies them on top of what the file holds and writes the file
//! atomically, so concurrent changes never lose each other and a hand edit made while the
//! daemon runs is kept. Does file I/O.

use crate::base::counters;
use crate::base::metrics::Outcome;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use log::{debug, info, warn};

use crate::base::ids::Login;
use crate::base::sync::lock;
use crate::config::file::{self as config_file, WriteOutcome};
use crate::config::{self, Document, SavedField};

/// How long the writer waits before trying again when the file could not be written (it
/// is half-edited, unreadable, or its directory is not writable), unless a new request
/// comes first.
pub const RETRY_DELAY: Duration = Duration::from_secs(5);

/// What the writer thread is asked to do. `Debug` is safe: tokens are [`Secret`]s.
///
/// [`Secret`]: crate::base::secret::Secret
#[derive(Debug)]
pub enum WriteRequest {
    /// Save this change to the user's entry; other fields and users stay as they are.
    Save { username: Login, change: SavedField },
    /// Answer on the sender once everything sent before is on disk.
    Flush(Sender<()>),
}

/// A cheap, cloneable handle to the writer thread. The thread ends, after writing what is
/// pending, once every handle is dropped.
#[derive(Clone)]
pub struct ConfigWriter {
    requests: Sender<WriteRequest>,
    own_writes: OwnWrites,
}

impl ConfigWriter {
    /// Spawns the thread "config-writer" for the file at `path`. `document` is what the
    /// file held when it was loaded (or, for users from the environment, what it should
    /// hold).
    pub fn spawn(path: PathBuf, document: Document) -> io::Result<(ConfigWriter, JoinHandle<()>)> {
        spawn_with(path, document, RETRY_DELAY, None)
    }

    /// Queues a change to one user's entry. Returns at once; the file is written shortly
    /// after by the writer thread.
    pub fn save(&self, username: &Login, change: SavedField) {
        let names = field_names(&change);
        let request = WriteRequest::Save {
            username: username.clone(),
            change,
        };
        if self.requests.send(request).is_err() {
            warn!("the config writer has stopped: {names} of {username} not saved");
        }
    }

    /// Waits until everything sent before is on disk, at most `timeout`. False when it was
    /// not written in time (the file is invalid on disk, or the writer has stopped).
    pub fn flush(&self, timeout: Duration) -> bool {
        let (done, wait) = crossbeam_channel::bounded(1);
        if self.requests.send(WriteRequest::Flush(done)).is_err() {
            return false;
        }
        wait.recv_timeout(timeout).is_ok()
    }

    /// The record of the writer's own writes, for telling them from a person's edits.
    pub fn own_writes(&self) -> OwnWrites {
        self.own_writes.clone()
    }
}

/// The contents the writer itself put in the file (or found there when it started), so a
/// file watcher can tell the daemon's own writes from a person's edit. Shared between the
/// writer thread and whoever watches the file.
///
/// It holds whole file contents, tokens included, so it has no `Debug`.
#[derive(Clone, Default)]
pub struct OwnWrites {
    /// At most two: the content on disk, and the content being written while a write is
    /// under way (a watcher may see either).
    contents: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl OwnWrites {
    /// True when `content` is exactly what the writer last wrote or is writing now.
    pub fn is_own(&self, content: &[u8]) -> bool {
        lock(&self.contents).iter().any(|own| own == content)
    }

    /// Called just before a write, so a watcher woken by the write already knows it.
    fn expect(&self, content: &[u8]) {
        lock(&self.contents).push(content.to_vec());
    }

    /// Called after a write attempt with what the file now holds, as far as we know.
    fn settle(&self, on_disk: Option<&[u8]>) {
        let mut contents = lock(&self.contents);
        contents.clear();
        contents.extend(on_disk.map(<[u8]>::to_vec));
    }
}

/// [`ConfigWriter::spawn`] with the retry delay chosen, and an observer that hears the
/// outcome of every write attempt (for tests).
fn spawn_with(
    path: PathBuf,
    document: Document,
    retry_delay: Duration,
    observer: Option<Sender<Attempt>>,
) -> io::Result<(ConfigWriter, JoinHandle<()>)> {
    let (requests, receiver) = crossbeam_channel::unbounded();
    let own_writes = OwnWrites::default();
    let mut state = WriterState::new(path, document, own_writes.clone());
    state.observer = observer;
    let handle = std::thread::Builder::new()
        .name("config-writer".into())
        .spawn(move || run(state, &receiver, retry_delay))?;
    Ok((
        ConfigWriter {
            requests,
            own_writes,
        },
        handle,
    ))
}

/// The writer thread: blocks on its channel, and only wakes on a timer while changes wait
/// for a file that could not be written.
fn run(mut state: WriterState, requests: &Receiver<WriteRequest>, retry_delay: Duration) {
    let mut retry_at: Option<Instant> = None;
    loop {
        let received = match retry_at {
            None => requests.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(deadline) => requests.recv_deadline(deadline),
        };
        match received {
            Ok(request) => {
                state.accept(request);
                // Whatever else is queued goes into the same write.
                while let Ok(request) = requests.try_recv() {
                    state.accept(request);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                if state.write_pending() == Attempt::Blocked {
                    warn!(
                        "stopping with changes not saved to {}: {}",
                        state.path.display(),
                        state.pending_names()
                    );
                }
                return;
            }
        }
        retry_at = match state.write_pending() {
            Attempt::Done => None,
            Attempt::Blocked => Some(Instant::now() + retry_delay),
        };
    }
}

/// The outcome of one write attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Attempt {
    /// Nothing is pending any more.
    Done,
    /// Changes wait: the file could not be read, parsed or written.
    Blocked,
}

/// One change not yet on disk.
struct PendingChange {
    username: Login,
    change: SavedField,
}

/// Everything the writer thread owns.
struct WriterState {
    path: PathBuf,
    /// What the file held after the last write or at load.
    document: Document,
    /// The file's bytes at that point, when known; a file that differs was edited by
    /// someone else.
    known_bytes: Option<Vec<u8>>,
    /// Changes not yet on disk, one per user and kind, the newest winning.
    pending: Vec<PendingChange>,
    /// Flushes waiting for `pending` to be written.
    flush_waiters: Vec<Sender<()>>,
    own_writes: OwnWrites,
    warned_in_place: bool,
    /// The problem last warned about, so a file that stays invalid is not warned about on
    /// every retry.
    last_problem: Option<String>,
    observer: Option<Sender<Attempt>>,
}

/// The document to apply changes to, and the bytes it came from (`None`: no file).
struct Base {
    document: Document,
    disk_bytes: Option<Vec<u8>>,
}

impl WriterState {
    fn new(path: PathBuf, document: Document, own_writes: OwnWrites) -> WriterState {
        // The file normally still holds what was loaded; its bytes let later writes tell
        // our own content from a person's edit. If it already differs, the first write
        // reads it again.
        let known_bytes = fs::read(&path)
            .ok()
            .filter(|bytes| parse_document(&path, bytes).is_ok_and(|disk| disk == document));
        own_writes.settle(known_bytes.as_deref());
        WriterState {
            path,
            document,
            known_bytes,
            pending: Vec::new(),
            flush_waiters: Vec::new(),
            own_writes,
            warned_in_place: false,
            last_problem: None,
            observer: None,
        }
    }

    fn accept(&mut self, request: WriteRequest) {
        match request {
            WriteRequest::Save { username, change } => {
                let existing = self.pending.iter_mut().find(|pending| {
                    pending.username == username && pending.change.same_kind(&change)
                });
                match existing {
                    Some(pending) => pending.change = change,
                    None => self.pending.push(PendingChange { username, change }),
                }
            }
            WriteRequest::Flush(done) => self.flush_waiters.push(done),
        }
    }

    /// Writes the pending changes if there are any; answers the flushes once nothing is
    /// pending.
    fn write_pending(&mut self) -> Attempt {
        let attempt = self.try_write();
        if attempt == Attempt::Done {
            for done in self.flush_waiters.drain(..) {
                // A flush that timed out no longer listens; that is fine.
                let _ = done.send(());
            }
        }
        if let Some(observer) = &self.observer {
            let _ = observer.send(attempt);
        }
        attempt
    }

    fn try_write(&mut self) -> Attempt {
        if self.pending.is_empty() {
            return Attempt::Done;
        }
        let base = match self.read_base() {
            Ok(base) => base,
            Err(problem) => return self.blocked(problem),
        };
        let mut document = base.document;
        let mut n_applied = 0;
        for pending in &self.pending {
            let mut applied = false;
            for (field, value) in pending.change.entries() {
                applied = document.set_user_field(&pending.username, field, value);
            }
            if applied {
                n_applied += 1;
            } else {
                warn!(
                    "{}: user {} is no longer in the file; its {} was not saved",
                    self.path.display(),
                    pending.username,
                    field_names(&pending.change)
                );
            }
        }
        if n_applied == 0 {
            self.pending.clear();
            return self.done();
        }
        let text = document.to_json_string();
        self.own_writes.expect(text.as_bytes());
        match config_file::write_atomic(&self.path, text.as_bytes()) {
            Ok(outcome) => {
                counters::config_write(Outcome::Ok);
                if outcome == WriteOutcome::WroteInPlace && !self.warned_in_place {
                    self.warned_in_place = true;
                    warn!(
                        "wrote {} in place: it could not be replaced atomically (a single \
                         bind-mounted file?); a crash during a write could damage it",
                        self.path.display()
                    );
                }
                debug!("saved {} to {}", self.pending_names(), self.path.display());
                self.own_writes.settle(Some(text.as_bytes()));
                self.document = document;
                self.known_bytes = Some(text.into_bytes());
                self.pending.clear();
                self.done()
            }
            Err(error) => {
                counters::config_write(Outcome::Failed);
                self.own_writes.settle(base.disk_bytes.as_deref());
                self.blocked(format!("cannot write {}: {error}", self.path.display()))
            }
        }
    }

    /// What the changes apply to: our own document while the file still holds what we
    /// last wrote (or is gone), otherwise the file as it is now.
    fn read_base(&self) -> Result<Base, String> {
        match fs::read(&self.path) {
            Ok(bytes) if self.known_bytes.as_ref() == Some(&bytes) => Ok(Base {
                document: self.document.clone(),
                disk_bytes: Some(bytes),
            }),
            Ok(bytes) => match parse_document(&self.path, &bytes) {
                Ok(document) => {
                    info!(
                        "{} was changed by someone else; saving on top of its new content",
                        self.path.display()
                    );
                    Ok(Base {
                        document,
                        disk_bytes: Some(bytes),
                    })
                }
                Err(error) => Err(format!(
                    "the config file was changed and is not valid now, so it is left alone: \
                     {error}"
                )),
            },
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(Base {
                document: self.document.clone(),
                disk_bytes: None,
            }),
            Err(error) => Err(format!("cannot read {}: {error}", self.path.display())),
        }
    }

    fn done(&mut self) -> Attempt {
        if self.last_problem.take().is_some() {
            info!("{}: the waiting changes are saved now", self.path.display());
        }
        Attempt::Done
    }

    fn blocked(&mut self, problem: String) -> Attempt {
        if self.last_problem.as_ref() != Some(&problem) {
            warn!(
                "{problem} ({} waiting; retried on the next change or in a few seconds)",
                self.pending_names()
            );
            self.last_problem = Some(problem);
        }
        Attempt::Blocked
    }

    /// The pending changes as `user.field` names, for log lines (never values).
    fn pending_names(&self) -> String {
        self.pending
            .iter()
            .map(|pending| format!("{}.{}", pending.username, field_names(&pending.change)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The file's fields a change sets, for log lines: `access_token+refresh_token`.
fn field_names(change: &SavedField) -> String {
    let names: Vec<&str> = change
        .entries()
        .iter()
        .map(|(field, _)| field.key())
        .collect();
    names.join("+")
}

/// Parses the file's bytes the way loading does, keeping only the document. The error
/// names the file and the position, never a value of a secret field.
fn parse_document(path: &Path, bytes: &[u8]) -> Result<Document, String> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| format!("{}: the file is not UTF-8 text", path.display()))?;
    config::parse(text, path)
        .map(|(_, document)| document)
        .map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::secret::Secret;
    use serde_json::{json, Value};

    const TIMEOUT: Duration = Duration::from_secs(10);

    fn user(name: &str) -> Value {
        json!({
            "username": name,
            "client_id": format!("cid-{name}"),
            "client_secret": format!("secret-{name}"),
            "access_token": format!("access-{name}"),
            "refresh_token": format!("refresh-{name}"),
            "channels": [name],
            "favourite_food": "soup",
        })
    }

    fn initial_json() -> Value {
        json!({
            "_comment": "keep me",
            "users": [user("alice"), user("bob"), user("carol")],
            "zz_unknown": {"nested": [1, 2, 3]},
        })
    }

    /// Writes `json` compactly (unlike the writer, which writes pretty) and loads it.
    fn setup(json: &Value) -> (tempfile::TempDir, PathBuf, Document) {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("config.json");
        fs::write(&path, serde_json::to_string(json).unwrap()).unwrap();
        let (_, document) = config_file::load(&path).unwrap();
        (directory, path, document)
    }

    fn read_json(path: &Path) -> Value {
        serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
    }

    fn keys(value: &Value) -> Vec<&str> {
        value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect()
    }

    fn user_in<'a>(json: &'a Value, name: &str) -> &'a Value {
        json["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|user| user["username"] == name)
            .unwrap()
    }

    fn tokens(name: &str, n: u32) -> SavedField {
        SavedField::Tokens {
            access_token: Secret::new(format!("access-{name}-{n}")),
            refresh_token: Secret::new(format!("refresh-{name}-{n}")),
            expires_at_unix: Some(n.into()),
        }
    }

    /// Waits for the writer thread to end, failing the test if it does not.
    fn join_within(handle: JoinHandle<()>, timeout: Duration) {
        let (ended, wait) = crossbeam_channel::bounded(1);
        std::thread::spawn(move || {
            let result = handle.join();
            let _ = ended.send(result.is_ok());
        });
        assert_eq!(wait.recv_timeout(timeout), Ok(true), "writer did not end");
    }

    #[test]
    fn three_users_at_once_are_all_saved_with_unknown_fields_and_order_kept() {
        let (_directory, path, document) = setup(&initial_json());
        let (writer, handle) = ConfigWriter::spawn(path.clone(), document).unwrap();
        let threads: Vec<_> = ["alice", "bob", "carol"]
            .into_iter()
            .map(|name| {
                let writer = writer.clone();
                std::thread::spawn(move || {
                    writer.save(&Login::new(name), tokens(name, 1));
                    writer.flush(TIMEOUT)
                })
            })
            .collect();
        for thread in threads {
            assert!(thread.join().unwrap());
        }
        let saved = read_json(&path);
        assert_eq!(keys(&saved), ["_comment", "users", "zz_unknown"]);
        assert_eq!(saved["zz_unknown"], json!({"nested": [1, 2, 3]}));
        for name in ["alice", "bob", "carol"] {
            let entry = user_in(&saved, name);
            assert_eq!(
                keys(entry),
                [
                    "username",
                    "client_id",
                    "client_secret",
                    "access_token",
                    "refresh_token",
                    "channels",
                    "favourite_food",
                    "token_expires_at",
                ],
                "{name}"
            );
            assert_eq!(entry["access_token"], format!("access-{name}-1"));
            assert_eq!(entry["refresh_token"], format!("refresh-{name}-1"));
            assert_eq!(entry["client_secret"], format!("secret-{name}"));
            assert_eq!(entry["favourite_food"], "soup");
        }
        assert!(writer.own_writes().is_own(&fs::read(&path).unwrap()));
        drop(writer);
        join_within(handle, TIMEOUT);
    }

    #[test]
    fn a_hand_edit_between_writes_is_kept() {
        let (_directory, path, document) = setup(&initial_json());
        let (writer, handle) = ConfigWriter::spawn(path.clone(), document).unwrap();
        let own_writes = writer.own_writes();
        writer.save(&Login::new("alice"), tokens("alice", 1));
        assert!(writer.flush(TIMEOUT));
        assert!(own_writes.is_own(&fs::read(&path).unwrap()));

        // A person edits the file the way an editor would: in place, as they see it.
        let mut edited = read_json(&path);
        edited["users"][1]["channels"] = json!(["bob", "somewhere_else"]);
        edited["added_by_hand"] = json!(true);
        let edited_text = serde_json::to_string_pretty(&edited).unwrap();
        fs::write(&path, &edited_text).unwrap();
        assert!(!own_writes.is_own(edited_text.as_bytes()));

        writer.save(&Login::new("Bob"), tokens("bob", 2));
        assert!(writer.flush(TIMEOUT));
        let saved = read_json(&path);
        assert_eq!(saved["added_by_hand"], true);
        assert_eq!(
            user_in(&saved, "bob")["channels"],
            json!(["bob", "somewhere_else"])
        );
        assert_eq!(user_in(&saved, "bob")["access_token"], "access-bob-2");
        assert_eq!(user_in(&saved, "alice")["access_token"], "access-alice-1");
        assert!(own_writes.is_own(&fs::read(&path).unwrap()));
        drop(writer);
        join_within(handle, TIMEOUT);
    }

    #[test]
    fn an_invalid_file_is_not_overwritten_and_the_change_lands_once_it_is_valid() {
        let (_directory, path, document) = setup(&initial_json());
        let (writer, handle) = ConfigWriter::spawn(path.clone(), document).unwrap();
        let half_edited = b"{\"users\": [ {\"username\": \"alice\",";
        fs::write(&path, half_edited).unwrap();
        writer.save(&Login::new("alice"), tokens("alice", 1));
        // The flush cannot succeed while the file is invalid: it gives up after its timeout.
        assert!(!writer.flush(Duration::from_millis(200)));
        assert_eq!(fs::read(&path).unwrap(), half_edited);

        let mut fixed = initial_json();
        fixed["fixed_by_hand"] = json!("yes");
        fs::write(&path, serde_json::to_string_pretty(&fixed).unwrap()).unwrap();
        assert!(writer.flush(TIMEOUT));
        let saved = read_json(&path);
        assert_eq!(saved["fixed_by_hand"], "yes");
        assert_eq!(user_in(&saved, "alice")["access_token"], "access-alice-1");
        drop(writer);
        join_within(handle, TIMEOUT);
    }

    #[test]
    fn a_blocked_write_is_retried_after_the_delay_without_a_new_request() {
        let (_directory, path, document) = setup(&initial_json());
        fs::write(&path, "not json").unwrap();
        let (observer, attempts) = crossbeam_channel::unbounded();
        let (writer, handle) = spawn_with(
            path.clone(),
            document,
            Duration::from_millis(20),
            Some(observer),
        )
        .unwrap();
        writer.save(&Login::new("carol"), tokens("carol", 7));
        assert_eq!(attempts.recv_timeout(TIMEOUT), Ok(Attempt::Blocked));
        fs::write(&path, serde_json::to_string(&initial_json()).unwrap()).unwrap();
        // Only the timer can trigger the next attempts; the file becomes valid in between.
        loop {
            match attempts.recv_timeout(TIMEOUT) {
                Ok(Attempt::Blocked) => continue,
                Ok(Attempt::Done) => break,
                Err(error) => panic!("no retry: {error}"),
            }
        }
        assert_eq!(
            user_in(&read_json(&path), "carol")["access_token"],
            "access-carol-7"
        );
        drop(writer);
        join_within(handle, TIMEOUT);
    }

    #[test]
    fn flush_with_nothing_pending_answers_at_once() {
        let (_directory, path, document) = setup(&initial_json());
        let before = fs::read(&path).unwrap();
        let (writer, handle) = ConfigWriter::spawn(path.clone(), document).unwrap();
        assert!(writer.flush(TIMEOUT));
        // Nothing was asked, so nothing was written: the compact original is untouched.
        assert_eq!(fs::read(&path).unwrap(), before);
        assert!(writer.own_writes().is_own(&before));
        drop(writer);
        join_within(handle, TIMEOUT);
    }

    #[test]
    fn changes_for_an_unknown_user_write_nothing() {
        let (_directory, path, document) = setup(&initial_json());
        let before = fs::read(&path).unwrap();
        let (writer, handle) = ConfigWriter::spawn(path.clone(), document).unwrap();
        writer.save(&Login::new("mallory"), tokens("mallory", 1));
        assert!(writer.flush(TIMEOUT));
        assert_eq!(fs::read(&path).unwrap(), before);
        drop(writer);
        join_within(handle, TIMEOUT);
    }

    #[test]
    fn the_thread_ends_when_every_handle_is_dropped_after_writing_what_is_pending() {
        let (_directory, path, document) = setup(&initial_json());
        let (writer, handle) = ConfigWriter::spawn(path.clone(), document).unwrap();
        assert_eq!(handle.thread().name(), Some("config-writer"));
        let second = writer.clone();
        second.save(&Login::new("bob"), tokens("bob", 1));
        second.save(&Login::new("bob"), tokens("bob", 2));
        drop(second);
        drop(writer);
        join_within(handle, TIMEOUT);
        let saved = read_json(&path);
        assert_eq!(user_in(&saved, "bob")["access_token"], "access-bob-2");
        assert_eq!(user_in(&saved, "bob")["token_expires_at"], 2);
    }

    #[test]
    fn a_missing_file_is_written_from_the_document() {
        let (directory, path, document) = setup(&initial_json());
        fs::remove_file(&path).unwrap();
        let (writer, handle) = ConfigWriter::spawn(path.clone(), document).unwrap();
        writer.save(&Login::new("alice"), tokens("alice", 3));
        assert!(writer.flush(TIMEOUT));
        let saved = read_json(&path);
        assert_eq!(user_in(&saved, "alice")["access_token"], "access-alice-3");
        assert_eq!(saved["_comment"], "keep me");
        drop(writer);
        join_within(handle, TIMEOUT);
        drop(directory);
    }

    #[test]
    fn the_last_value_of_a_field_wins_within_one_write() {
        let (_directory, path, document) = setup(&initial_json());
        let mut state = WriterState::new(path.clone(), document, OwnWrites::default());
        for n in 1..=3 {
            state.accept(WriteRequest::Save {
                username: Login::new("alice"),
                change: tokens("alice", n),
            });
        }
        assert_eq!(state.pending.len(), 1);
        assert_eq!(state.write_pending(), Attempt::Done);
        let saved = read_json(&path);
        assert_eq!(user_in(&saved, "alice")["access_token"], "access-alice-3");
        assert!(state.pending.is_empty());
    }

    #[test]
    fn debug_of_a_request_shows_field_names_but_no_values() {
        let request = WriteRequest::Save {
            username: Login::new("alice"),
            change: tokens("alice", 1),
        };
        let shown = format!("{request:?}");
        assert!(shown.contains("access_token"), "{shown}");
        assert!(!shown.contains("access-alice-1"), "{shown}");
    }
}
