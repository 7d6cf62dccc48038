//! The binary's edge: reads arguments and environment (as OS strings), loads the users,
//! sets up logging and signals, runs a command and turns every outcome into an exit code.
//! Does I/O.

pub mod args;
pub mod env;
pub mod raw;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use log::{info, warn};

use crate::base::clock::unix_now;
use crate::base::ids::Login;
use crate::base::secret::Secret;
use crate::base::stop::StopSignal;
use crate::base::sync::lock;
use crate::cli::args::{Invocation, Subcommand, USAGE};
use crate::cli::env::Environment;
use crate::color::ColorMode;
use crate::config::file::{self as config_file, WriteOutcome};
use crate::config::writer::ConfigWriter;
use crate::config::SavedField;
use crate::config::{self, ConfigError, Document, InvalidConfig, UserConfig};
use crate::daemon::settings::Settings;
use crate::daemon::Daemon;
use crate::status::run_health;
use crate::token::device_login::{device_login, device_login_any, instructions, DeviceLoginError};
use crate::twitch::http;
use crate::twitch::oauth::{OAuth, TokenGrant};
use std::io::IsTerminal;

/// Exit code: clean shutdown or success.
pub const EXIT_OK: i32 = 0;
/// Exit code: failure while running.
pub const EXIT_RUNTIME: i32 = 1;
/// Exit code: bad command line or config.
pub const EXIT_USAGE: i32 = 2;
/// Time allowed for every thread to end after SIGINT/SIGTERM.
pub const SHUTDOWN_GRACE: Duration = Duration::from_millis(1500);
/// Time allowed after that for the last config write.
pub const CONFIG_FLUSH_GRACE: Duration = Duration::from_millis(400);

/// Runs the binary and returns its exit code.
pub fn main() -> i32 {
    // OS strings throughout: bytes that are not UTF-8 give a usage error, never a panic.
    let environment = Environment::from_vars(std::env::vars_os());
    let invocation = raw::parse_raw(std::env::args_os().skip(1))
        .and_then(|raw| args::resolve(raw, &environment));
    let env = environment.text();
    let Invocation { command, settings } = match invocation {
        Ok(invocation) => invocation,
        Err(error) => {
            eprintln!("twitch-colorchanger: {error}");
            return EXIT_USAGE;
        }
    };
    match command {
        Subcommand::Help => {
            print!("{USAGE}");
            EXIT_OK
        }
        Subcommand::Version => {
            println!("twitch-colorchanger {}", env!("CARGO_PKG_VERSION"));
            EXIT_OK
        }
        Subcommand::Check => check(&settings, env),
        Subcommand::Auth {
            user,
            client_id: Some(client_id),
            client_secret,
        } => auth_new_account(
            &settings,
            &client_id,
            client_secret.as_ref(),
            user.as_deref(),
        ),
        Subcommand::Auth { user, .. } => auth(&settings, env, user.as_deref()),
        Subcommand::Health => health(&settings),
        Subcommand::Run => run(&settings, env),
    }
}

/// Reports `error` on stderr the way every error of the binary is reported, and returns
/// `code` for the caller to exit with.
fn fail(code: i32, error: impl std::fmt::Display) -> i32 {
    eprintln!("twitch-colorchanger: {error}");
    code
}

/// Reports a config that cannot be used and returns the usage exit code. When the daemon
/// kept a backup of the file, the message says where: the file may have been broken by an
/// edit after the daemon last saved it.
fn fail_config(path: &Path, error: ConfigError) -> i32 {
    let backup = config_file::backup_path(path, 1);
    let broken = matches!(error, ConfigError::Syntax { .. } | ConfigError::Invalid(_));
    if broken && backup.exists() {
        return fail(
            EXIT_USAGE,
            format!(
                "{error} (the version the daemon last replaced is kept in {})",
                backup.display()
            ),
        );
    }
    fail(EXIT_USAGE, error)
}

