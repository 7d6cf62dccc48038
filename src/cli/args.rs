//! What the command line means, with the environment: which command to run and the
//! daemon's `Settings` (ripgrep's "high-level arguments"; `cli::raw` reads what was typed,
//! `cli::env` the environment). Pure: callers pass the arguments and the environment in.

use core::net::{Ipv4Addr, SocketAddr};
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::time::Duration;

use crate::base::secret::Secret;
use crate::daemon::settings::{Endpoints, Settings};

use super::env::Environment;
pub use super::raw::UsageError;
use super::raw::{parse_raw, CommandWord, RawArgs};

/// What the user asked the binary to do: its subcommand (`run`, `check`, `auth`, `health`) or
/// `--help` / `--version`. Named apart from `chat::command::ChatCommand`, a chat command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subcommand {
    Run,
    Check,
    /// Device-code login, then exit: with `client_id`, for a new account (or one to log in
    /// again) that is written to the config, created if need be; else for the config's
    /// users, one (by name) or all.
    Auth {
        user: Option<String>,
        client_id: Option<String>,
        /// A secret: printed as `[redacted]`.
        client_secret: Option<Secret>,
    },
    /// Exit 0 when the running daemon and its users are healthy, else 1.
    Health,
    Help,
    Version,
}

/// What the command line asks for: a command and the settings to run it with.
#[derive(Clone, Debug, PartialEq)]
pub struct Invocation {
    pub command: Subcommand,
    pub settings: Settings,
}

pub const USAGE: &str = "\
twitch-colorchanger — changes your Twitch chat name color after every message you send

Usage: twitch-colorchanger [COMMAND] [--config PATH]

Commands:
  run               run the daemon (the default)
  check             validate the config and print a summary per user, then exit
  auth --client-id ID [--client-secret SECRET] [--user NAME]
                    log in to Twitch with a device code (no browser needed on this
                    machine) as any account, and write that user with its tokens and
                    the default settings to the config (created if missing, mode 0600);
                    run again to add another account
  auth [--user NAME]
                    log in again the config's users (one or all), save their tokens
  health            exit 0 when the running daemon and every enabled user are fine,
                    else 1 with the reason (for Docker HEALTHCHECK and monitoring)

Options:
  -c, --config PATH   config file (default: $TWITCH_CONF_FILE, else ./twitch_colorchanger.conf)
  --status-file PATH  status file the daemon keeps for `health` (default: $TWITCH_STATUS_FILE,
                      else <config name>.status.json beside the config)
  --listen ADDR       serve the status page, /metrics and /healthz over HTTP on ADDR: a port
                      (127.0.0.1 only), IP:PORT or [IPv6]:PORT (default: $TWITCH_HTTP_LISTEN,
                      else off)
  -h, --help          print this help
  -V, --version       print the version

Environment:
  TWITCH_CONF_FILE                 config file path when --config is not given
  TWITCH_STATUS_FILE               status file path when --status-file is not given
  TWITCH_HTTP_LISTEN               address of the status server when --listen is not given
  TWITCH_USERNAME_N, TWITCH_ACCESS_TOKEN_N, TWITCH_REFRESH_TOKEN_N, TWITCH_CLIENT_ID_N,
  TWITCH_CLIENT_SECRET_N, TWITCH_CHANNELS_N, USE_RANDOM_COLORS_N
                                   users for container setups (N = 1, 2, …)
  TWITCH_COLOR_MODE_N, TWITCH_RAINBOW_STEP_N, TWITCH_PALETTE_N, TWITCH_PALETTE_ORDER_N,
  TWITCH_CHANGE_EVERY_SECONDS_N    their colors, as the config's fields of the same names
  LOG_LEVEL=debug|info|warn|error  log level (DEBUG=true is the same as LOG_LEVEL=debug)
  TWITCH_CHAT_TRANSPORT_N          chat over irc, eventsub or auto (default: eventsub when
                                   the token has user:read:chat, else irc)
  TWITCH_IRC_URL, TWITCH_EVENTSUB_URL, TWITCH_API_URL, TWITCH_AUTH_URL
                                   Twitch endpoints (for local testing)
  TWITCH_KEEPALIVE_SECS            silence allowed before a chat connection is checked (40)
  TWITCH_HTTP_TIMEOUT_SECS         time allowed for one call to Twitch's HTTP APIs (10)
  TWITCH_RELOAD_SECS               how often the config file is checked for edits (3)

Exit codes: 0 clean shutdown, 1 runtime failure, 2 usage or config error.
";

