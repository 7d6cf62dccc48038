//! The one thread that owns the config file ("config-writer"). Token threads and chat
//! commands send it changes; it writes them on top of what the file holds, keeps backups,
//! and never leaves the file incomplete. It also notices hand edits (a `stat` every few
//! seconds, and before every write), tells a stale editor copy from pasted tokens, and
//! hands each edit to the daemon exactly once. While the file cannot be written it keeps
//! the tokens in the token journal (where new tokens always go first) and retries with
//! backoff. Does file I/O.

use crate::base::counters;
use crate::base::metrics::Outcome;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use log::{debug, error, info, warn};
use rand::RngExt;

use crate::base::backoff::{exponential_ceiling, upper_half_jitter};
use crate::base::clock::unix_now;
use crate::base::ids::Login;
use crate::config::file::{self as config_file, Disk, RealDisk, ReplaceError, WriteOutcome};
use crate::config::journal::{self, TokenJournal};
use crate::config::tokens::{TokenLedger, TokenPair, TokenVerdict};
use crate::config::watch::FileWatch;
use crate::config::{self, Config, Document, SavedField, UserConfig};

/// The first retry after the file could not be written; later ones back off up to
/// [`MAX_RETRY_DELAY`]. A new change also triggers an attempt.
pub const RETRY_DELAY: Duration = Duration::from_secs(5);
/// The longest wait between retries of a file that cannot be written.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(300);

/// A valid hand edit of the config, for the daemon to apply.
#[derive(Debug)]
pub struct Edit {
    /// The edited config. Users whose tokens in the file were a stale copy carry the
    /// daemon's newer tokens here (and those are written back).
    pub config: Config,
    /// Users whose tokens a person replaced with ones the daemon never held: restart them
    /// with these.
    pub pasted: Vec<Login>,
}

/// Changes wait because the file cannot be written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsaved {
    /// When the first change began to wait.
    pub since_unix: u64,
    /// Why, in one line without secrets.
    pub problem: String,
}

/// Told about the writer's state: `Some` while changes wait, `None` once they are saved.
pub type UnsavedSink = Box<dyn Fn(Option<&Unsaved>) + Send>;

/// What the running daemon wants from the writer besides saving.
pub struct Watch {
    /// How often the file is checked for hand edits.
    pub interval: Duration,
    /// Where valid hand edits go.
    pub edits: Sender<Edit>,
    /// Where the writer's state goes (the status file).
    pub unsaved: Option<UnsavedSink>,
}

/// What the writer thread is asked to do.
pub enum WriteRequest {
    /// Save this change to the user's entry; other fields and users stay as they are.
    Save { username: Login, change: SavedField },
    /// Answer on the sender once everything sent before is on disk.
    Flush(Sender<()>),
    /// Start checking the file for hand edits.
    Watch(Watch),
}

/// `Debug` is safe: tokens are [`crate::base::secret::Secret`]s.
impl std::fmt::Debug for WriteRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteRequest::Save { username, change } => f
                .debug_struct("Save")
                .field("username", username)
                .field("change", change)
                .finish(),
            WriteRequest::Flush(_) => f.write_str("Flush"),
            WriteRequest::Watch(watch) => f
                .debug_struct("Watch")
                .field("interval", &watch.interval)
                .finish_non_exhaustive(),
        }
    }
}

/// A cheap, cloneable handle to the writer thread. The thread ends, after writing what is
/// pending (the tokens are in the token journal in any case), once every handle is dropped.
#[derive(Clone)]
pub struct ConfigWriter {
    requests: Sender<WriteRequest>,
    /// New tokens are appended here, on the caller's thread, before they are queued.
    journal: Arc<TokenJournal>,
}

/// How the writer thread works; the defaults are the daemon's.
pub struct WriterOptions {
    pub retry_delay: Duration,
    pub disk: Arc<dyn Disk>,
    /// Hears the outcome of every attempt to write a pending change (tests wait on it).
    pub observer: Option<Sender<Attempt>>,
}

impl Default for WriterOptions {
    fn default() -> WriterOptions {
        WriterOptions {
            retry_delay: RETRY_DELAY,
            disk: Arc::new(RealDisk),
            observer: None,
        }
    }
}

impl ConfigWriter {
    /// Spawns the thread "config-writer" for the file at `path`. `document` is what the
    /// file held when it was loaded (or, for users from the environment, what it should
    /// hold), `users` the users it holds. Where the token journal of an earlier run
    /// holds newer tokens than the config, `users` get those (and they are saved).
    pub fn spawn(
        path: PathBuf,
        document: Document,
        users: &mut [UserConfig],
    ) -> io::Result<(ConfigWriter, JoinHandle<()>)> {
        ConfigWriter::spawn_with(path, document, users, WriterOptions::default())
    }

    /// [`ConfigWriter::spawn`] with the options chosen.
    pub fn spawn_with(
        path: PathBuf,
        document: Document,
        users: &mut [UserConfig],
        options: WriterOptions,
    ) -> io::Result<(ConfigWriter, JoinHandle<()>)> {
        let (requests, receiver) = crossbeam_channel::unbounded();
        let retry_delay = options.retry_delay;
        let journal = Arc::new(TokenJournal::open(&path));
        let mut state = WriterState::new(path, document, users, options, Arc::clone(&journal));
        let handle = std::thread::Builder::new()
            .name("config-writer".into())
            .spawn(move || run(&mut state, &receiver, retry_delay))?;
        Ok((ConfigWriter { requests, journal }, handle))
    }