/// The users to run and, when the environment brought new ones, the document to write.
#[derive(Debug)]
pub struct LoadedUsers {
    pub users: Vec<UserConfig>,
    /// Where the users came from, for messages.
    pub source: String,
    /// What the config file holds (or will hold, for users from the environment); handed
    /// over to the config writer when the daemon starts.
    pub document: Document,
    /// True when users came from the environment and the file should be written.
    pub write_first: bool,
}

/// Reads the config file and the `TWITCH_*_N` variables.
///
/// A config file with users is the source of truth: it holds the tokens the daemon
/// refreshed, which are newer than any in the environment. Users from the environment are
/// used when the file is missing or lists no users, and are then written to it.
pub fn load_users(path: &Path, env: &HashMap<String, String>) -> Result<LoadedUsers, ConfigError> {
    let mut vars: Vec<(String, String)> = env
        .iter()
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    vars.sort();
    let env_users = config::users_from_env(&vars)?;
    let file = match config_file::load(path) {
        Ok(loaded) => Some(loaded),
        Err(ConfigError::NotFound { .. }) if !env_users.is_empty() => None,
        Err(error) => return Err(error),
    };
    let display = path.display();
    match file {
        Some((config, document)) if !config.users.is_empty() => {
            if !env_users.is_empty() {
                info!("users come from {display}; the TWITCH_USERNAME_N variables are ignored while it lists users");
            }
            Ok(LoadedUsers {
                users: config.users,
                source: display.to_string(),
                document,
                write_first: false,
            })
        }
        _ if !env_users.is_empty() => Ok(LoadedUsers {
            document: Document::from_users(&env_users),
            write_first: true,
            users: env_users,
            source: "the environment (TWITCH_USERNAME_N …)".to_string(),
        }),
        _ => Err(ConfigError::Invalid(Box::new(InvalidConfig {
            path: path.to_path_buf(),
            position: None,
            user: None,
            field: Some("users".to_string()),
            message: "lists no users".to_string(),
            fix: "add at least one user (see config.example.json) or set TWITCH_USERNAME_1 and its companions".to_string(),
        }))),
    }
}

fn check(settings: &Settings, env: &HashMap<String, String>) -> i32 {
    let loaded = match load_users(&settings.config_path, env) {
        Ok(loaded) => loaded,
        Err(error) => return fail_config(&settings.config_path, error),
    };
    println!(
        "{}: {} user{} OK",
        loaded.source,
        loaded.users.len(),
        if loaded.users.len() == 1 { "" } else { "s" }
    );
    for user in &loaded.users {
        println!("{}", summary(user));
    }
    if let Some(conversion) = loaded.document.upstream_conversion() {
        println!(
            "  written in upstream twitch_colorchanger's format ({conversion}): `run` or `auth` converts the file"
        );
    }
    EXIT_OK
}

/// One line about a user, without secrets: only whether each secret is present.
pub fn summary(user: &UserConfig) -> String {
    let present = |empty: bool| if empty { "missing" } else { "set" };
    let channels: Vec<String> = user
        .channels
        .iter()
        .map(|channel| format!("#{channel}"))
        .collect();
    let mode = match &user.color_mode {
        ColorMode::Random => "random".to_string(),
        ColorMode::Preset => "preset".to_string(),
        ColorMode::Rainbow { step_degrees } => format!("rainbow {step_degrees}°"),
        ColorMode::Palette { colors, .. } => format!("palette of {}", colors.len()),
        ColorMode::Readable => "readable".to_string(),
    };
    let timer = user
        .change_every
        .map(|every| format!(", also every {} s", every.as_secs()))
        .unwrap_or_default();
    format!(
        "  {}: {}, {} colors, mode {mode}{timer}, channels {}; client id {}, client secret {}, access token {}, refresh token {}",
        user.username,
        if user.enabled { "enabled" } else { "disabled" },
        if user.is_prime_or_turbo { "hex (Turbo/Prime)" } else { "named" },
        channels.join(", "),
        present(user.client_id.is_empty()),
        present(user.client_secret.is_empty()),
        present(user.access_token.is_empty()),
        present(user.refresh_token.is_empty()),
    )
}

