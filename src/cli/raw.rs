//! The command line as it was typed: the command word and each option's value, kept as OS
//! strings (ripgrep's "low-level arguments"). Read with `lexopt`, so `--opt value` and
//! `--opt=value` work for every option that takes a value and no byte sequence panics.
//! What the values mean, with the environment, is `cli::args::resolve`'s job. Pure: the
//! caller passes the arguments in.

use std::ffi::OsString;

use lexopt::Arg;

/// A command line or environment the binary cannot work with (exit code 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// The word that names what to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandWord {
    Run,
    Check,
    Auth,
    Health,
    /// `-h`, `--help` or `help`: reading stops there.
    Help,
    /// `-V` or `--version`: reading stops there.
    Version,
}

/// What was typed, option by option, before anything is checked against anything else.
/// Values stay OS strings: paths are used as they are, other values are checked by
/// `resolve`, which names the option when one is not UTF-8.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawArgs {
    pub command: Option<CommandWord>,
    pub config: Option<OsString>,
    pub status_file: Option<OsString>,
    pub listen: Option<OsString>,
    /// `-u`/`--user`'s value.
    pub user: Option<OsString>,
    /// `--client-id`'s value.
    pub client_id: Option<OsString>,
    /// `--client-secret`'s value: a secret, which `resolve` wraps at once.
    pub client_secret: Option<OsString>,
}

/// An option that takes a value, and the example its "needs a value" message gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ValueOption {
    Config,
    StatusFile,
    Listen,
    User,
    ClientId,
    ClientSecret,
}

impl ValueOption {
    /// The option `arg` names, when it is one that takes a value.
    fn of(arg: &Arg<'_>) -> Option<ValueOption> {
        Some(match arg {
            Arg::Short('c') | Arg::Long("config") => ValueOption::Config,
            Arg::Long("status-file") => ValueOption::StatusFile,
            Arg::Long("listen") => ValueOption::Listen,
            Arg::Short('u') | Arg::Long("user") => ValueOption::User,
            Arg::Long("client-id") => ValueOption::ClientId,
            Arg::Long("client-secret") => ValueOption::ClientSecret,
            _ => return None,
        })
    }

    /// What to say when the option came without its value; `typed` is the option as typed.
    fn missing(self, typed: &str) -> UsageError {
        UsageError(match self {
            ValueOption::Config => format!(
                "{typed} needs a file path, e.g. {typed} /config/twitch_colorchanger.conf"
            ),
            ValueOption::StatusFile => {
                format!("{typed} needs a file path, e.g. {typed} /config/status.json")
            }
            ValueOption::Listen => format!("{typed} needs an address, e.g. {typed} 8080"),
            ValueOption::User => {
                format!("{typed} needs a Twitch user name, e.g. {typed} alice")
            }
            ValueOption::ClientId | ValueOption::ClientSecret => format!(
                "{typed} needs a value from your app at https://dev.twitch.tv/console, e.g. {typed} abc123"
            ),
        })
    }

    fn slot(self, raw: &mut RawArgs) -> &mut Option<OsString> {
        match self {
            ValueOption::Config => &mut raw.config,
            ValueOption::StatusFile => &mut raw.status_file,
            ValueOption::Listen => &mut raw.listen,
            ValueOption::User => &mut raw.user,
            ValueOption::ClientId => &mut raw.client_id,
            ValueOption::ClientSecret => &mut raw.client_secret,
        }
    }
}

/// A flag or command word: what it asks for.
fn command_word(arg: &Arg<'_>) -> Option<CommandWord> {
    Some(match arg {
        Arg::Short('h') | Arg::Long("help") => CommandWord::Help,
        Arg::Short('V') | Arg::Long("version") => CommandWord::Version,
        Arg::Value(word) => match word.to_str()? {
            "run" => CommandWord::Run,
            "check" => CommandWord::Check,
            "auth" => CommandWord::Auth,
            "health" => CommandWord::Health,
            "help" => CommandWord::Help,
            _ => return None,
        },
        _ => return None,
    })
}

/// The argument as it was typed, for messages.
fn typed(arg: &Arg<'_>) -> String {
    match arg {
        Arg::Short(short) => format!("-{short}"),
        Arg::Long(long) => format!("--{long}"),
        Arg::Value(value) => value.to_string_lossy().into_owned(),
    }
}