    /// Queues a change to one user's entry; the file is written shortly after by the
    /// writer thread. New tokens are first appended to the token journal: when this
    /// returns they are on disk (unless the journal cannot be written, which is logged).
    pub fn save(&self, username: &Login, change: SavedField) {
        if let Some(pair) = token_pair(&change) {
            // An error is logged by the journal; the config write still follows.
            let _ = self.journal.append(username, &pair);
        }
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
    /// not written in time (the file cannot be written, or the writer has stopped).
    pub fn flush(&self, timeout: Duration) -> bool {
        let (done, wait) = crossbeam_channel::bounded(1);
        if self.requests.send(WriteRequest::Flush(done)).is_err() {
            return false;
        }
        wait.recv_timeout(timeout).is_ok()
    }

    /// The token journal of this config, for the threads that receive new tokens from
    /// Twitch: they append them as soon as the answer arrives.
    pub fn journal(&self) -> Arc<TokenJournal> {
        Arc::clone(&self.journal)
    }

    /// Starts checking the file for hand edits.
    pub fn watch(&self, watch: Watch) {
        let _ = self.requests.send(WriteRequest::Watch(watch));
    }
}

/// The writer thread: blocks on its channel until a request, the next check of the file,
/// or the next retry of a write that failed.
fn run(state: &mut WriterState, requests: &Receiver<WriteRequest>, retry_delay: Duration) {
    let mut rng = rand::rng();
    // A first attempt at once: tokens taken over from the token journal are written
    // without waiting for the next change.
    let mut retry_at: Option<Instant> = Some(Instant::now());
    loop {
        let deadline = match (retry_at, state.next_check) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let received = match deadline {
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
                // A last look: an editor may have saved an old copy just before the stop.
                state.check_file();
                if state.write_pending() == Attempt::Blocked {
                    warn!(
                        "stopping with changes not saved to {}: {}{}",
                        state.path.display(),
                        state.pending_names(),
                        state.where_tokens_are()
                    );
                }
                return;
            }
        }
        if state.next_check.is_some_and(|at| Instant::now() >= at) {
            state.check_file();
        }
        retry_at = match state.write_pending() {
            Attempt::Done => None,
            Attempt::Blocked => {
                let ceiling = exponential_ceiling(retry_delay, MAX_RETRY_DELAY, state.n_failures);
                Some(Instant::now() + upper_half_jitter(ceiling, rng.random()))
            }
        };
    }
}

/// The outcome of one write attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
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
    /// What the file held after the last write or take-in.
    document: Document,
    /// The file's bytes at that point; a file that differs was edited by someone else.
    known_bytes: Option<Vec<u8>>,
    /// The last content found invalid, so it is reported once.
    rejected_bytes: Option<Vec<u8>>,
    /// What a failed in-place write left in the file: ours, damaged, never an edit.
    damaged_bytes: Option<Vec<u8>>,
    /// Changes not yet on disk, one per user and kind, the newest winning.
    pending: Vec<PendingChange>,
    /// Flushes waiting for `pending` to be written.
    flush_waiters: Vec<Sender<()>>,
    /// Every user's tokens: the newest, and those they replaced.
    ledger: TokenLedger,
    disk: Arc<dyn Disk>,
    watch: Option<(Watch, FileWatch)>,
    next_check: Option<Instant>,
    /// Set while changes wait for a file that cannot be written.
    unsaved: Option<Unsaved>,
    n_failures: u32,
    /// The token journal, where every new token is before the config holds it.
    journal: Arc<TokenJournal>,
    warned_in_place: bool,
    warned_backup: bool,
    /// The problem last warned about, so a file that stays unwritable is warned about once.
    last_problem: Option<String>,
    observer: Option<Sender<Attempt>>,
}

impl WriterState {
    fn new(
        path: PathBuf,
        document: Document,
        users: &mut [UserConfig],
        options: WriterOptions,
        journal: Arc<TokenJournal>,
    ) -> WriterState {
        // The file normally still holds what was loaded; its bytes let later writes tell
        // our own content from a person's edit. If it already differs, it is taken in on
        // the first check or write.
        let known_bytes = std::fs::read(&path)
            .ok()
            .filter(|bytes| parse_document(&path, bytes).is_ok_and(|(_, disk)| disk == document));
        let mut ledger = TokenLedger::default();
        for user in users.iter() {
            ledger.hold(&user.username, pair_of(user));
        }
        let mut state = WriterState {
            path,
            document,
            known_bytes,
            rejected_bytes: None,
            damaged_bytes: None,
            pending: Vec::new(),
            flush_waiters: Vec::new(),
            ledger,
            disk: options.disk,
            watch: None,
            next_check: None,
            unsaved: None,
            n_failures: 0,
            journal,
            warned_in_place: false,
            warned_backup: false,
            last_problem: None,
            observer: options.observer,
        };
        state.take_over_journal(users);
        for login in journal::recover_temp_files(&state.path, &state.journal, users) {
            if let Some(user) = users.iter().find(|user| user.username == login) {
                let tokens = pair_of(user);
                state.ledger.hold(&login, tokens.clone());
                state.queue(login, tokens_change(&tokens));
            }
        }
        state
    }

    /// Takes over the tokens of the token journal, for users whose config entry holds
    /// tokens an earlier run had already replaced; the journal learns the config's tokens
    /// of the users it does not know.
    fn take_over_journal(&mut self, users: &mut [UserConfig]) {
        let journal_path = self.journal.path();
        let journaled = self.journal.users();
        for user in users.iter() {
            self.journal.adopt(&user.username, &pair_of(user));
        }
        for entry in &journaled {
            let login = &entry.username;
            let Some(user) = users.iter_mut().find(|user| user.username == *login) else {
                continue;
            };
            let mut theirs = TokenLedger::default();
            theirs.hold(login, entry.tokens.clone());
            theirs.remember_replaced(login, &entry.replaced);
            match theirs.judge(login, &pair_of(user)) {
                TokenVerdict::Current => {}
                TokenVerdict::StaleCopy => {
                    info!(
                        "{login}: {} holds tokens the daemon had already replaced (an old copy saved over it, or a write that could not be made); took the newer tokens from {}",
                        self.path.display(),
                        journal_path.display()
                    );
                    user.access_token = entry.tokens.access_token.clone();
                    user.refresh_token = entry.tokens.refresh_token.clone();
                    self.ledger.hold(login, entry.tokens.clone());
                    self.queue(login.clone(), tokens_change(&entry.tokens));
                }
                TokenVerdict::Pasted | TokenVerdict::NewUser => {
                    info!(
                        "{login}: {} holds other tokens than {}; using the config's",
                        self.path.display(),
                        journal_path.display()
                    );
                    let _ = self.journal.append(login, &pair_of(user));
                }
            }
            self.ledger.remember_replaced(login, &entry.replaced);
        }
    }

