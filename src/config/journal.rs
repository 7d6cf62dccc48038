//! The token journal, `<config>.tokens` beside the config (mode 0600): new tokens are
//! appended to it and fsynced, file and directory, before anything else happens with them
//! (before the config is rewritten, before they are published to the threads that use
//! them). Every start reads it with the config and takes, per user, the newest tokens; its
//! record of the tokens they replaced tells a stale copy of the config (an editor's old
//! buffer, a config write cut off by a crash) from tokens a person pasted. It is compacted
//! (rewritten atomically, one line per user) once it has grown. Temp files of config writes
//! that a crash left are read at start: tokens newer than the config's are taken over, and
//! the files removed. Does file I/O.
//!
//! The file is JSON lines: a comment line, then one object per record, `username`,
//! `access_token`, `refresh_token`, `token_expires_at` and `replaced` (the tokens the
//! record replaces). A torn last line (a crash during an append) is ignored; the file of an
//! older version (one JSON document with a `users` array) is read the same way.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use log::{error, info, warn};
use serde_json::{json, Value};

use crate::base::ids::Login;
use crate::base::secret::Secret;
use crate::config::file::{self as config_file};
use crate::config::tokens::{TokenLedger, TokenPair, TokenVerdict};
use crate::config::UserConfig;

/// The journal is compacted once it holds this many records more than twice its users.
const COMPACT_SLACK: usize = 16;

/// One user's newest tokens in the journal and the ones they replaced.
#[derive(Clone, Debug, PartialEq)]
pub struct JournalUser {
    pub username: Login,
    pub tokens: TokenPair,
    pub replaced: Vec<Secret>,
}

/// `<config>.tokens`.
pub fn journal_path(config_path: &Path) -> PathBuf {
    let mut name = config_path.file_name().unwrap_or_default().to_os_string();
    name.push(".tokens");
    config_path.with_file_name(name)
}

/// What a journal's text holds: the users, newest tokens last, and whether the file must
/// be rewritten before appending (a torn last line, or the format of an older version).
/// Pure.
fn parse(path: &Path, text: &str) -> io::Result<(Vec<JournalUser>, bool)> {
    let invalid = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not a token journal", path.display()),
        )
    };
    // An older version wrote one document with a `users` array.
    if let Ok(document) = serde_json::from_str::<Value>(text) {
        if let Some(entries) = document.get("users").and_then(Value::as_array) {
            let users = entries.iter().map(record).collect::<Option<Vec<_>>>();
            return users.map(|users| (users, true)).ok_or_else(invalid);
        }
    }
    let mut users = Vec::new();
    let mut torn = false;
    let lines: Vec<&str> = text.split('\n').collect();
    for (index, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let is_last = index + 1 == lines.len();
        match serde_json::from_str::<Value>(line) {
            Ok(value) if value.get("username").is_none() => {}
            Ok(value) => users.push(record(&value).ok_or_else(invalid)?),
            // A line without its newline was being appended when the process died.
            Err(_) if is_last => torn = true,
            Err(_) => return Err(invalid()),
        }
    }
    Ok((users, torn))
}

