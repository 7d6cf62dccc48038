//! The command line and the environment: which command to run and the daemon's
//! `Settings`. Pure: callers pass the arguments and the environment in.

use core::net::{Ipv4Addr, SocketAddr};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::base::secret::Secret;
use crate::daemon::settings::{Endpoints, Settings};

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

/// A command line or environment the binary cannot work with (exit code 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

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
  TWITCH_HTTP_LISTEN               address of the status server when --listen is not given
  TWITCH_USERNAME_N, TWITCH_ACCESS_TOKEN_N, TWITCH_REFRESH_TOKEN_N, TWITCH_CLIENT_ID_N,
  TWITCH_CLIENT_SECRET_N, TWITCH_CHANNELS_N, USE_RANDOM_COLORS_N
                                   users for container setups (N = 1, 2, …)
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

/// Reads the command line (without the program name) and the environment.
pub fn parse(args: &[String], env: &HashMap<String, String>) -> Result<Invocation, UsageError> {
    let mut command: Option<Subcommand> = None;
    let mut config_path: Option<PathBuf> = None;
    let mut user: Option<String> = None;
    let mut status_file: Option<PathBuf> = None;
    let mut listen: Option<String> = None;
    let mut client_id: Option<String> = None;
    let mut client_secret: Option<Secret> = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut set_command = |new: Subcommand| match command {
            Some(_) => Err(UsageError(format!(
                "unexpected argument {arg:?}; see --help"
            ))),
            None => {
                command = Some(new);
                Ok(())
            }
        };
        match arg.as_str() {
            "run" => set_command(Subcommand::Run)?,
            "check" => set_command(Subcommand::Check)?,
            "auth" => set_command(Subcommand::Auth {
                user: None,
                client_id: None,
                client_secret: None,
            })?,
            "--client-id" | "--client-secret" => {
                let value = args.next().filter(|value| !value.trim().is_empty()).ok_or_else(|| {
                    UsageError(format!(
                        "{arg} needs a value from your app at https://dev.twitch.tv/console, e.g. {arg} abc123"
                    ))
                })?;
                if arg == "--client-id" {
                    client_id = Some(value.trim().to_string());
                } else {
                    client_secret = Some(Secret::new(value.trim()));
                }
            }
            "health" => set_command(Subcommand::Health)?,
            "--status-file" => {
                let value = args.next().ok_or_else(|| {
                    UsageError(format!(
                        "{arg} needs a file path, e.g. {arg} /config/status.json"
                    ))
                })?;
                status_file = Some(PathBuf::from(value));
            }
            "--listen" => {
                let value = args.next().ok_or_else(|| {
                    UsageError(format!("{arg} needs an address, e.g. {arg} 8080"))
                })?;
                listen = Some(value.clone());
            }
            other if other.starts_with("--listen=") => {
                listen = Some(other["--listen=".len()..].to_string());
            }
            "-u" | "--user" => {
                let value = args.next().ok_or_else(|| {
                    UsageError(format!("{arg} needs a Twitch user name, e.g. {arg} alice"))
                })?;
                user = Some(value.clone());
            }
            "-h" | "--help" | "help" => return Ok(invocation(Subcommand::Help, env)),
            "-V" | "--version" => return Ok(invocation(Subcommand::Version, env)),
            "-c" | "--config" => {
                let value = args.next().ok_or_else(|| {
                    UsageError(format!(
                        "{arg} needs a file path, e.g. {arg} /config/twitch_colorchanger.conf"
                    ))
                })?;
                config_path = Some(PathBuf::from(value));
            }
            other if other.starts_with("--config=") => {
                config_path = Some(PathBuf::from(&other["--config=".len()..]));
            }
            other => {
                return Err(UsageError(format!(
                    "unknown argument {other:?}; see --help"
                )))
            }
        }
    }
    let command = match (command.unwrap_or(Subcommand::Run), user) {
        (Subcommand::Auth { .. }, user) => {
            if client_secret.is_some() && client_id.is_none() {
                return Err(UsageError(
                    "--client-secret goes with --client-id, e.g. `auth --client-id ID --client-secret SECRET`".to_string(),
                ));
            }
            Subcommand::Auth {
                user,
                client_id,
                client_secret,
            }
        }
        (_, Some(_)) => {
            return Err(UsageError(
                "--user goes with the auth command, e.g. `auth --user alice`".to_string(),
            ))
        }
        (_, None) if client_id.is_some() || client_secret.is_some() => {
            return Err(UsageError(
                "--client-id goes with the auth command, e.g. `auth --client-id ID`".to_string(),
            ))
        }
        (command, None) => command,
    };
    let mut settings = from_env(env);
    if let Some(path) = config_path {
        settings.config_path = path;
    }
    if status_file.is_some() {
        settings.status_file = status_file;
    }
    settings.log_level = log_level(env)?;
    let listen = listen.or_else(|| {
        env.get("TWITCH_HTTP_LISTEN")
            .filter(|value| !value.trim().is_empty())
            .cloned()
    });
    if let Some(value) = listen {
        settings.listen = Some(listen_address(&value)?);
    }
    settings.keepalive = seconds(env, "TWITCH_KEEPALIVE_SECS", settings.keepalive)?;
    settings.http_timeout = seconds(env, "TWITCH_HTTP_TIMEOUT_SECS", settings.http_timeout)?;
    settings.reload_interval = seconds(env, "TWITCH_RELOAD_SECS", settings.reload_interval)?;
    for (name, url) in [
        ("TWITCH_IRC_URL", &settings.endpoints.irc_url),
        ("TWITCH_EVENTSUB_URL", &settings.endpoints.eventsub_url),
        ("TWITCH_API_URL", &settings.endpoints.api_url),
        ("TWITCH_AUTH_URL", &settings.endpoints.auth_url),
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
    Ok(Invocation { command, settings })
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
fn seconds(
    env: &HashMap<String, String>,
    name: &str,
    default: Duration,
) -> Result<Duration, UsageError> {
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

fn invocation(command: Subcommand, env: &HashMap<String, String>) -> Invocation {
    Invocation {
        command,
        settings: from_env(env),
    }
}

/// The settings the environment gives, before the command line and the checked numbers.
fn from_env(env: &HashMap<String, String>) -> Settings {
    let non_empty = |name: &str| env.get(name).filter(|value| !value.trim().is_empty());
    let endpoint = |name: &str, default: &str| {
        non_empty(name)
            .map(|value| value.trim().trim_end_matches('/').to_string())
            .unwrap_or_else(|| default.to_string())
    };
    let defaults = Settings::default();
    Settings {
        config_path: non_empty("TWITCH_CONF_FILE")
            .map(PathBuf::from)
            .unwrap_or(defaults.config_path),
        endpoints: Endpoints {
            irc_url: endpoint("TWITCH_IRC_URL", &defaults.endpoints.irc_url),
            eventsub_url: endpoint("TWITCH_EVENTSUB_URL", &defaults.endpoints.eventsub_url),
            api_url: endpoint("TWITCH_API_URL", &defaults.endpoints.api_url),
            auth_url: endpoint("TWITCH_AUTH_URL", &defaults.endpoints.auth_url),
        },
        status_file: non_empty("TWITCH_STATUS_FILE").map(PathBuf::from),
        ..defaults
    }
}

fn log_level(env: &HashMap<String, String>) -> Result<log::LevelFilter, UsageError> {
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
}