    fn accept(&mut self, request: WriteRequest) {
        match request {
            WriteRequest::Save { username, change } => {
                if let Some(pair) = token_pair(&change) {
                    self.ledger.hold(&username, pair);
                }
                self.queue(username, change);
            }
            WriteRequest::Flush(done) => self.flush_waiters.push(done),
            WriteRequest::Watch(watch) => {
                if let Some(report) = &watch.unsaved {
                    report(self.unsaved.as_ref());
                }
                self.next_check = Some(Instant::now() + watch.interval);
                self.watch = Some((watch, FileWatch::new(self.path.clone())));
            }
        }
    }

    fn queue(&mut self, username: Login, change: SavedField) {
        let existing = self
            .pending
            .iter_mut()
            .find(|pending| pending.username == username && pending.change.same_kind(&change));
        match existing {
            Some(pending) => pending.change = change,
            None => self.pending.push(PendingChange { username, change }),
        }
    }

    /// The periodic look at the file: takes in a hand edit.
    fn check_file(&mut self) {
        let Some((watch, file_watch)) = &mut self.watch else {
            return;
        };
        self.next_check = Some(Instant::now() + watch.interval);
        let Some(bytes) = file_watch.changed_content() else {
            return;
        };
        if self.known_bytes.as_ref() != Some(&bytes) && self.damaged_bytes.as_ref() != Some(&bytes)
        {
            self.take_in(bytes);
        }
    }

    /// Takes in content someone else wrote. A valid edit becomes the base of later writes
    /// and goes to the daemon; for each user its tokens are judged: a stale copy of
    /// replaced tokens gets the newer ones written back, pasted tokens are adopted (and
    /// replace any older ones waiting to be written). True when the content was valid.
    fn take_in(&mut self, bytes: Vec<u8>) -> bool {
        if self.rejected_bytes.as_ref() == Some(&bytes) {
            return false;
        }
        let (mut edited, document) = match parse_document(&self.path, &bytes) {
            Ok(parsed) => parsed,
            Err(problem) => {
                error!("config edit ignored, the running setup stays: {problem}");
                self.rejected_bytes = Some(bytes);
                return false;
            }
        };
        self.rejected_bytes = None;
        let mut pasted = Vec::new();
        for user in &mut edited.users {
            let login = user.username.clone();
            let in_file = pair_of(user);
            match self.ledger.judge(&login, &in_file) {
                TokenVerdict::Current => {}
                TokenVerdict::NewUser => self.ledger.hold(&login, in_file),
                TokenVerdict::Pasted => {
                    info!(
                        "{login}: {} holds new tokens; using them",
                        self.path.display()
                    );
                    self.ledger.hold(&login, in_file.clone());
                    let _ = self.journal.append(&login, &in_file);
                    self.pending.retain(|pending| {
                        pending.username != login
                            || !matches!(pending.change, SavedField::Tokens { .. })
                    });
                    pasted.push(login);
                }
                TokenVerdict::StaleCopy => {
                    let newer = self.ledger.current(&login).cloned().unwrap_or_default();
                    warn!(
                        "{login}: {} was saved with tokens the daemon had already replaced (an \
                         editor's old copy?); keeping the newer tokens and writing them back",
                        self.path.display()
                    );
                    user.access_token = newer.access_token.clone();
                    user.refresh_token = newer.refresh_token.clone();
                    let waiting = self.pending.iter().any(|pending| {
                        pending.username == login
                            && matches!(pending.change, SavedField::Tokens { .. })
                    });
                    if !waiting {
                        self.queue(login, tokens_change(&newer));
                    }
                }
            }
        }
        self.document = document;
        self.known_bytes = Some(bytes);
        if let Some((watch, _)) = &self.watch {
            info!("{} changed; applying it", self.path.display());
            let _ = watch.edits.send(Edit {
                config: edited,
                pasted,
            });
        }
        true
    }

    /// Writes the pending changes if there are any; answers the flushes once nothing is
    /// pending.
    fn write_pending(&mut self) -> Attempt {
        // Only attempts at real changes are observed: the writer's first look at start,
        // with nothing asked yet, would otherwise race a test's first request.
        let attempted = !self.pending.is_empty();
        let attempt = self.try_write();
        match attempt {
            Attempt::Done => {
                for done in self.flush_waiters.drain(..) {
                    // A flush that timed out no longer listens; that is fine.
                    let _ = done.send(());
                }
            }
            // The tokens are in the token journal since `ConfigWriter::save`.
            Attempt::Blocked => {}
        }
        if let Some(observer) = self.observer.as_ref().filter(|_| attempted) {
            let _ = observer.send(attempt);
        }
        attempt
    }

    /// Writes what is pending: reads the file (taking in someone else's edit), applies the
    /// pending changes to the document ([`apply_pending`]) and replaces the file.
    fn try_write(&mut self) -> Attempt {
        // A few rounds at most: each lost race with a person's save takes their edit in.
        for _ in 0..3 {
            if self.pending.is_empty() {
                return self.done();
            }
            let on_disk = match self.read_and_take_in() {
                Ok(on_disk) => on_disk,
                Err(problem) => return self.blocked(problem),
            };
            let applied = apply_pending(&self.document, std::mem::take(&mut self.pending));
            for pending in &applied.orphaned {
                warn!(
                    "{}: user {} is no longer in the file; its {} was not saved",
                    self.path.display(),
                    pending.username,
                    field_names(&pending.change)
                );
            }
            self.pending = applied.kept;
            if self.pending.is_empty() {
                continue;
            }
            match self.replace(applied.document, on_disk.as_deref()) {
                Ok(()) => {}
                Err(ReplaceError::Changed) => continue,
                Err(error) => return self.write_failed(error),
            }
        }
        if self.pending.is_empty() {
            self.done()
        } else {
            self.blocked(format!(
                "{} keeps changing while the daemon writes it",
                self.path.display()
            ))
        }
    }