fn run(settings: &Settings, env: &HashMap<String, String>) -> i32 {
    init_logging(settings.log_level);
    recover_interrupted_write(&settings.config_path);
    let mut loaded = match load_users(&settings.config_path, env) {
        Ok(loaded) => loaded,
        Err(error) => return fail_config(&settings.config_path, error),
    };
    info!(
        "twitch-colorchanger {} starting with {} user(s) from {}",
        env!("CARGO_PKG_VERSION"),
        loaded.users.len(),
        loaded.source
    );
    let (writer, writer_thread) = match start_writer(settings, &mut loaded) {
        Ok(started) => started,
        Err(code) => return code,
    };
    let mut settings = settings.clone();
    settings.status_file = Some(settings.status_path());
    // The handler is in place before any thread starts, so a SIGTERM during start-up also
    // ends in a clean shutdown; it is handed the daemon's stop signal once there is one.
    let signal_target = Arc::new(Mutex::new(SignalTarget::default()));
    let handler_target = Arc::clone(&signal_target);
    if let Err(error) = ctrlc::set_handler(move || lock(&handler_target).fire()) {
        eprintln!("twitch-colorchanger: cannot install the signal handler: {error}");
        return EXIT_RUNTIME;
    }
    let daemon = match Daemon::start(&loaded.users, &settings, Some(writer.clone())) {
        Ok(daemon) => daemon,
        Err(error) => {
            eprintln!("twitch-colorchanger: cannot start threads: {error}");
            return EXIT_RUNTIME;
        }
    };
    lock(&signal_target).attach(daemon.stop_signal());
    let all_ended = daemon.run_until_stopped(SHUTDOWN_GRACE);
    // Tokens refreshed just before the stop must reach the file.
    if !writer.flush(CONFIG_FLUSH_GRACE) {
        warn!("some config changes could not be saved before the exit");
    }
    drop(writer);
    if all_ended {
        let _ = writer_thread.join();
    }
    info!(
        "stopped{}",
        if all_ended {
            ""
        } else {
            " (some threads were still busy)"
        }
    );
    EXIT_OK
}

/// Where SIGINT/SIGTERM go: the daemon's stop signal once it runs; a signal that came
/// before is remembered and fires it as soon as it is attached.
#[derive(Default)]
struct SignalTarget {
    stop: Option<StopSignal>,
    fired: bool,
}

impl SignalTarget {
    fn fire(&mut self) {
        self.fired = true;
        if let Some(stop) = &self.stop {
            stop.stop();
        }
    }

    fn attach(&mut self, stop: StopSignal) {
        if self.fired {
            stop.stop();
        }
        self.stop = Some(stop);
    }
}

/// `health`: reads the running daemon's status file.
fn health(settings: &Settings) -> i32 {
    match run_health(&settings.status_path(), unix_now()) {
        Ok(summary) => {
            println!("{summary}");
            EXIT_OK
        }
        Err(reason) => {
            eprintln!("twitch-colorchanger: unhealthy: {reason}");
            EXIT_RUNTIME
        }
    }
}