/// Reads the command line (without the program name). Reading stops at `--help` or
/// `--version`, which need nothing else; a second command word, an unknown argument or an
/// option without its value is an error. A later option overrides an earlier one.
pub fn parse_raw(args: impl IntoIterator<Item = OsString>) -> Result<RawArgs, UsageError> {
    let mut parser = lexopt::Parser::from_args(args);
    let mut raw = RawArgs::default();
    while let Some(arg) = parser.next().map_err(lexopt_error)? {
        if let Some(option) = ValueOption::of(&arg) {
            let typed = typed(&arg);
            let value = parser.value().map_err(|_| option.missing(&typed))?;
            *option.slot(&mut raw) = Some(value);
            continue;
        }
        match (command_word(&arg), raw.command) {
            (Some(word @ (CommandWord::Help | CommandWord::Version)), _) => {
                // `--help=x` or `-hx`: a value where none goes.
                let shown = typed(&arg);
                if let Some(value) = parser.optional_value() {
                    return Err(UsageError(format!(
                        "unexpected value {value:?} for {shown}; see --help"
                    )));
                }
                raw.command = Some(word);
                return Ok(raw);
            }
            (Some(word), None) => raw.command = Some(word),
            (Some(_), Some(_)) => {
                return Err(UsageError(format!(
                    "unexpected argument {:?}; see --help",
                    typed(&arg)
                )))
            }
            (None, _) => return Err(unknown(&arg)),
        }
    }
    Ok(raw)
}

/// An argument that is neither an option nor a command word; its bytes are shown escaped.
fn unknown(arg: &Arg<'_>) -> UsageError {
    match arg {
        Arg::Value(value) => UsageError(format!("unknown argument {value:?}; see --help")),
        option => UsageError(format!("unknown argument {:?}; see --help", typed(option))),
    }
}

/// lexopt's own errors: a value given to an option that takes none (`--help=x`).
fn lexopt_error(error: lexopt::Error) -> UsageError {
    UsageError(format!("{error}; see --help"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    fn raw(fields: impl FnOnce(&mut RawArgs)) -> RawArgs {
        let mut raw = RawArgs::default();
        fields(&mut raw);
        raw
    }

    #[test]
    fn what_was_typed() {
        let cases: Vec<(&[&str], RawArgs)> = vec![
            (&[], RawArgs::default()),
            (&["check"], raw(|r| r.command = Some(CommandWord::Check))),
            (
                &["help", "frobnicate"],
                raw(|r| r.command = Some(CommandWord::Help)),
            ),
            (
                &["-c", "a", "--config=b"],
                raw(|r| r.config = Some("b".into())),
            ),
            (
                &["--status-file=s.json", "health"],
                raw(|r| {
                    r.status_file = Some("s.json".into());
                    r.command = Some(CommandWord::Health);
                }),
            ),
            (&["--listen", "--x"], raw(|r| r.listen = Some("--x".into()))),
            (&["--config="], raw(|r| r.config = Some("".into()))),
            (
                &["auth", "-u", "bob", "--client-id=c", "--client-secret", "s"],
                raw(|r| {
                    r.command = Some(CommandWord::Auth);
                    r.user = Some("bob".into());
                    r.client_id = Some("c".into());
                    r.client_secret = Some("s".into());
                }),
            ),
            (
                &["--user=al", "-V", "--nonsense"],
                raw(|r| {
                    r.user = Some("al".into());
                    r.command = Some(CommandWord::Version);
                }),
            ),
        ];
        for (argv, expected) in cases {
            assert_eq!(parse_raw(os(argv)), Ok(expected), "{argv:?}");
        }
    }

    #[test]
    fn what_cannot_be_read() {
        let cases: Vec<(&[&str], &str)> = vec![
            (
                &["frobnicate"],
                "unknown argument \"frobnicate\"; see --help",
            ),
            (
                &["--frobnicate"],
                "unknown argument \"--frobnicate\"; see --help",
            ),
            (
                &["run", "check"],
                "unexpected argument \"check\"; see --help",
            ),
            (&["frobnicate", "--help"], "unknown argument \"frobnicate\""),
            (&["-c"], "-c needs a file path, e.g. -c /config/"),
            (&["--status-file"], "--status-file needs a file path"),
            (
                &["--listen"],
                "--listen needs an address, e.g. --listen 8080",
            ),
            (&["auth", "--user"], "--user needs a Twitch user name"),
            (
                &["auth", "--client-id"],
                "--client-id needs a value from your app",
            ),
            (&["--help=x"], "unexpected value \"x\" for --help"),
            (&["-hV"], "unexpected value \"V\" for -h"),
            (
                &["--config", "c", "--status-file=x=y", "--user=a=b", "run=x"],
                "unknown argument \"run=x\"",
            ),
        ];
        for (argv, expected) in cases {
            let error = parse_raw(os(argv)).unwrap_err();
            assert!(error.0.contains(expected), "{argv:?}: {error}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn bytes_that_are_not_utf8() {
        use std::os::unix::ffi::OsStringExt;
        let bad = || OsString::from_vec(vec![b'a', 0xff]);
        let error = parse_raw(vec![OsString::from("check"), bad()]).unwrap_err();
        assert_eq!(error.0, "unknown argument \"a\\xFF\"; see --help");
        let mut long = b"--".to_vec();
        long.push(0xff);
        assert!(parse_raw(vec![OsString::from_vec(long)]).is_err());
        let raw = parse_raw(vec![OsString::from("--config"), bad()]).unwrap();
        assert_eq!(raw.config, Some(bad()));
    }
}