    /// What the file holds now (`None`: it does not exist). Content someone else wrote is
    /// taken in first; the error is the problem that blocks the write.
    fn read_and_take_in(&mut self) -> Result<Option<Vec<u8>>, String> {
        let on_disk = match std::fs::read(&self.path) {
            Ok(bytes) => Some(bytes),
            Err(error) if error.kind() == io::ErrorKind::NotFound => None,
            Err(error) => return Err(format!("cannot read {}: {error}", self.path.display())),
        };
        if let Some(bytes) = &on_disk {
            let ours = self.known_bytes.as_ref() == Some(bytes)
                || self.damaged_bytes.as_ref() == Some(bytes);
            if !ours && !self.take_in(bytes.clone()) {
                return Err(format!(
                    "{} was changed and is not valid now, so it is left alone until it is fixed",
                    self.path.display()
                ));
            }
        }
        Ok(on_disk)
    }

    /// Replaces the file, which held `on_disk`, with `document`. Once written, the document
    /// is the base of later writes and nothing is pending.
    fn replace(&mut self, document: Document, on_disk: Option<&[u8]>) -> Result<(), ReplaceError> {
        let text = document.to_json_string();
        let replaced =
            config_file::replace_config(&self.path, text.as_bytes(), on_disk, self.disk.as_ref())?;
        counters::config_write(Outcome::Ok);
        if replaced.outcome == WriteOutcome::WroteInPlace && !self.warned_in_place {
            self.warned_in_place = true;
            warn!(
                "wrote {} in place: it could not be replaced atomically (a single \
                 bind-mounted file?); a complete copy is kept beside it during \
                 every write",
                self.path.display()
            );
        }
        if let Some(error) = replaced.backup_error {
            if !self.warned_backup {
                self.warned_backup = true;
                warn!(
                    "cannot keep a backup of {} ({error}); it is written all the same",
                    self.path.display()
                );
            }
        }
        debug!(
            "saved {} to {} (unguarded for {} µs)",
            self.pending_names(),
            self.path.display(),
            replaced.unguarded.as_micros()
        );
        self.damaged_bytes = None;
        match replaced.slipped_in {
            None => {
                self.document = document;
                self.pending.clear();
            }
            Some(edit) => {
                // A person saved between the check and the rename: the write replaced their
                // edit (kept as .bak.1). It is taken in, and the changes just written stay
                // pending, to be written again on top of it. An edit that does not parse
                // is reported by `take_in` and the write stands.
                warn!(
                    "{} was saved while the daemon wrote it; taking the edit in and writing \
                     again",
                    self.path.display()
                );
                if !self.take_in(edit) {
                    self.document = document;
                    self.pending.clear();
                }
            }
        }
        // What the file holds now: the daemon's write.
        self.known_bytes = Some(text.into_bytes());
        Ok(())
    }

    /// The file could not be written (`Io` or `Damaged`): the changes wait.
    fn write_failed(&mut self, error: ReplaceError) -> Attempt {
        counters::config_write(Outcome::Failed);
        if let ReplaceError::Damaged(_) = error {
            self.damaged_bytes = std::fs::read(&self.path).ok();
        }
        self.blocked(format!("cannot write {}: {error}", self.path.display()))
    }

    fn done(&mut self) -> Attempt {
        self.n_failures = 0;
        // The config holds the tokens now; the journal keeps the record of which ones were
        // replaced, so that a stale copy of the config saved while the daemon is stopped
        // (or just before a crash) is still recognised at the next start. Once it has
        // grown it is compacted to one line per user.
        self.journal.compact_if_grown();
        if self.last_problem.take().is_some() {
            info!("{}: the waiting changes are saved now", self.path.display());
        }
        if self.unsaved.take().is_some() {
            self.report_unsaved();
        }
        Attempt::Done
    }

    fn blocked(&mut self, problem: String) -> Attempt {
        self.n_failures = self.n_failures.saturating_add(1);
        // The journal holds the waiting tokens; it must not grow without end while the
        // config stays unwritable.
        self.journal.compact_if_grown();
        if self.last_problem.as_ref() != Some(&problem) {
            warn!(
                "{problem} ({} waiting{}; retried with backoff)",
                self.pending_names(),
                self.where_tokens_are()
            );
            self.last_problem = Some(problem.clone());
        }
        let since_unix = self
            .unsaved
            .as_ref()
            .map_or_else(unix_now, |u| u.since_unix);
        // The status file says where the waiting tokens are, as the journal's last write
        // says.
        let unsaved = Unsaved {
            since_unix,
            problem: format!("{problem}{}", self.where_tokens_are()),
        };
        if self.unsaved.as_ref() != Some(&unsaved) {
            self.unsaved = Some(unsaved);
            self.report_unsaved();
        }
        Attempt::Blocked
    }

    fn report_unsaved(&self) {
        if let Some((
            Watch {
                unsaved: Some(report),
                ..
            },
            _,
        )) = &self.watch
        {
            report(self.unsaved.as_ref());
        }
    }