/// `auth --client-id`: device-code login as whichever account the person logs in with;
/// that user and its tokens go into the config file, which is created when missing. A
/// config file that does not parse is reported and left alone, before any login.
fn auth_new_account(
    settings: &Settings,
    client_id: &str,
    client_secret: Option<&Secret>,
    expected: Option<&str>,
) -> i32 {
    init_logging(settings.log_level);
    let path = &settings.config_path;
    if let Err(code) = read_for_auth(path) {
        return code;
    }
    let stop = StopSignal::new();
    let handler_stop = stop.clone();
    let _ = ctrlc::set_handler(move || handler_stop.stop());
    let oauth = OAuth::new(
        http::new_agent(settings.http_timeout, &http::SharedTls::default()),
        &settings.endpoints.auth_url,
    );
    let expected = expected.map(Login::new);
    let result = device_login_any(&oauth, client_id, expected.as_ref(), &stop, |code| {
        println!(
            "To log in, open {} and enter the code {} while logged in to Twitch as the account              to add (valid for {} minutes)",
            code.verification_uri,
            code.user_code,
            code.expires_in.as_secs().div_ceil(60)
        );
    });
    let (grant, validation) = match result {
        Ok(done) => done,
        Err(DeviceLoginError::Stopped) => return fail(EXIT_RUNTIME, "interrupted"),
        Err(error) => return fail(EXIT_RUNTIME, error),
    };
    let login = validation.login;
    let tokens = tokens_of(grant);
    // Read again: the login took minutes, and a running daemon may have saved tokens since.
    let mut document = match read_for_auth(path) {
        Ok(document) => document,
        Err(code) => return code,
    };
    if let Some(conversion) = document.upstream_conversion() {
        info!(
            "{}: converted from upstream twitch_colorchanger's format ({conversion}) to this one's",
            path.display()
        );
    }
    let added = document.put_logged_in_user(&login, client_id, client_secret, &tokens);
    let text = document.to_json_string();
    // What is written must pass `check`; a config that fails validation is never written.
    if let Err(error) = config::parse(&text, path) {
        return fail(EXIT_RUNTIME, format!("not saved: {error}"));
    }
    match config_file::replace_config_now(path, text.as_bytes()) {
        Ok(outcome) => {
            if outcome == WriteOutcome::WroteInPlace {
                warn!(
                    "wrote {} in place: it could not be replaced atomically",
                    path.display()
                );
            }
            println!(
                "{login}: logged in; {} {} (user id {}). `twitch-colorchanger check` shows it,                  `twitch-colorchanger run` starts it.",
                if added { "added to" } else { "new tokens saved in" },
                path.display(),
                validation.user_id
            );
            EXIT_OK
        }
        Err(error) => fail(
            EXIT_RUNTIME,
            format!("cannot write {}: {error}", path.display()),
        ),
    }
}

/// The config as `auth --client-id` extends it: the file's document, or an empty one when
/// there is no file. `Err` holds the exit code after reporting a file that cannot be used.
fn read_for_auth(path: &Path) -> Result<Document, i32> {
    match config_file::load(path) {
        Ok((_config, document)) => Ok(document),
        Err(ConfigError::NotFound { .. }) => {
            // Found out now rather than after the person went through the login.
            let directory = match path.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => parent,
                _ => Path::new("."),
            };
            if directory.is_dir() {
                Ok(Document::empty())
            } else {
                Err(fail(
                    EXIT_USAGE,
                    format!(
                        "{}: the directory {} does not exist; create it first (mkdir -p {})",
                        path.display(),
                        directory.display(),
                        directory.display()
                    ),
                ))
            }
        }
        Err(error) => Err(fail(EXIT_USAGE, error)),
    }
}

/// `auth`: device-code login for the chosen users, saving their tokens, then exit.
fn auth(settings: &Settings, env: &HashMap<String, String>, only: Option<&str>) -> i32 {
    init_logging(settings.log_level);
    recover_interrupted_write(&settings.config_path);
    let mut loaded = match load_users(&settings.config_path, env) {
        Ok(loaded) => loaded,
        Err(error) => return fail_config(&settings.config_path, error),
    };
    let (writer, writer_thread) = match start_writer(settings, &mut loaded) {
        Ok(started) => started,
        Err(code) => return code,
    };
    let wanted = only.map(Login::new);
    let users: Vec<&UserConfig> = loaded
        .users
        .iter()
        .filter(|user| {
            wanted
                .as_ref()
                .is_none_or(|wanted| user.username == *wanted)
        })
        .collect();
    if users.is_empty() {
        let known: Vec<&str> = loaded.users.iter().map(|u| u.username.as_str()).collect();
        eprintln!(
            "twitch-colorchanger: {}: no user {:?}; the config has {}",
            loaded.source,
            only.unwrap_or_default(),
            known.join(", ")
        );
        return EXIT_USAGE;
    }
    let stop = StopSignal::new();
    let handler_stop = stop.clone();
    let _ = ctrlc::set_handler(move || handler_stop.stop());
    let agent = http::new_agent(settings.http_timeout, &http::SharedTls::default());
    let oauth = OAuth::new(agent, &settings.endpoints.auth_url);
    let mut n_failed = 0;
    for user in users {
        let login = &user.username;
        let result = device_login(&oauth, &user.client_id, login, &stop, |code| {
            println!("{}", instructions(login, code));
        });
        match result {
            Ok((grant, _validation)) => {
                writer.save(login, tokens_of(grant));
                println!(
                    "{login}: logged in; tokens saved to {}",
                    settings.config_path.display()
                );
            }
            Err(DeviceLoginError::Stopped) => {
                eprintln!("twitch-colorchanger: interrupted");
                n_failed += 1;
                break;
            }
            Err(error) => {
                eprintln!("twitch-colorchanger: {login}: {error}");
                n_failed += 1;
            }
        }
    }
    let saved = writer.flush(Duration::from_secs(10));
    drop(writer);
    let _ = writer_thread.join();
    if !saved {
        eprintln!(
            "twitch-colorchanger: could not save the tokens to {}",
            settings.config_path.display()
        );
        return EXIT_RUNTIME;
    }
    if n_failed == 0 {
        EXIT_OK
    } else {
        EXIT_RUNTIME
    }
}