/// Reads a command line given as text (without the program name) and an environment of
/// text variables: [`parse_raw`] then [`resolve`], for tests and examples that hold text.
pub fn parse(args: &[String], env: &HashMap<String, String>) -> Result<Invocation, UsageError> {
    let raw = parse_raw(args.iter().map(OsString::from))?;
    resolve(raw, &Environment::from_text(env))
}

/// What the typed command line means, with the environment: the command and its settings.
/// `--help` and `--version` need nothing else and never fail; every other command first
/// checks the arguments against each other, then reads the environment.
pub fn resolve(raw: RawArgs, env: &Environment) -> Result<Invocation, UsageError> {
    let command = match raw.command.unwrap_or(CommandWord::Run) {
        CommandWord::Help => return Ok(invocation(Subcommand::Help, env)),
        CommandWord::Version => return Ok(invocation(Subcommand::Version, env)),
        word => subcommand(word, &raw)?,
    };
    if let Some(name) = env.first_not_utf8() {
        return Err(UsageError(format!(
            "environment variable {name} is not valid UTF-8; write its value as text"
        )));
    }
    let mut settings = from_env(env);
    if let Some(path) = raw.config {
        settings.config_path = PathBuf::from(path);
    }
    if let Some(path) = raw.status_file {
        settings.status_file = Some(PathBuf::from(path));
    }
    settings.log_level = log_level(env)?;
    let listen = match &raw.listen {
        Some(value) => Some(text("--listen", value)?),
        None => env
            .get("TWITCH_HTTP_LISTEN")
            .filter(|value| !value.trim().is_empty()),
    };
    if let Some(value) = listen {
        settings.listen = Some(listen_address(value)?);
    }
    settings.keepalive = seconds(env, "TWITCH_KEEPALIVE_SECS", settings.keepalive)?;
    settings.http_timeout = seconds(env, "TWITCH_HTTP_TIMEOUT_SECS", settings.http_timeout)?;
    settings.reload_interval = seconds(env, "TWITCH_RELOAD_SECS", settings.reload_interval)?;
    check_endpoints(&settings.endpoints)?;
    Ok(Invocation { command, settings })
}

/// The command a word names, with the options that go with it: `--user`, `--client-id` and
/// `--client-secret` go with `auth` only, and a secret needs its client id.
fn subcommand(word: CommandWord, raw: &RawArgs) -> Result<Subcommand, UsageError> {
    let client_id = raw
        .client_id
        .as_deref()
        .map(|value| app_value("--client-id", value))
        .transpose()?;
    let client_secret = raw
        .client_secret
        .as_deref()
        .map(|value| app_value("--client-secret", value).map(Secret::new))
        .transpose()?;
    let user = raw
        .user
        .as_deref()
        .map(|value| text("--user", value).map(str::to_string))
        .transpose()?;
    match (word, user) {
        (CommandWord::Auth, user) => {
            if client_secret.is_some() && client_id.is_none() {
                return Err(UsageError(
                    "--client-secret goes with --client-id, e.g. `auth --client-id ID --client-secret SECRET`".to_string(),
                ));
            }
            Ok(Subcommand::Auth {
                user,
                client_id: client_id.map(str::to_string),
                client_secret,
            })
        }
        (_, Some(_)) => Err(UsageError(
            "--user goes with the auth command, e.g. `auth --user alice`".to_string(),
        )),
        (_, None) if client_id.is_some() || client_secret.is_some() => Err(UsageError(
            "--client-id goes with the auth command, e.g. `auth --client-id ID`".to_string(),
        )),
        (CommandWord::Check, None) => Ok(Subcommand::Check),
        (CommandWord::Health, None) => Ok(Subcommand::Health),
        (_, None) => Ok(Subcommand::Run),
    }
}

/// An option's value as text, or an error naming the option.
fn text<'a>(option: &str, value: &'a OsStr) -> Result<&'a str, UsageError> {
    value.to_str().ok_or_else(|| {
        UsageError(format!(
            "{option} {value:?} is not valid UTF-8; write it as text"
        ))
    })
}

/// `--client-id` or `--client-secret`: trimmed, not empty.
fn app_value<'a>(option: &str, value: &'a OsStr) -> Result<&'a str, UsageError> {
    let value = text(option, value)?.trim();
    if value.is_empty() {
        return Err(UsageError(format!(
            "{option} needs a value from your app at https://dev.twitch.tv/console, e.g. {option} abc123"
        )));
    }
    Ok(value)
}