    /// For log lines: where the waiting tokens are, as the last write of the journal says.
    fn where_tokens_are(&self) -> String {
        let waiting_tokens = self
            .pending
            .iter()
            .any(|pending| matches!(pending.change, SavedField::Tokens { .. }));
        match (waiting_tokens, self.journal.is_healthy()) {
            (false, _) => String::new(),
            (true, true) => format!("; the tokens are kept in {}", self.journal.path().display()),
            (true, false) => "; the new tokens are only in memory".to_string(),
        }
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

/// The pending changes applied to a copy of a document.
struct Applied {
    /// The document with every kept change applied.
    document: Document,
    /// The changes applied, in their order.
    kept: Vec<PendingChange>,
    /// The changes of users no longer in the document, dropped.
    orphaned: Vec<PendingChange>,
}

/// Applies `pending` to a copy of `document`, each change to its user's entry. A change
/// whose user is no longer in the document is orphaned: nothing can save it. Pure: the
/// document is left as it is, so a write that fails changes nothing.
fn apply_pending(document: &Document, pending: Vec<PendingChange>) -> Applied {
    let mut applied = Applied {
        document: document.clone(),
        kept: Vec::new(),
        orphaned: Vec::new(),
    };
    for pending in pending {
        let mut found = false;
        for (field, value) in pending.change.entries() {
            found = applied
                .document
                .set_user_field(&pending.username, field, value);
        }
        if found {
            applied.kept.push(pending);
        } else {
            applied.orphaned.push(pending);
        }
    }
    applied
}

/// A user's tokens as its config entry holds them.
fn pair_of(user: &UserConfig) -> TokenPair {
    TokenPair {
        access_token: user.access_token.clone(),
        refresh_token: user.refresh_token.clone(),
        expires_at_unix: None,
    }
}

fn tokens_change(tokens: &TokenPair) -> SavedField {
    SavedField::Tokens {
        access_token: tokens.access_token.clone(),
        refresh_token: tokens.refresh_token.clone(),
        expires_at_unix: tokens.expires_at_unix,
    }
}

/// The tokens a change saves, if it saves tokens.
fn token_pair(change: &SavedField) -> Option<TokenPair> {
    match change {
        SavedField::Tokens {
            access_token,
            refresh_token,
            expires_at_unix,
        } => Some(TokenPair {
            access_token: access_token.clone(),
            refresh_token: refresh_token.clone(),
            expires_at_unix: *expires_at_unix,
        }),
        _ => None,
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

/// Parses the file's bytes the way loading does. The error names the file and the
/// position, never a value of a secret field.
fn parse_document(path: &std::path::Path, bytes: &[u8]) -> Result<(Config, Document), String> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| format!("{}: the file is not UTF-8 text", path.display()))?;
    config::parse(text, path).map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::secret::Secret;
    use crate::config::file;
    use serde_json::{json, Value};
    use std::fs;
    use std::path::Path;

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

    /// Spawns a writer for the file at `path` as loaded now.
    fn spawn(path: &Path, document: Document) -> (ConfigWriter, JoinHandle<()>) {
        spawn_with(path, document, WriterOptions::default())
    }

    fn spawn_with(
        path: &Path,
        document: Document,
        options: WriterOptions,
    ) -> (ConfigWriter, JoinHandle<()>) {
        let mut users = users_of(&document);
        ConfigWriter::spawn_with(path.to_path_buf(), document, &mut users, options).unwrap()
    }

    /// The users a loaded document holds.
    fn users_of(document: &Document) -> Vec<UserConfig> {
        let text = document.to_json_string();
        config::parse(&text, Path::new("loaded.json"))
            .unwrap()
            .0
            .users
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
        let (writer, handle) = spawn(&path, document);
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
        drop(writer);
        join_within(handle, TIMEOUT);
    }

    #[test]
    fn a_hand_edit_between_writes_is_kept() {
        let (_directory, path, document) = setup(&initial_json());
        let (writer, handle) = spawn(&path, document);
        writer.save(&Login::new("alice"), tokens("alice", 1));
        assert!(writer.flush(TIMEOUT));

        // A person edits the file the way an editor would: in place, as they see it.
        let mut edited = read_json(&path);
        edited["users"][1]["channels"] = json!(["bob", "somewhere_else"]);
        edited["added_by_hand"] = json!(true);
        let edited_text = serde_json::to_string_pretty(&edited).unwrap();
        fs::write(&path, &edited_text).unwrap();

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
        drop(writer);
        join_within(handle, TIMEOUT);
    }

    #[test]
    fn an_invalid_file_is_not_overwritten_and_the_change_lands_once_it_is_valid() {
        let (_directory, path, document) = setup(&initial_json());
        let (writer, handle) = spawn(&path, document);
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
        let options = WriterOptions {
            retry_delay: Duration::from_millis(20),
            observer: Some(observer),
            ..WriterOptions::default()
        };
        let (writer, handle) = spawn_with(&path, document, options);
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
        let (writer, handle) = spawn(&path, document);
        assert!(writer.flush(TIMEOUT));
        // Nothing was asked, so nothing was written: the compact original is untouched.
        assert_eq!(fs::read(&path).unwrap(), before);
        drop(writer);
        join_within(handle, TIMEOUT);
    }

    #[test]
    fn changes_for_an_unknown_user_write_nothing() {
        let (_directory, path, document) = setup(&initial_json());
        let before = fs::read(&path).unwrap();
        let (writer, handle) = spawn(&path, document);
        writer.save(&Login::new("mallory"), tokens("mallory", 1));
        assert!(writer.flush(TIMEOUT));
        assert_eq!(fs::read(&path).unwrap(), before);
        drop(writer);
        join_within(handle, TIMEOUT);
    }

    #[test]
    fn the_thread_ends_when_every_handle_is_dropped_after_writing_what_is_pending() {
        let (_directory, path, document) = setup(&initial_json());
        let (writer, handle) = spawn(&path, document);
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
        let (writer, handle) = spawn(&path, document);
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
        let mut users = users_of(&document);
        let journal = Arc::new(TokenJournal::open(&path));
        let mut state = WriterState::new(
            path.clone(),
            document,
            &mut users,
            WriterOptions::default(),
            journal,
        );
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

    /// Starts watching with a long interval (checks then only come before writes and at
    /// the end) and returns where edits and the unsaved state arrive.
    fn watch_with_long_interval(
        writer: &ConfigWriter,
    ) -> (Receiver<Edit>, Receiver<Option<Unsaved>>) {
        let (edit_sender, edits) = crossbeam_channel::unbounded();
        let (unsaved_sender, unsaved) = crossbeam_channel::unbounded();
        writer.watch(Watch {
            interval: Duration::from_secs(3600),
            edits: edit_sender,
            unsaved: Some(Box::new(move |state: Option<&Unsaved>| {
                let _ = unsaved_sender.send(state.cloned());
            })),
        });
        (edits, unsaved)
    }

    #[test]
    fn disk_full_on_the_in_place_path_keeps_the_file_valid_and_the_newest_tokens() {
        let (directory, path, document) = setup(&initial_json());
        let mut disk = file::test_disk::BindMountedFullDisk::new(&path, 0);
        // A copy-on-write volume with 100 bytes left: each attempt uses them up part-way.
        disk.copy_on_write = true;
        disk.set_limit(100);
        let disk = Arc::new(disk);
        let (observer, attempts) = crossbeam_channel::unbounded();
        let options = WriterOptions {
            retry_delay: Duration::from_millis(10),
            disk: disk.clone(),
            observer: Some(observer),
        };
        let original = fs::read(&path).unwrap();
        let (writer, handle) = spawn_with(&path, document, options);
        let (edits, unsaved) = watch_with_long_interval(&writer);
        assert_eq!(unsaved.recv_timeout(TIMEOUT), Ok(None));
        let mut n_blocked = 0;
        for n in 1..=5 {
            writer.save(&Login::new("bob"), tokens("bob", n));
            // Every attempt, failed or not, leaves a file that loads, with tokens Twitch
            // accepted at some point.
            loop {
                let attempt = attempts.recv_timeout(TIMEOUT).expect("an attempt");
                // Either the file is what it was, or a complete copy of the new content
                // waits beside it (and the writer knows the file is damaged).
                let copy = file::in_place_copy_path(&path);
                let intact = fs::read(&path).unwrap() == original;
                assert!(
                    intact || config_file::load(&copy).is_ok(),
                    "after attempt {n}"
                );
                if attempt == Attempt::Blocked {
                    n_blocked += 1;
                    break;
                }
            }
            // Retries back off: refill the budget so that each attempt cuts off part-way.
            disk.set_limit(100);
        }
        assert!(n_blocked >= 5);
        let waiting = unsaved.recv_timeout(TIMEOUT).unwrap().expect("reported");
        assert!(waiting.problem.contains("cannot write"), "{waiting:?}");
        // The newest tokens are on disk beside the config all the while.
        let journaled = TokenJournal::open(&path).users();
        assert_eq!(journaled.len(), 1);
        assert_eq!(journaled[0].tokens.refresh_token.expose(), "refresh-bob-5");
        assert!(journaled[0]
            .replaced
            .iter()
            .any(|token| token.expose() == "refresh-bob"));

        disk.set_limit(usize::MAX);
        assert!(writer.flush(TIMEOUT), "written once space returns");
        let saved = read_json(&path);
        assert_eq!(user_in(&saved, "bob")["refresh_token"], "refresh-bob-5");
        assert_eq!(saved["zz_unknown"], json!({"nested": [1, 2, 3]}));
        assert_eq!(kept_refresh_token(&path, "bob"), "refresh-bob-5");
        assert!(!file::in_place_copy_path(&path).exists(), "copy removed");
        // The state was reported as it changed: blocked (maybe more than once as the
        // problem is rephrased), then saved.
        let last = unsaved.try_iter().last();
        assert_eq!(last, Some(None));
        // A damaged file was never mistaken for a hand edit.
        assert!(edits.try_recv().is_err());
        drop(writer);
        join_within(handle, TIMEOUT);
        drop(directory);
    }

    #[test]
    fn tokens_that_could_not_be_saved_are_kept_at_shutdown_and_taken_over_at_the_next_start() {
        let (_directory, path, document) = setup(&initial_json());
        let disk = Arc::new(file::test_disk::BindMountedFullDisk::new(&path, 0));
        let options = WriterOptions {
            retry_delay: Duration::from_millis(10),
            disk,
            observer: None,
        };
        let (writer, handle) = spawn_with(&path, document, options);
        writer.save(&Login::new("carol"), tokens("carol", 1));
        writer.save(&Login::new("carol"), tokens("carol", 2));
        assert!(!writer.flush(Duration::from_millis(100)));
        drop(writer);
        join_within(handle, TIMEOUT);
        assert_eq!(
            user_in(&read_json(&path), "carol")["refresh_token"],
            "refresh-carol"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let metadata = fs::metadata(journal::journal_path(&path)).unwrap();
            assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
        }

        // The next start: the config still holds the tokens the last run replaced.
        let (loaded, document) = config_file::load(&path).unwrap();
        let mut users = loaded.users;
        let (writer, handle) = ConfigWriter::spawn(path.clone(), document, &mut users).unwrap();
        let carol = users
            .iter()
            .find(|u| u.username.as_str() == "carol")
            .unwrap();
        assert_eq!(carol.refresh_token.expose(), "refresh-carol-2");
        assert!(writer.flush(TIMEOUT));
        let saved = read_json(&path);
        assert_eq!(user_in(&saved, "carol")["refresh_token"], "refresh-carol-2");
        assert_eq!(user_in(&saved, "carol")["token_expires_at"], 2);
        assert_eq!(kept_refresh_token(&path, "carol"), "refresh-carol-2");
        drop(writer);
        join_within(handle, TIMEOUT);
    }

    /// The refresh token the tokens file beside the config keeps as current for `login`.
    fn kept_refresh_token(path: &Path, login: &str) -> String {
        TokenJournal::open(path)
            .users()
            .into_iter()
            .find(|user| user.username.as_str() == login)
            .map(|user| user.tokens.refresh_token.expose().to_string())
            .unwrap_or_default()
    }

    #[test]
    fn a_stale_copy_saved_while_the_daemon_is_stopped_loses_no_token() {
        // A run refreshes alice's tokens and saves them; the config and the tokens file
        // both hold the newest.
        let (_directory, path, _document) = setup(&initial_json());
        let stale = fs::read(&path).unwrap();
        let (loaded, document) = config_file::load(&path).unwrap();
        let mut users = loaded.users;
        let (writer, handle) = ConfigWriter::spawn(path.clone(), document, &mut users).unwrap();
        writer.save(&Login::new("alice"), tokens("alice", 2));
        assert!(writer.flush(TIMEOUT));
        drop(writer);
        join_within(handle, TIMEOUT);
        // The daemon is stopped; an editor saves its old buffer over the config.
        fs::write(&path, &stale).unwrap();
        // The next start takes the newest tokens back and writes them.
        let (loaded, document) = config_file::load(&path).unwrap();
        let mut users = loaded.users;
        let (writer, handle) = ConfigWriter::spawn(path.clone(), document, &mut users).unwrap();
        let alice = users
            .iter()
            .find(|u| u.username.as_str() == "alice")
            .unwrap();
        assert_eq!(alice.refresh_token.expose(), "refresh-alice-2");
        assert!(writer.flush(TIMEOUT));
        assert_eq!(
            user_in(&read_json(&path), "alice")["refresh_token"],
            "refresh-alice-2"
        );
        drop(writer);
        join_within(handle, TIMEOUT);
    }

    #[test]
    fn tokens_pasted_into_the_config_win_over_the_unsaved_tokens_file() {
        let (_directory, path, _document) = setup(&initial_json());
        let earlier_run = TokenJournal::open(&path);
        let pair = |n: u32| TokenPair {
            access_token: Secret::new(format!("access-alice-{n}")),
            refresh_token: Secret::new(format!("refresh-alice-{n}")),
            expires_at_unix: None,
        };
        earlier_run.adopt(&Login::new("alice"), &pair(8));
        earlier_run.append(&Login::new("alice"), &pair(9)).unwrap();
        let (loaded, document) = config_file::load(&path).unwrap();
        let mut users = loaded.users;
        let (writer, handle) = ConfigWriter::spawn(path.clone(), document, &mut users).unwrap();
        assert!(writer.flush(TIMEOUT));
        assert_eq!(users[0].refresh_token.expose(), "refresh-alice");
        assert_eq!(
            user_in(&read_json(&path), "alice")["refresh_token"],
            "refresh-alice"
        );
        assert_eq!(kept_refresh_token(&path, "alice"), "refresh-alice");
        drop(writer);
        join_within(handle, TIMEOUT);
    }

    #[test]
    fn a_temp_file_a_crash_left_with_newer_tokens_is_taken_over_and_removed() {
        // An older version wrote the config before its token record and was killed
        // before the rename: the temp file holds the newest tokens.
        let (directory, path, _document) = setup(&initial_json());
        let mut newer = initial_json();
        newer["users"][0]["access_token"] = json!("access-alice-7");
        newer["users"][0]["refresh_token"] = json!("refresh-alice-7");
        // No process has this id (above Linux's pid_max).
        let left = directory.path().join(".config.json.99999999.3.tmp");
        fs::write(&left, serde_json::to_string(&newer).unwrap()).unwrap();
        let older = directory.path().join(".config.json.bak.1.99999999.2.tmp");
        fs::write(&older, serde_json::to_string(&initial_json()).unwrap()).unwrap();
        // A container's daemon is PID 1 at every start: a leftover may bear our own id.
        let same_pid = directory
            .path()
            .join(format!(".config.json.tokens.{}.9.tmp", std::process::id()));
        fs::write(&same_pid, "{\"_comment\": \"cut off\"}\n").unwrap();
        let (loaded, document) = config_file::load(&path).unwrap();
        let mut users = loaded.users;
        let (writer, handle) = ConfigWriter::spawn(path.clone(), document, &mut users).unwrap();
        assert_eq!(users[0].refresh_token.expose(), "refresh-alice-7");
        assert_eq!(users[1].refresh_token.expose(), "refresh-bob");
        assert!(writer.flush(TIMEOUT));
        assert_eq!(
            user_in(&read_json(&path), "alice")["refresh_token"],
            "refresh-alice-7"
        );
        assert_eq!(kept_refresh_token(&path, "alice"), "refresh-alice-7");
        assert!(
            !left.exists() && !older.exists() && !same_pid.exists(),
            "temp files removed"
        );
        drop(writer);
        join_within(handle, TIMEOUT);
    }

    /// Saves an edit of the config (by rename, like `sed -i`, or in place) right after the
    /// writer's last check, just before its rename.
    struct SavesBeforeTheRename {
        config: PathBuf,
        in_place: bool,
        saved: std::sync::atomic::AtomicBool,
    }

    impl Disk for SavesBeforeTheRename {
        fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
            let first = !self.saved.swap(true, std::sync::atomic::Ordering::SeqCst);
            if to == self.config && first {
                let mut edited = read_json(to);
                edited["users"][1]["channels"] = json!(["bob", "saved_during_the_rename"]);
                let text = serde_json::to_string_pretty(&edited).unwrap();
                if self.in_place {
                    fs::write(to, text).unwrap();
                } else {
                    let editor_temp = to.with_extension("editor");
                    fs::write(&editor_temp, text).unwrap();
                    fs::rename(&editor_temp, to).unwrap();
                }
            }
            RealDisk.rename(from, to)
        }
    }

    #[test]
    fn an_edit_saved_between_the_check_and_the_rename_is_taken_in() {
        for in_place in [false, true] {
            let (_directory, path, document) = setup(&initial_json());
            let options = WriterOptions {
                disk: Arc::new(SavesBeforeTheRename {
                    config: path.clone(),
                    in_place,
                    saved: false.into(),
                }),
                ..WriterOptions::default()
            };
            let (writer, handle) = spawn_with(&path, document, options);
            let (edits, _unsaved) = watch_with_long_interval(&writer);
            writer.save(&Login::new("alice"), tokens("alice", 1));
            assert!(writer.flush(TIMEOUT));
            let saved = read_json(&path);
            assert_eq!(
                user_in(&saved, "bob")["channels"],
                json!(["bob", "saved_during_the_rename"]),
                "in place: {in_place}"
            );
            assert_eq!(user_in(&saved, "alice")["refresh_token"], "refresh-alice-1");
            let edit = edits
                .recv_timeout(TIMEOUT)
                .expect("the edit goes to the daemon");
            assert_eq!(
                edit.config.users[1].channels[1].as_str(),
                "saved_during_the_rename"
            );
            drop(writer);
            join_within(handle, TIMEOUT);
        }
    }

    #[test]
    fn a_hand_edit_made_while_the_daemon_saves_is_applied() {
        let (_directory, path, document) = setup(&initial_json());
        let disk = Arc::new(file::test_disk::BindMountedFullDisk::new(
            &path.with_file_name("not-the-config"),
            usize::MAX,
        ));
        // The person saves between the writer's read and its replace.
        let edited_path = path.clone();
        *disk.before_replace.lock().unwrap() = Some(Box::new(move |_| {
            let mut edited = read_json(&edited_path);
            edited["users"][1]["channels"] = json!(["bob", "edited_while_saving"]);
            fs::write(&edited_path, serde_json::to_string_pretty(&edited).unwrap()).unwrap();
        }));
        let options = WriterOptions {
            disk,
            ..WriterOptions::default()
        };
        let (writer, handle) = spawn_with(&path, document, options);
        let (edits, _unsaved) = watch_with_long_interval(&writer);
        writer.save(&Login::new("alice"), tokens("alice", 1));
        assert!(writer.flush(TIMEOUT));
        let saved = read_json(&path);
        assert_eq!(
            user_in(&saved, "bob")["channels"],
            json!(["bob", "edited_while_saving"])
        );
        assert_eq!(user_in(&saved, "alice")["refresh_token"], "refresh-alice-1");
        let edit = edits
            .recv_timeout(TIMEOUT)
            .expect("the edit goes to the daemon");
        let bob = &edit.config.users[1];
        assert_eq!(bob.channels[1].as_str(), "edited_while_saving");
        assert!(edit.pasted.is_empty());
        // Exactly once: the writer's own write that follows is no edit.
        drop(writer);
        join_within(handle, TIMEOUT);
        assert!(edits.try_recv().is_err());
    }

    #[test]
    fn a_stale_editor_copy_gets_the_newer_tokens_back_and_pasted_tokens_are_adopted() {
        let (_directory, path, document) = setup(&initial_json());
        let stale_copy = fs::read(&path).unwrap();
        let (writer, handle) = spawn(&path, document);
        let (edits, _unsaved) = watch_with_long_interval(&writer);
        writer.save(&Login::new("alice"), tokens("alice", 1));
        writer.save(&Login::new("alice"), tokens("alice", 2));
        assert!(writer.flush(TIMEOUT));

        // An editor saves its old buffer with one change: carol's channels.
        let mut stale: Value = serde_json::from_slice(&stale_copy).unwrap();
        stale["users"][2]["channels"] = json!(["carol", "new_channel"]);
        fs::write(&path, serde_json::to_string_pretty(&stale).unwrap()).unwrap();
        // The next save finds the edit first.
        writer.save(&Login::new("bob"), tokens("bob", 1));
        assert!(writer.flush(TIMEOUT));
        let edit = edits.recv_timeout(TIMEOUT).expect("edit");
        assert!(edit.pasted.is_empty(), "a stale copy is no paste");
        let alice = &edit.config.users[0];
        assert_eq!(alice.refresh_token.expose(), "refresh-alice-2");
        let saved = read_json(&path);
        assert_eq!(user_in(&saved, "alice")["refresh_token"], "refresh-alice-2");
        assert_eq!(user_in(&saved, "bob")["refresh_token"], "refresh-bob-1");
        assert_eq!(
            user_in(&saved, "carol")["channels"],
            json!(["carol", "new_channel"])
        );

        // A person pastes tokens the daemon never had.
        let mut pasted = saved.clone();
        pasted["users"][0]["access_token"] = json!("pasted-access");
        pasted["users"][0]["refresh_token"] = json!("pasted-refresh");
        fs::write(&path, serde_json::to_string_pretty(&pasted).unwrap()).unwrap();
        writer.save(&Login::new("bob"), tokens("bob", 2));
        assert!(writer.flush(TIMEOUT));
        let edit = edits.recv_timeout(TIMEOUT).expect("edit");
        assert_eq!(edit.pasted, [Login::new("alice")]);
        assert_eq!(
            edit.config.users[0].refresh_token.expose(),
            "pasted-refresh"
        );
        let saved = read_json(&path);
        assert_eq!(user_in(&saved, "alice")["refresh_token"], "pasted-refresh");
        assert_eq!(user_in(&saved, "bob")["refresh_token"], "refresh-bob-2");
        drop(writer);
        join_within(handle, TIMEOUT);
    }

    /// One row per kind of pending change: which are kept, which are orphaned, and what
    /// the document holds after. The document given is never changed.
    #[test]
    fn apply_pending_table() {
        let pending = |name: &str, change: SavedField| PendingChange {
            username: Login::new(name),
            change,
        };
        let document = Document {
            root: initial_json(),
            upstream: None,
        };
        // (name, changes, kept users, orphaned users, (user, field, expected value) after)
        type Row = (
            &'static str,
            Vec<PendingChange>,
            Vec<&'static str>,
            Vec<&'static str>,
            Vec<(&'static str, &'static str, Value)>,
        );
        let cases: Vec<Row> = vec![
            ("nothing pending", vec![], vec![], vec![], vec![]),
            (
                "tokens of a user in the file",
                vec![pending("alice", tokens("alice", 2))],
                vec!["alice"],
                vec![],
                vec![
                    ("alice", "access_token", json!("access-alice-2")),
                    ("alice", "refresh_token", json!("refresh-alice-2")),
                    ("alice", "token_expires_at", json!(2)),
                    ("alice", "favourite_food", json!("soup")),
                ],
            ),
            (
                "the name matches case-insensitively",
                vec![pending("BOB", SavedField::Enabled(false))],
                vec!["bob"],
                vec![],
                vec![("bob", "enabled", json!(false))],
            ),
            (
                "a user no longer in the file is orphaned, the others kept",
                vec![
                    pending("dave", SavedField::Enabled(false)),
                    pending("carol", SavedField::IsPrimeOrTurbo(false)),
                ],
                vec!["carol"],
                vec!["dave"],
                vec![("carol", "is_prime_or_turbo", json!(false))],
            ),
            (
                "two changes of one user both land, in order",
                vec![
                    pending("alice", SavedField::Enabled(false)),
                    pending("alice", SavedField::Enabled(true)),
                ],
                vec!["alice", "alice"],
                vec![],
                vec![("alice", "enabled", json!(true))],
            ),
        ];
        for (name, changes, kept, orphaned, after) in cases {
            let applied = apply_pending(&document, changes);
            let names = |changes: &[PendingChange]| -> Vec<String> {
                changes
                    .iter()
                    .map(|pending| pending.username.to_string())
                    .collect()
            };
            assert_eq!(names(&applied.kept), kept, "{name}: kept");
            assert_eq!(names(&applied.orphaned), orphaned, "{name}: orphaned");
            let written: Value = serde_json::from_str(&applied.document.to_json_string()).unwrap();
            for (user, field, value) in after {
                assert_eq!(
                    user_in(&written, user)[field],
                    value,
                    "{name}: {user}.{field}"
                );
            }
            if applied.kept.is_empty() {
                assert_eq!(written, initial_json(), "{name}: unchanged");
            }
            assert_eq!(
                document.root,
                initial_json(),
                "{name}: the original is untouched"
            );
        }
    }
}