/// What a device-code login saves: the new tokens and when the access token expires.
fn tokens_of(grant: TokenGrant) -> SavedField {
    SavedField::Tokens {
        access_token: grant.access_token,
        refresh_token: grant.refresh_token,
        expires_at_unix: grant
            .expires_in
            .map(|lifetime| unix_now() + lifetime.as_secs()),
    }
}

/// Writes users that came from the environment to the config path, then starts the one
/// thread that writes the config from here on. `Err` holds the exit code.
fn start_writer(
    settings: &Settings,
    loaded: &mut LoadedUsers,
) -> Result<(ConfigWriter, std::thread::JoinHandle<()>), i32> {
    if loaded.write_first {
        write_env_users(&settings.config_path, &loaded.document);
    } else if let Some(conversion) = loaded.document.upstream_conversion() {
        write_converted(&settings.config_path, &loaded.document, conversion);
    }
    // The writer owns the document from here on; keeping a copy here would hold every
    // user's entry twice for the daemon's whole life.
    let document = std::mem::replace(&mut loaded.document, Document::empty());
    ConfigWriter::spawn(settings.config_path.clone(), document, &mut loaded.users).map_err(
        |error| {
            fail(
                EXIT_RUNTIME,
                format!("cannot start the config writer: {error}"),
            )
        },
    )
}

/// Completes a config write that a crash or power cut cut off (see
/// [`config_file::recover_interrupted_write`]), so that the daemon starts from a complete
/// file instead of stopping with a config error.
fn recover_interrupted_write(path: &Path) {
    match config_file::recover_interrupted_write(path) {
        Ok(config_file::Recovery::Nothing) => {}
        Ok(config_file::Recovery::Completed) => warn!(
            "{}: a write of it was cut off (a crash or power cut); completed it from the copy \
             kept beside it",
            path.display()
        ),
        Ok(config_file::Recovery::CopyDropped) => info!(
            "{}: removed the copy of an interrupted write; the config itself is complete and \
             newer",
            path.display()
        ),
        Err(error) => warn!(
            "{}: cannot complete an interrupted write ({error}); starting from the file as it is",
            path.display()
        ),
    }
}

/// Writes a config read in one of upstream twitch_colorchanger's shapes back in this
/// project's, with one log line. Not being able to write is no reason to stop: the file
/// is read the same way next time.
fn write_converted(path: &Path, document: &Document, conversion: &str) {
    match config_file::replace_config_now(path, document.to_json_string().as_bytes()) {
        Ok(_) => info!(
            "{}: converted from upstream twitch_colorchanger's format ({conversion}) to this one's; nothing else changed",
            path.display()
        ),
        Err(error) => warn!(
            "{}: read in upstream twitch_colorchanger's format ({conversion}) but could not write it back converted: {error}",
            path.display()
        ),
    }
}