fn record(entry: &Value) -> Option<JournalUser> {
    let text = |key: &str| entry[key].as_str().map(Secret::new);
    Some(JournalUser {
        username: Login::new(entry["username"].as_str()?),
        tokens: TokenPair {
            access_token: text("access_token")?,
            refresh_token: text("refresh_token")?,
            expires_at_unix: entry["token_expires_at"].as_u64(),
        },
        replaced: entry
            .get("replaced")
            .and_then(Value::as_array)
            .map(|tokens| {
                tokens
                    .iter()
                    .filter_map(|token| token.as_str().map(Secret::new))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

fn line_of(user: &JournalUser) -> String {
    let mut line = json!({
        "username": user.username.as_str(),
        "access_token": user.tokens.access_token.expose(),
        "refresh_token": user.tokens.refresh_token.expose(),
        "token_expires_at": user.tokens.expires_at_unix,
        "replaced": user.replaced.iter().map(Secret::expose).collect::<Vec<_>>(),
    })
    .to_string();
    line.push('\n');
    line
}

fn header() -> String {
    let mut line = json!({
        "_comment": "twitch-colorchanger's token journal: every user's newest tokens, written \
                     before the config, and the ones they replaced. Do not edit or delete.",
    })
    .to_string();
    line.push('\n');
    line
}

/// Folds records into a ledger, newest last wins. Pure.
fn fold(records: &[JournalUser]) -> TokenLedger {
    let mut ledger = TokenLedger::default();
    for record in records {
        ledger.hold(&record.username, record.tokens.clone());
        ledger.remember_replaced(&record.username, &record.replaced);
    }
    ledger
}

/// The journal of one config file, shared by the threads that learn new tokens (the token
/// refresher, the `auth` command, the config writer for pasted tokens).
pub struct TokenJournal {
    config_path: PathBuf,
    state: Mutex<JournalState>,
}

struct JournalState {
    /// Every user's newest tokens and the replaced ones: what the file says.
    ledger: TokenLedger,
    /// Open for appending; None until the first append after a start or a compaction.
    file: Option<File>,
    /// Records in the file, for deciding when to compact.
    n_records: usize,
    /// The file could not be read: it is left alone, nothing is appended to it.
    unreadable: bool,
    /// The file must be rewritten before the next append (torn line, older format).
    needs_rewrite: bool,
    /// Whether the last write reached the disk, for telling where tokens are.
    last_write_ok: bool,
    warned: bool,
}

impl TokenJournal {
    /// Reads the journal beside `config_path` (none is fine). A journal that cannot be read
    /// is logged and left alone: it may hold the only copy of a token.
    pub fn open(config_path: &Path) -> TokenJournal {
        let path = journal_path(config_path);
        let (records, unreadable, needs_rewrite) = match fs::read(&path) {
            Ok(bytes) => match parse(&path, &String::from_utf8_lossy(&bytes)) {
                Ok((records, needs_rewrite)) => (records, false, needs_rewrite),
                Err(problem) => {
                    error!("{problem}; it is left alone and new tokens go to the config only");
                    (Vec::new(), true, false)
                }
            },
            Err(error) if error.kind() == io::ErrorKind::NotFound => (Vec::new(), false, false),
            Err(error) => {
                error!(
                    "{}: cannot be read ({error}); it is left alone and new tokens go to the \
                     config only",
                    path.display()
                );
                (Vec::new(), true, false)
            }
        };
        TokenJournal {
            config_path: config_path.to_path_buf(),
            state: Mutex::new(JournalState {
                ledger: fold(&records),
                file: None,
                n_records: records.len(),
                unreadable,
                needs_rewrite,
                last_write_ok: true,
                warned: false,
            }),
        }
    }

    pub fn path(&self) -> PathBuf {
        journal_path(&self.config_path)
    }

    /// Every user the journal knows, with the newest tokens and the replaced ones.
    pub fn users(&self) -> Vec<JournalUser> {
        let state = crate::base::sync::lock(&self.state);
        state
            .ledger
            .users()
            .into_iter()
            .filter_map(|username| {
                let tokens = state.ledger.current(&username)?.clone();
                let replaced = state.ledger.replaced(&username);
                Some(JournalUser {
                    username,
                    tokens,
                    replaced,
                })
            })
            .collect()
    }

    /// How `tokens` found for `login` (in the config, in a temp file) relate to the journal.
    pub fn judge(&self, login: &Login, tokens: &TokenPair) -> TokenVerdict {
        crate::base::sync::lock(&self.state)
            .ledger
            .judge(login, tokens)
    }

    /// Takes `tokens` as `login`'s current ones without writing them: the config's tokens
    /// of a user the journal does not know yet, so the first record names what it replaces.
    pub fn adopt(&self, login: &Login, tokens: &TokenPair) {
        let mut state = crate::base::sync::lock(&self.state);
        if state.ledger.current(login).is_none() {
            state.ledger.hold(login, tokens.clone());
        }
    }

    /// Whether the last write to the journal reached the disk.
    pub fn is_healthy(&self) -> bool {
        let state = crate::base::sync::lock(&self.state);
        !state.unreadable && state.last_write_ok
    }

    /// Appends `tokens` as `login`'s newest and syncs the file (and, when it was created,
    /// its directory). Returns once they are on disk; an error is logged once per episode.
    pub fn append(&self, login: &Login, tokens: &TokenPair) -> io::Result<()> {
        let mut state = crate::base::sync::lock(&self.state);
        if state
            .ledger
            .current(login)
            .is_some_and(|current| same_tokens(current, tokens))
        {
            return Ok(());
        }
        let replaced = state
            .ledger
            .current(login)
            .map(|current| {
                [&current.access_token, &current.refresh_token]
                    .into_iter()
                    .filter(|token| !token.is_empty())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        state.ledger.hold(login, tokens.clone());
        let record = JournalUser {
            username: login.clone(),
            tokens: tokens.clone(),
            replaced,
        };
        let to_sync = match self.write_record(&mut state, &record) {
            Ok(to_sync) => to_sync,
            Err(error) => {
                let failed = Err(error);
                self.note(&mut state, &failed);
                return failed;
            }
        };
        // The sync runs without the lock, so that tokens arriving together (a refresh wave)
        // are synced at once rather than one after another; the filesystem commits them
        // together. A compaction meanwhile writes a file that holds this record too.
        drop(state);
        let synced = to_sync.map_or(Ok(()), |file| file.sync_data());
        let mut state = crate::base::sync::lock(&self.state);
        if synced.is_err() {
            state.file = None;
            state.needs_rewrite = true;
        }
        self.note(&mut state, &synced);
        synced
    }

    /// Rewrites the journal, one line per user, once it has grown (or must be rewritten):
    /// atomically, so a crash leaves the old journal or the new one.
    pub fn compact_if_grown(&self) {
        let mut state = crate::base::sync::lock(&self.state);
        let n_users = state.ledger.users().len();
        if state.unreadable
            || (!state.needs_rewrite && state.n_records <= 2 * n_users + COMPACT_SLACK)
        {
            return;
        }
        let result = self.rewrite(&mut state);
        self.note(&mut state, &result);
    }

    /// Writes `record`; returns a handle on the file still to be synced (None when it
    /// already is: a rewrite).
    fn write_record(
        &self,
        state: &mut JournalState,
        record: &JournalUser,
    ) -> io::Result<Option<File>> {
        if state.unreadable {
            return Err(io::Error::other(format!(
                "{} cannot be read, so nothing is added to it",
                self.path().display()
            )));
        }
        if state.needs_rewrite {
            // The record is already in the ledger: the rewrite holds it.
            return self.rewrite(state).map(|()| None);
        }
        if state.file.is_none() {
            let path = self.path();
            let created = !path.exists();
            let mut options = OpenOptions::new();
            options.create(true).append(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options.open(&path)?;
            if created {
                file.write_all(header().as_bytes())?;
                file.sync_all()?;
                sync_directory_of(&path);
            }
            state.file = Some(file);
        }
        let Some(file) = state.file.as_mut() else {
            return Err(io::Error::other("no journal file"));
        };
        let written = file
            .write_all(line_of(record).as_bytes())
            .and_then(|()| file.try_clone());
        if written.is_err() {
            // A half-written line may follow: rewrite before the next append.
            state.file = None;
            state.needs_rewrite = true;
        }
        let to_sync = written?;
        state.n_records += 1;
        Ok(Some(to_sync))
    }

    fn rewrite(&self, state: &mut JournalState) -> io::Result<()> {
        let mut text = header();
        let mut n_records = 0;
        for username in state.ledger.users() {
            let Some(tokens) = state.ledger.current(&username).cloned() else {
                continue;
            };
            let replaced = state.ledger.replaced(&username);
            text.push_str(&line_of(&JournalUser {
                username,
                tokens,
                replaced,
            }));
            n_records += 1;
        }
        config_file::write_atomic(&self.path(), text.as_bytes())?;
        // The open handle names the replaced inode.
        state.file = None;
        state.n_records = n_records;
        state.needs_rewrite = false;
        Ok(())
    }

    fn note(&self, state: &mut JournalState, result: &io::Result<()>) {
        match result {
            Ok(()) => {
                if !state.last_write_ok {
                    info!("{}: written again", self.path().display());
                }
                state.last_write_ok = true;
                state.warned = false;
            }
            Err(error) => {
                state.last_write_ok = false;
                if !state.warned {
                    state.warned = true;
                    error!(
                        "cannot write the token journal {} ({error}); new tokens are on disk \
                         only once the config is written",
                        self.path().display()
                    );
                }
            }
        }
    }
}

fn same_tokens(a: &TokenPair, b: &TokenPair) -> bool {
    a.access_token == b.access_token && a.refresh_token == b.refresh_token
}

fn sync_directory_of(path: &Path) {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let _ = File::open(directory).and_then(|dir| dir.sync_all());
}

/// Reads the temp files of config writes a crash left beside `config_path`: where one
/// holds tokens of a user that are newer than the config's (the journal does not know them
/// as replaced, and the file was written after the config), `users` get them and they are
/// appended to the journal. Every such file is removed. Returns the users whose tokens came
/// from a temp file.
pub fn recover_temp_files(
    config_path: &Path,
    journal: &TokenJournal,
    users: &mut [UserConfig],
) -> Vec<Login> {
    let mut recovered = Vec::new();
    let config_modified = fs::metadata(config_path)
        .and_then(|metadata| metadata.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    for (path, modified) in config_file::leftover_temp_files(config_path) {
        let text = fs::read_to_string(&path).unwrap_or_default();
        if modified >= config_modified {
            if let Ok((config, _)) = crate::config::parse(&text, &path) {
                for found in config.users {
                    let Some(user) = users
                        .iter_mut()
                        .find(|user| user.username == found.username)
                    else {
                        continue;
                    };
                    let tokens = TokenPair {
                        access_token: found.access_token.clone(),
                        refresh_token: found.refresh_token.clone(),
                        expires_at_unix: None,
                    };
                    let newer = user.refresh_token != found.refresh_token
                        && !found.refresh_token.is_empty()
                        && journal.judge(&user.username, &tokens) != TokenVerdict::StaleCopy;
                    if newer {
                        warn!(
                            "{}: an interrupted write of {} held newer tokens; taking them over",
                            user.username,
                            config_path.display()
                        );
                        user.access_token = found.access_token;
                        user.refresh_token = found.refresh_token;
                        let _ = journal.append(&user.username, &tokens);
                        recovered.push(user.username.clone());
                    }
                }
            }
        }
        if let Err(error) = fs::remove_file(&path) {
            warn!("cannot remove {} ({error})", path.display());
        }
    }
    recovered
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(access: &str, refresh: &str) -> TokenPair {
        TokenPair {
            access_token: Secret::new(access),
            refresh_token: Secret::new(refresh),
            expires_at_unix: Some(99),
        }
    }

    #[test]
    fn appended_records_come_back_newest_last_with_mode_0600() {
        let directory = tempfile::tempdir().unwrap();
        let config = directory.path().join("config.json");
        let alice = Login::new("alice");
        let journal = TokenJournal::open(&config);
        assert_eq!(journal.users(), []);
        journal.adopt(&alice, &pair("a1", "r1"));
        journal.append(&alice, &pair("a2", "r2")).unwrap();
        journal.append(&alice, &pair("a3", "r3")).unwrap();

        let read = TokenJournal::open(&config).users();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].tokens, pair("a3", "r3"));
        for token in ["a1", "r1", "a2", "r2"] {
            assert!(read[0].replaced.contains(&Secret::new(token)), "{token}");
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(journal_path(&config))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_torn_last_line_is_ignored_and_rewritten_before_the_next_append() {
        let directory = tempfile::tempdir().unwrap();
        let config = directory.path().join("config.json");
        let alice = Login::new("alice");
        TokenJournal::open(&config)
            .append(&alice, &pair("a2", "r2"))
            .unwrap();
        let mut text = fs::read_to_string(journal_path(&config)).unwrap();
        text.push_str("{\"username\":\"alice\",\"access_tok");
        fs::write(journal_path(&config), &text).unwrap();

        let journal = TokenJournal::open(&config);
        assert_eq!(journal.users()[0].tokens, pair("a2", "r2"));
        journal.append(&alice, &pair("a3", "r3")).unwrap();
        let users = TokenJournal::open(&config).users();
        assert_eq!(users[0].tokens, pair("a3", "r3"));
        assert!(users[0].replaced.contains(&Secret::new("r2")));
    }

    #[test]
    fn the_file_of_an_older_version_is_read_and_a_damaged_one_left_alone() {
        let directory = tempfile::tempdir().unwrap();
        let config = directory.path().join("config.json");
        let old = json!({"users": [{"username": "alice", "access_token": "a2",
            "refresh_token": "r2", "token_expires_at": 99, "replaced": ["r1"]}]});
        fs::write(journal_path(&config), old.to_string()).unwrap();
        let users = TokenJournal::open(&config).users();
        assert_eq!(users[0].tokens, pair("a2", "r2"));
        assert_eq!(users[0].replaced, [Secret::new("r1")]);

        let damaged = "{\"username\": 1}\n{\"username\":\"alice\"}\n";
        fs::write(journal_path(&config), damaged).unwrap();
        let journal = TokenJournal::open(&config);
        assert!(journal
            .append(&Login::new("alice"), &pair("a3", "r3"))
            .is_err());
        assert_eq!(fs::read_to_string(journal_path(&config)).unwrap(), damaged);
    }

    #[test]
    fn compaction_keeps_one_line_per_user_and_every_replaced_token() {
        let directory = tempfile::tempdir().unwrap();
        let config = directory.path().join("config.json");
        let alice = Login::new("alice");
        let journal = TokenJournal::open(&config);
        for n in 0..40 {
            journal
                .append(&alice, &pair(&format!("a{n}"), &format!("r{n}")))
                .unwrap();
        }
        journal.compact_if_grown();
        let text = fs::read_to_string(journal_path(&config)).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        journal.append(&alice, &pair("a40", "r40")).unwrap();
        let users = TokenJournal::open(&config).users();
        assert_eq!(users[0].tokens, pair("a40", "r40"));
        assert!(users[0].replaced.contains(&Secret::new("r39")));
        assert!(users[0].replaced.contains(&Secret::new("r30")));
    }
}