/// Chat endpoints are WebSocket URLs, the HTTP APIs' are HTTP URLs.
fn check_endpoints(endpoints: &Endpoints) -> Result<(), UsageError> {
    for (name, url) in [
        ("TWITCH_IRC_URL", &endpoints.irc_url),
        ("TWITCH_EVENTSUB_URL", &endpoints.eventsub_url),
        ("TWITCH_API_URL", &endpoints.api_url),
        ("TWITCH_AUTH_URL", &endpoints.auth_url),
    ] {
        let allowed: &[&str] = if name == "TWITCH_IRC_URL" || name == "TWITCH_EVENTSUB_URL" {
            &["wss://", "ws://"]
        } else {
            &["https://", "http://"]
        };
        if !allowed.iter().any(|scheme| url.starts_with(scheme)) {
            return Err(UsageError(format!(
                "{name}={url:?} must start with {}",
                allowed.join(" or ")
            )));
        }
    }
    Ok(())
}

/// The status server's address: a bare port means loopback only (the page is for the
/// machine's owner; listening wider is a choice made by writing an address).
pub fn listen_address(value: &str) -> Result<SocketAddr, UsageError> {
    let value = value.trim();
    if let Ok(port) = value.parse::<u16>() {
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    if let Some(port) = value.strip_prefix("localhost:") {
        if let Ok(port) = port.parse::<u16>() {
            return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
        }
    }
    value.parse::<SocketAddr>().map_err(|_| {
        UsageError(format!(
            "listen address {value:?} is not a port, IP:PORT or [IPv6]:PORT (e.g. 8080, 0.0.0.0:8080, [::1]:8080)"
        ))
    })
}

/// A positive number of seconds from the environment, or `default` when unset.
fn seconds(env: &Environment, name: &str, default: Duration) -> Result<Duration, UsageError> {
    match env.get(name).map(|value| value.trim()) {
        None | Some("") => Ok(default),
        Some(value) => match value.parse::<u64>() {
            Ok(seconds) if seconds > 0 => Ok(Duration::from_secs(seconds)),
            _ => Err(UsageError(format!(
                "{name}={value:?} is not a positive number of seconds"
            ))),
        },
    }
}

fn invocation(command: Subcommand, env: &Environment) -> Invocation {
    Invocation {
        command,
        settings: from_env(env),
    }
}

/// The settings the environment gives, before the command line and the checked numbers.
fn from_env(env: &Environment) -> Settings {
    let non_empty = |name: &str| env.get(name).filter(|value| !value.trim().is_empty());
    // A path is used as it was given; only an empty or blank one counts as unset.
    let path = |name: &str| {
        env.path(name)
            .filter(|value| value.to_str().is_none_or(|text| !text.trim().is_empty()))
            .map(PathBuf::from)
    };
    let endpoint = |name: &str, default: &str| {
        non_empty(name)
            .map(|value| value.trim().trim_end_matches('/').to_string())
            .unwrap_or_else(|| default.to_string())
    };
    let defaults = Settings::default();
    Settings {
        config_path: path("TWITCH_CONF_FILE").unwrap_or(defaults.config_path),
        endpoints: Endpoints {
            irc_url: endpoint("TWITCH_IRC_URL", &defaults.endpoints.irc_url),
            eventsub_url: endpoint("TWITCH_EVENTSUB_URL", &defaults.endpoints.eventsub_url),
            api_url: endpoint("TWITCH_API_URL", &defaults.endpoints.api_url),
            auth_url: endpoint("TWITCH_AUTH_URL", &defaults.endpoints.auth_url),
        },
        status_file: path("TWITCH_STATUS_FILE"),
        ..defaults
    }
}

fn log_level(env: &Environment) -> Result<log::LevelFilter, UsageError> {
    if let Some(level) = env
        .get("LOG_LEVEL")
        .filter(|value| !value.trim().is_empty())
    {
        return match level.trim().to_ascii_lowercase().as_str() {
            "trace" | "debug" => Ok(log::LevelFilter::Debug),
            "info" => Ok(log::LevelFilter::Info),
            "warn" | "warning" => Ok(log::LevelFilter::Warn),
            "error" => Ok(log::LevelFilter::Error),
            _ => Err(UsageError(format!(
                "LOG_LEVEL={level:?} is not one of debug, info, warn, error"
            ))),
        };
    }
    let debug = env.get("DEBUG").is_some_and(|value| {
        matches!(
            value.trim().to_ascii_lowercase().as_str(),
            "true" | "1" | "yes"
        )
    });
    Ok(if debug {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Info
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Arguments, environment, and what they should give.
    type Case<'a, T> = (&'a [&'a str], &'a [(&'a str, &'a str)], T);

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn commands_and_config_paths() {
        let cases: Vec<Case<(Subcommand, &str)>> = vec![
            (&[], &[], (Subcommand::Run, "twitch_colorchanger.conf")),
            (&["run"], &[], (Subcommand::Run, "twitch_colorchanger.conf")),
            (
                &["check"],
                &[],
                (Subcommand::Check, "twitch_colorchanger.conf"),
            ),
            (
                &["--help"],
                &[],
                (Subcommand::Help, "twitch_colorchanger.conf"),
            ),
            (
                &["-V"],
                &[],
                (Subcommand::Version, "twitch_colorchanger.conf"),
            ),
            (
                &[],
                &[("TWITCH_CONF_FILE", "/config/c.json")],
                (Subcommand::Run, "/config/c.json"),
            ),
            (
                &["check", "--config", "a.json"],
                &[("TWITCH_CONF_FILE", "/config/c.json")],
                (Subcommand::Check, "a.json"),
            ),
            (
                &["--config=b.json", "run"],
                &[],
                (Subcommand::Run, "b.json"),
            ),
            (
                &["-c", "c.json"],
                &[("TWITCH_CONF_FILE", " ")],
                (Subcommand::Run, "c.json"),
            ),
        ];
        for (argv, vars, (command, path)) in cases {
            let invocation = parse(&args(argv), &env(vars)).unwrap();
            assert_eq!(invocation.command, command, "{argv:?}");
            assert_eq!(
                invocation.settings.config_path,
                PathBuf::from(path),
                "{argv:?}"
            );
        }
    }

    #[test]
    fn usage_errors() {
        let cases: Vec<Case<&str>> = vec![
            (&["--config"], &[], "needs a file path"),
            (&["frobnicate"], &[], "unknown argument"),
            (&["run", "check"], &[], "unexpected argument"),
            (
                &["check", "--user", "alice"],
                &[],
                "--user goes with the auth command",
            ),
            (&["auth", "--user"], &[], "needs a Twitch user name"),
            (&["auth", "--client-id"], &[], "needs a value"),
            (&["auth", "--client-id", " "], &[], "needs a value"),
            (
                &["auth", "--client-secret", "s"],
                &[],
                "--client-secret goes with --client-id",
            ),
            (
                &["run", "--client-id", "x"],
                &[],
                "--client-id goes with the auth",
            ),
            (&[], &[("LOG_LEVEL", "loud")], "LOG_LEVEL"),
            (
                &[],
                &[("TWITCH_KEEPALIVE_SECS", "0")],
                "TWITCH_KEEPALIVE_SECS",
            ),
            (&[], &[("TWITCH_IRC_URL", "http://x")], "TWITCH_IRC_URL"),
            (
                &[],
                &[("TWITCH_EVENTSUB_URL", "https://x")],
                "TWITCH_EVENTSUB_URL",
            ),
            (&[], &[("TWITCH_API_URL", "ftp://x")], "TWITCH_API_URL"),
        ];
        for (argv, vars, expected) in cases {
            let error = parse(&args(argv), &env(vars)).unwrap_err();
            assert!(error.0.contains(expected), "{argv:?}: {error}");
        }
    }

    #[test]
    fn status_paths() {
        let cases: Vec<Case<&str>> = vec![
            (&[], &[], "twitch_colorchanger.status.json"),
            (&["-c", "/config/c.conf"], &[], "/config/c.status.json"),
            (&[], &[("TWITCH_STATUS_FILE", "/run/s.json")], "/run/s.json"),
            (
                &["health", "--status-file", "/tmp/x.json"],
                &[("TWITCH_STATUS_FILE", "/run/s.json")],
                "/tmp/x.json",
            ),
        ];
        for (argv, vars, expected) in cases {
            let settings = parse(&args(argv), &env(vars)).unwrap().settings;
            assert_eq!(settings.status_path(), PathBuf::from(expected), "{argv:?}");
        }
    }

    #[test]
    fn auth_for_a_new_account() {
        let invocation = parse(
            &args(&[
                "auth",
                "--client-id",
                " cid ",
                "--client-secret",
                "cs",
                "-c",
                "new.conf",
            ]),
            &env(&[]),
        )
        .unwrap();
        assert_eq!(
            invocation.command,
            Subcommand::Auth {
                user: None,
                client_id: Some("cid".into()),
                client_secret: Some(Secret::new("cs")),
            }
        );
        assert_eq!(invocation.settings.config_path, PathBuf::from("new.conf"));
        assert!(
            !format!("{invocation:?}").contains("\"cs\""),
            "the secret stays out of Debug"
        );
        let invocation = parse(&args(&["auth", "--user", "bob"]), &env(&[])).unwrap();
        assert_eq!(
            invocation.command,
            Subcommand::Auth {
                user: Some("bob".into()),
                client_id: None,
                client_secret: None,
            }
        );
    }

    #[test]
    fn listen_addresses() {
        let cases: Vec<Case<Result<Option<&str>, &str>>> = vec![
            (&[], &[], Ok(None)),
            (&["--listen", "8080"], &[], Ok(Some("127.0.0.1:8080"))),
            (&["--listen=0.0.0.0:9000"], &[], Ok(Some("0.0.0.0:9000"))),
            (
                &[],
                &[("TWITCH_HTTP_LISTEN", " 8081 ")],
                Ok(Some("127.0.0.1:8081")),
            ),
            (&[], &[("TWITCH_HTTP_LISTEN", "")], Ok(None)),
            (
                &["--listen", "[::1]:8080"],
                &[("TWITCH_HTTP_LISTEN", "9")],
                Ok(Some("[::1]:8080")),
            ),
            (&["--listen", "localhost:7"], &[], Ok(Some("127.0.0.1:7"))),
            (&["--listen", "0"], &[], Ok(Some("127.0.0.1:0"))),
            (&["--listen"], &[], Err("needs an address")),
            (&["--listen", "nas.local:80"], &[], Err("not a port")),
            (&[], &[("TWITCH_HTTP_LISTEN", "65536")], Err("not a port")),
        ];
        for (argv, vars, expected) in cases {
            let got = parse(&args(argv), &env(vars))
                .map(|invocation| invocation.settings.listen.map(|a| a.to_string()))
                .map_err(|error| error.0);
            match (got, expected) {
                (Ok(got), Ok(expected)) => {
                    assert_eq!(got.as_deref(), expected, "{argv:?} {vars:?}")
                }
                (Err(got), Err(expected)) => assert!(got.contains(expected), "{got}"),
                (got, expected) => panic!("{argv:?} {vars:?}: {got:?}, wanted {expected:?}"),
            }
        }
    }

    #[test]
    fn log_levels() {
        let cases = [
            (vec![], log::LevelFilter::Info),
            (vec![("DEBUG", "true")], log::LevelFilter::Debug),
            (vec![("DEBUG", "false")], log::LevelFilter::Info),
            (vec![("LOG_LEVEL", "WARN")], log::LevelFilter::Warn),
            (
                vec![("LOG_LEVEL", "error"), ("DEBUG", "true")],
                log::LevelFilter::Error,
            ),
        ];
        for (vars, expected) in cases {
            assert_eq!(
                parse(&[], &env(&vars)).unwrap().settings.log_level,
                expected,
                "{vars:?}"
            );
        }
    }

    #[test]
    fn endpoints_come_from_the_environment() {
        let settings = parse(
            &[],
            &env(&[
                ("TWITCH_IRC_URL", "ws://127.0.0.1:1"),
                ("TWITCH_API_URL", "http://127.0.0.1:2/helix/"),
                ("TWITCH_KEEPALIVE_SECS", "5"),
            ]),
        )
        .unwrap()
        .settings;
        assert_eq!(settings.endpoints.irc_url, "ws://127.0.0.1:1");
        assert_eq!(settings.endpoints.api_url, "http://127.0.0.1:2/helix");
        assert_eq!(
            settings.endpoints.auth_url,
            crate::daemon::settings::DEFAULT_AUTH_URL
        );
        assert_eq!(settings.keepalive, Duration::from_secs(5));
    }

    /// `resolve` over command lines and environments with bytes that are not UTF-8: paths
    /// pass as they are, other values name the option or variable, foreign variables and
    /// `--help`/`--version` never fail.
    #[cfg(unix)]
    #[test]
    fn resolve_bytes_that_are_not_utf8() {
        use std::os::unix::ffi::OsStringExt;
        let os = |bytes: &[u8]| OsString::from_vec(bytes.to_vec());
        type Expected = Result<(Subcommand, OsString), &'static str>;
        type Vars<'a> = Vec<(&'a [u8], &'a [u8])>;
        // Arguments, variables, and the command and config path they give (or the error).
        let cases: Vec<(Vec<&[u8]>, Vars, Expected)> = vec![
            (
                vec![b"check", b"--config", b"/c/\xff.json"],
                vec![],
                Ok((Subcommand::Check, os(b"/c/\xff.json"))),
            ),
            (
                vec![b"--config=\xfe"],
                vec![],
                Ok((Subcommand::Run, os(b"\xfe"))),
            ),
            (
                vec![],
                vec![(b"TWITCH_CONF_FILE", b"/c/\xff")],
                Ok((Subcommand::Run, os(b"/c/\xff"))),
            ),
            (
                vec![b"check"],
                vec![(b"LANG", b"\xff"), (b"\xff", b"\xff")],
                Ok((Subcommand::Check, os(b"twitch_colorchanger.conf"))),
            ),
            (
                vec![b"--version"],
                vec![(b"TWITCH_ACCESS_TOKEN_1", b"\xff"), (b"LOG_LEVEL", b"loud")],
                Ok((Subcommand::Version, os(b"twitch_colorchanger.conf"))),
            ),
            (
                vec![b"check"],
                vec![(b"TWITCH_ACCESS_TOKEN_1", b"\xff")],
                Err("environment variable TWITCH_ACCESS_TOKEN_1 is not valid UTF-8"),
            ),
            (
                vec![],
                vec![(b"DEBUG", b"\xff")],
                Err("environment variable DEBUG is not valid UTF-8"),
            ),
            (
                vec![b"--listen", b"80\xff"],
                vec![],
                Err("--listen \"80\\xFF\" is not valid UTF-8"),
            ),
            (
                vec![b"auth", b"--user=\xff"],
                vec![],
                Err("--user \"\\xFF\" is not valid UTF-8"),
            ),
            (
                vec![b"auth", b"--client-id", b"\xff"],
                vec![],
                Err("--client-id \"\\xFF\" is not valid UTF-8"),
            ),
        ];
        for (argv, vars, expected) in cases {
            let raw = parse_raw(argv.iter().map(|arg| os(arg))).unwrap();
            let env =
                Environment::from_vars(vars.iter().map(|(name, value)| (os(name), os(value))));
            let got = resolve(raw, &env)
                .map(|invocation| {
                    (
                        invocation.command,
                        invocation.settings.config_path.into_os_string(),
                    )
                })
                .map_err(|error| error.0);
            match (got, expected) {
                (Ok(got), Ok(expected)) => assert_eq!(got, expected, "{argv:?}"),
                (Err(got), Err(expected)) => assert!(got.starts_with(expected), "{got}"),
                (got, expected) => panic!("{argv:?}: {got:?}, wanted {expected:?}"),
            }
        }
    }

    #[test]
    fn every_option_that_takes_a_value_takes_it_after_an_equals_sign() {
        let invocation = parse(
            &args(&[
                "auth",
                "--config=c.conf",
                "--status-file=s.json",
                "--listen=8080",
                "--user=bob",
                "--client-id=cid",
                "--client-secret=cs",
            ]),
            &env(&[]),
        )
        .unwrap();
        assert_eq!(
            invocation.command,
            Subcommand::Auth {
                user: Some("bob".into()),
                client_id: Some("cid".into()),
                client_secret: Some(Secret::new("cs")),
            }
        );
        let settings = invocation.settings;
        assert_eq!(settings.config_path, PathBuf::from("c.conf"));
        assert_eq!(settings.status_path(), PathBuf::from("s.json"));
        assert_eq!(
            settings.listen.map(|a| a.to_string()).as_deref(),
            Some("127.0.0.1:8080")
        );
    }

    #[test]
    fn help_names_every_variable_a_user_can_be_set_with() {
        use crate::config::Field;
        let fields = [
            Field::Username,
            Field::ClientId,
            Field::ClientSecret,
            Field::AccessToken,
            Field::RefreshToken,
            Field::TokenExpiresAt,
            Field::Channels,
            Field::IsPrimeOrTurbo,
            Field::Enabled,
            Field::ColorMode,
            Field::RainbowStep,
            Field::Palette,
            Field::PaletteOrder,
            Field::ChangeEverySeconds,
            Field::ChatTransport,
        ];
        for field in fields {
            if let Some(prefix) = field.env_prefix() {
                let named = format!("{prefix}_N");
                assert!(
                    USAGE
                        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .any(|word| word == named),
                    "--help does not name {named}"
                );
            }
        }
    }
}