/// Saves users that came from the environment so that tokens refreshed later survive a
/// restart. Not being able to write is no reason to stop: the users still run.
fn write_env_users(path: &Path, document: &Document) {
    match config_file::replace_config_now(path, document.to_json_string().as_bytes()) {
        Ok(WriteOutcome::Renamed) => {
            info!("wrote the users from the environment to {}", path.display())
        }
        Ok(WriteOutcome::WroteInPlace) => warn!(
            "wrote {} in place: it could not be replaced atomically (a single bind-mounted file?)",
            path.display()
        ),
        Err(error) => warn!(
            "could not write {} ({error}); refreshed tokens will not survive a restart",
            path.display()
        ),
    }
}

/// How log lines look on stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogStyle {
    /// Color escape codes, only for a person at a terminal (not for a file or a pipe).
    pub colors: bool,
    /// Our own timestamp, left out when journald adds its own.
    pub timestamps: bool,
}

/// Decides the log style. `journal_stream` is `JOURNAL_STREAM` (`<device>:<inode>`, set by
/// systemd for a service whose output goes to the journal); it only counts when it names
/// stderr itself (`stderr_id`), as systemd's documentation asks: a program started from a
/// service's shell inherits the variable with a different stderr.
pub fn log_style(
    stderr_is_terminal: bool,
    journal_stream: Option<&str>,
    stderr_id: Option<(u64, u64)>,
) -> LogStyle {
    let to_journal = match (journal_stream, stderr_id) {
        (Some(value), Some((device, inode))) => value.trim() == format!("{device}:{inode}"),
        _ => false,
    };
    LogStyle {
        colors: stderr_is_terminal && !to_journal,
        timestamps: !to_journal,
    }
}

/// The device and inode of stderr, to compare with `JOURNAL_STREAM`.
fn stderr_id() -> Option<(u64, u64)> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let fd = std::io::stderr().as_fd().try_clone_to_owned().ok()?;
    let metadata = std::fs::File::from(fd).metadata().ok()?;
    Some((metadata.dev(), metadata.ino()))
}

/// Logs to stderr. Only this crate's records pass: libraries may log request headers or
/// raw frames at debug level, and those would hold tokens. Colors only when stderr is a
/// terminal (simplelog's own choice looks at `TERM`, not at the stream, and would fill a
/// log file with escape codes); no timestamp of our own when stderr is the journal.
pub fn init_logging(level: log::LevelFilter) {
    let journal_stream = std::env::var("JOURNAL_STREAM").ok();
    let style = log_style(
        std::io::stderr().is_terminal(),
        journal_stream.as_deref(),
        stderr_id(),
    );
    let mut builder = simplelog::ConfigBuilder::new();
    builder
        .add_filter_allow_str("twitch_colorchanger")
        .set_target_level(log::LevelFilter::Off)
        .set_thread_level(log::LevelFilter::Off)
        .set_location_level(log::LevelFilter::Off);
    if !style.timestamps {
        builder.set_time_level(log::LevelFilter::Off);
    }
    let color_choice = if style.colors {
        simplelog::ColorChoice::Always
    } else {
        simplelog::ColorChoice::Never
    };
    let _ = simplelog::TermLogger::init(
        level,
        builder.build(),
        simplelog::TerminalMode::Stderr,
        color_choice,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_style_follows_the_stream() {
        let id = Some((64769, 123456));
        let cases = [
            // (terminal, JOURNAL_STREAM, stderr id) → (colors, timestamps)
            ((true, None, id), (true, true)),
            ((false, None, id), (false, true)),
            ((false, Some("64769:123456"), id), (false, false)),
            // A shell started by a service inherits the variable; its stderr differs.
            ((true, Some("64769:999"), id), (true, true)),
            ((false, Some("64769:999"), id), (false, true)),
            ((false, Some("garbage"), id), (false, true)),
            ((false, Some("64769:123456"), None), (false, true)),
        ];
        for ((terminal, journal, stderr), (colors, timestamps)) in cases {
            assert_eq!(
                log_style(terminal, journal, stderr),
                LogStyle { colors, timestamps },
                "{terminal} {journal:?}"
            );
        }
    }
}
