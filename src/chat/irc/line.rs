//! IRCv3 as Twitch speaks it: parsing received lines into messages and typed events, and
//! formatting the lines the client sends. Pure and sans-IO: no sockets, no clocks, and no
//! input, however malformed, makes any function here panic.
//!
//! Parsing happens in two layers. [`parse`] splits a line into the generic parts of an
//! IRCv3 message (tags, prefix, command, parameters) without copying. [`Event::from_message`]
//! then gives the few commands the daemon acts on a typed shape; every other command is
//! [`Event::Other`], which is not an error.

use std::borrow::Cow;
use std::fmt;

use crate::base::ids::{Login, UserId};

/// The longest line IRC allows, without the closing `\r\n`. [`join_lines`] keeps under it.
pub const MAX_LINE_BYTES: usize = 510;

/// Why a line is not an IRC message at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// The line holds nothing but spaces and line endings.
    Empty,
    /// The line has tags or a prefix but no command after them.
    NoCommand,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Empty => f.write_str("empty line"),
            ParseError::NoCommand => f.write_str("line has no command"),
        }
    }
}

impl std::error::Error for ParseError {}

/// One IRC line split into its parts, borrowing from the line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// The raw tag string after `@`, still escaped; `Some("")` for a bare `@`.
    tags: Option<&'a str>,
    /// The prefix after `:`, such as `nick!user@host` or `tmi.twitch.tv`.
    pub prefix: Option<&'a str>,
    /// The command as sent, such as `PRIVMSG` or `001`.
    pub command: &'a str,
    /// The middle parameters followed by the trailing one (without its `:`), if any.
    pub params: Vec<&'a str>,
}

/// Splits one line (with or without its `\r\n`) into an IRCv3 message.
///
/// Leniency is deliberate: leading spaces and runs of spaces between parts are skipped, an
/// empty tag section (`@ CMD`) is accepted, and a line ending in ` :` has an empty trailing
/// parameter.
pub fn parse(line: &str) -> Result<Message<'_>, ParseError> {
    let line = line.trim_end_matches(['\r', '\n']);
    let mut rest = line.trim_start_matches(' ');
    if rest.is_empty() {
        return Err(ParseError::Empty);
    }

    let mut tags = None;
    if let Some(after_at) = rest.strip_prefix('@') {
        let (tag_text, after_tags) = split_word(after_at);
        tags = Some(tag_text);
        rest = after_tags;
    }

    let mut prefix = None;
    if let Some(after_colon) = rest.strip_prefix(':') {
        let (prefix_text, after_prefix) = split_word(after_colon);
        prefix = Some(prefix_text);
        rest = after_prefix;
    }

    let (command, mut rest) = split_word(rest);
    if command.is_empty() {
        return Err(ParseError::NoCommand);
    }

    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches(' ');
        if rest.is_empty() {
            break;
        }
        if let Some(trailing) = rest.strip_prefix(':') {
            params.push(trailing);
            break;
        }
        let (param, after_param) = split_word(rest);
        params.push(param);
        rest = after_param;
    }

    Ok(Message {
        tags,
        prefix,
        command,
        params,
    })
}

/// Splits off the first space-delimited word; the remainder has its leading spaces removed.
/// Splitting only at the ASCII space keeps every slice on a character boundary.
fn split_word(text: &str) -> (&str, &str) {
    match text.split_once(' ') {
        Some((word, rest)) => (word, rest.trim_start_matches(' ')),
        None => (text, ""),
    }
}

impl<'a> Message<'a> {
    /// The raw, still escaped tag section, for logging and diagnostics.
    pub fn raw_tags(&self) -> Option<&'a str> {
        self.tags
    }

    /// The unescaped value of tag `key`: `Some("")` when the tag is present with an empty
    /// value or without `=`, `None` when it is absent. If a key repeats, the first wins.
    pub fn tag(&self, key: &str) -> Option<Cow<'a, str>> {
        let tags = self.tags?;
        tags.split(';').find_map(|pair| {
            let (pair_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            (pair_key == key).then(|| unescape_tag_value(raw_value))
        })
    }

    /// Like [`Message::tag`], but treats an empty value as absent: Twitch sends `color=`
    /// and `user-id=` with nothing in them when there is nothing to say.
    pub fn non_empty_tag(&self, key: &str) -> Option<Cow<'a, str>> {
        self.tag(key).filter(|value| !value.is_empty())
    }

    /// The parameter at `index`, counting the trailing one as the last.
    pub fn param(&self, index: usize) -> Option<&'a str> {
        self.params.get(index).copied()
    }

    /// The nick of a `nick!user@host` prefix (or of `nick@host`, or a bare `nick`).
    ///
    /// A bare prefix containing a `.` is a server name such as `tmi.twitch.tv` and has no
    /// nick, because Twitch logins never contain dots.
    pub fn nick(&self) -> Option<&'a str> {
        let prefix = self.prefix?;
        let nick = match prefix.find(['!', '@']) {
            Some(end) => &prefix[..end],
            None if prefix.contains('.') => return None,
            None => prefix,
        };
        (!nick.is_empty()).then_some(nick)
    }
}

/// Undoes IRCv3 tag value escaping: `\:` → `;`, `\s` → space, `\\` → `\`, `\r` and `\n`
/// → CR and LF. An unknown escape drops the backslash and keeps the character; a lone
/// backslash at the end is dropped. Borrows when there is nothing to undo.
pub fn unescape_tag_value(raw: &str) -> Cow<'_, str> {
    if !raw.contains('\\') {
        return Cow::Borrowed(raw);
    }
    let mut unescaped = String::with_capacity(raw.len());
    let mut characters = raw.chars();
    while let Some(character) = characters.next() {
        if character != '\\' {
            unescaped.push(character);
            continue;
        }
        match characters.next() {
            Some(':') => unescaped.push(';'),
            Some('s') => unescaped.push(' '),
            Some('\\') => unescaped.push('\\'),
            Some('r') => unescaped.push('\r'),
            Some('n') => unescaped.push('\n'),
            Some(other) => unescaped.push(other),
            None => {}
        }
    }
    Cow::Owned(unescaped)
}

/// The IRC lines of one WebSocket text frame. Twitch separates them with `\r\n`; a lone
/// `\n` or `\r` is accepted as well, and empty lines are skipped.
pub fn split_frame(frame: &str) -> impl Iterator<Item = &str> {
    frame.split(['\r', '\n']).filter(|line| !line.is_empty())
}

/// The lines the daemon acts on, in typed form. Anything else is [`Event::Other`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A keepalive to answer with [`pong_for`]`(argument)`.
    Ping { argument: &'a str },
    /// The answer to a `PING` the client sent.
    Pong,
    /// The server is going away: reconnect and rejoin.
    Reconnect,
    /// `001`: the login was accepted.
    Welcome,
    /// Sent once after login: the user's own id and current color.
    GlobalUserState {
        user_id: Option<UserId>,
        /// `None` when the user never set a color (Twitch sends `color=`).
        color: Option<String>,
        display_name: Option<String>,
    },
    /// A chat message in a joined channel.
    Privmsg {
        /// The channel login, without `#`.
        channel: &'a str,
        /// The sender's login from the prefix.
        sender_login: Option<&'a str>,
        /// The sender's id from the `user-id` tag: the only reliable way to know who sent it.
        user_id: Option<UserId>,
        /// The text, with the `\x01ACTION …\x01` wrapping of `/me` removed.
        text: Cow<'a, str>,
        is_action: bool,
    },
    /// A server notice; `channel` is `*` for notices outside any channel.
    Notice {
        channel: &'a str,
        msg_id: Option<String>,
        text: &'a str,
    },
    /// Someone (usually the user itself) joined a channel.
    Join {
        channel: &'a str,
        login: Option<&'a str>,
    },
    /// Every other command: not an error, simply not interesting to the daemon.
    Other,
}

impl<'a> Event<'a> {
    /// Gives a parsed message its typed meaning. Commands are matched case-insensitively;
    /// lines missing the parameters an event needs become [`Event::Other`].
    pub fn from_message(message: &Message<'a>) -> Event<'a> {
        let command = message.command;
        if command.eq_ignore_ascii_case("PING") {
            // Twitch sends `PING :tmi.twitch.tv`. Without parameters the prefix is the best
            // thing to echo; the server only cares that a PONG arrives.
            let argument = message
                .params
                .last()
                .copied()
                .or(message.prefix)
                .unwrap_or("");
            Event::Ping { argument }
        } else if command.eq_ignore_ascii_case("PONG") {
            Event::Pong
        } else if command.eq_ignore_ascii_case("RECONNECT") {
            Event::Reconnect
        } else if command == "001" {
            Event::Welcome
        } else if command.eq_ignore_ascii_case("GLOBALUSERSTATE") {
            Event::GlobalUserState {
                user_id: message
                    .non_empty_tag("user-id")
                    .map(|id| UserId::new(id.into_owned())),
                color: message.non_empty_tag("color").map(Cow::into_owned),
                display_name: message.non_empty_tag("display-name").map(Cow::into_owned),
            }
        } else if command.eq_ignore_ascii_case("PRIVMSG") {
            let (Some(channel), Some(raw_text)) = (message.param(0), message.param(1)) else {
                return Event::Other;
            };
            let (text, is_action) = match unwrap_action(raw_text) {
                Some(action_text) => (action_text, true),
                None => (raw_text, false),
            };
            Event::Privmsg {
                channel: strip_channel_hash(channel),
                sender_login: message.nick(),
                user_id: message
                    .non_empty_tag("user-id")
                    .map(|id| UserId::new(id.into_owned())),
                text: Cow::Borrowed(text),
                is_action,
            }
        } else if command.eq_ignore_ascii_case("NOTICE") {
            let Some(channel) = message.param(0) else {
                return Event::Other;
            };
            Event::Notice {
                channel: strip_channel_hash(channel),
                msg_id: message.non_empty_tag("msg-id").map(Cow::into_owned),
                text: message.param(1).unwrap_or(""),
            }
        } else if command.eq_ignore_ascii_case("JOIN") {
            let Some(channel) = message.param(0) else {
                return Event::Other;
            };
            Event::Join {
                channel: strip_channel_hash(channel),
                login: message.nick(),
            }
        } else {
            Event::Other
        }
    }
}

fn strip_channel_hash(channel: &str) -> &str {
    channel.strip_prefix('#').unwrap_or(channel)
}

/// The text inside `\x01ACTION text\x01`, or `None` for an ordinary message. Some clients
/// leave out the closing `\x01`, so it is optional.
fn unwrap_action(text: &str) -> Option<&str> {
    let inner = text.strip_prefix("\u{1}ACTION")?;
    let inner = inner.strip_suffix('\u{1}').unwrap_or(inner);
    if inner.is_empty() {
        return Some(inner);
    }
    inner.strip_prefix(' ')
}

/// Whether a `NOTICE` text says the login was refused. "Login authentication failed" means
/// the token is invalid or expired; "Improperly formatted auth" means it is malformed;
/// "Login unsuccessful" is what Twitch answers a token without `chat:read`.
pub fn is_login_failure(text: &str) -> bool {
    [
        "Login authentication failed",
        "Improperly formatted auth",
        "Login unsuccessful",
    ]
    .iter()
    .any(|refusal| text.contains(refusal))
}

/// The answer to a server `PING`, echoing its argument: `PING :x` → `PONG :x`.
pub fn pong_for(argument: &str) -> String {
    format!("PONG :{argument}")
}

/// The login line carrying the access token. It holds the secret: send it, never log it
/// (log [`line_for_log`] of it instead). An `oauth:` prefix already on the token is kept
/// single.
pub fn pass_line(token: &str) -> String {
    let token = token.strip_prefix("oauth:").unwrap_or(token);
    format!("PASS oauth:{token}")
}

/// `NICK <login>`.
pub fn nick_line(login: &Login) -> String {
    format!("NICK {login}")
}

/// Asks for tags (user ids, colors) and Twitch's own commands (GLOBALUSERSTATE, NOTICE,
/// RECONNECT). Membership is not requested: it only adds JOIN/PART noise.
pub fn cap_line() -> String {
    "CAP REQ :twitch.tv/tags twitch.tv/commands".to_string()
}

/// `JOIN #a,#b,…` lines with at most `max_per_line` channels each (at least one) and never
/// longer than [`MAX_LINE_BYTES`]. Empty logins are skipped. Pacing the lines to respect
/// Twitch's join rate limit is the caller's job.
pub fn join_lines(channels: &[Login], max_per_line: usize) -> Vec<String> {
    let max_per_line = max_per_line.max(1);
    let mut lines = Vec::new();
    let mut current = String::new();
    let mut channels_in_current = 0;
    for channel in channels
        .iter()
        .filter(|channel| !channel.as_str().is_empty())
    {
        // `,#` or `JOIN #` before the name.
        let separator_bytes = if channels_in_current == 0 { 6 } else { 2 };
        let would_overflow =
            current.len() + separator_bytes + channel.as_str().len() > MAX_LINE_BYTES;
        if channels_in_current > 0 && (channels_in_current == max_per_line || would_overflow) {
            lines.push(std::mem::take(&mut current));
            channels_in_current = 0;
        }
        if channels_in_current == 0 {
            current.push_str("JOIN #");
        } else {
            current.push_str(",#");
        }
        current.push_str(channel.as_str());
        channels_in_current += 1;
    }
    if channels_in_current > 0 {
        lines.push(current);
    }
    lines
}

/// A line as it may appear in logs: a `PASS` line, which carries the token, becomes
/// `PASS [redacted]`; every other line is returned as it is.
pub fn line_for_log(line: &str) -> &str {
    let command = line.trim_start_matches(' ').split(' ').next().unwrap_or("");
    if command.eq_ignore_ascii_case("PASS") {
        "PASS [redacted]"
    } else {
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    const REAL_LINES: &str = include_str!("../../../tests/data/twitch-real-lines.txt");

    /// The real captured lines without the comment lines.
    fn real_lines() -> impl Iterator<Item = &'static str> {
        REAL_LINES
            .lines()
            .filter(|line| !line.starts_with("# ") && !line.is_empty())
    }

    /// The first real line containing `needle`, so tests name lines by content.
    fn real_line(needle: &str) -> &'static str {
        real_lines()
            .find(|line| line.contains(needle))
            .unwrap_or_else(|| panic!("no real line contains {needle:?}"))
    }

    fn event_of(line: &str) -> Event<'_> {
        Event::from_message(&parse(line).expect("line parses"))
    }

    #[test]
    fn unescape_table() {
        let cases = [
            ("", ""),
            ("plain", "plain"),
            (r"a\:b", "a;b"),
            (r"a\sb", "a b"),
            (r"a\\b", r"a\b"),
            (r"a\rb", "a\rb"),
            (r"a\nb", "a\nb"),
            (r"\:\s\\\r\n", "; \\\r\n"),
            (r"a\xb", "axb"),
            (r"a\é", "aé"),
            (r"trailing\", "trailing"),
            (r"\", ""),
            (r"\\\", r"\"),
            (r"CarvedTaleare\s", "CarvedTaleare "),
            (r"\s\s", "  "),
        ];
        for (raw, expected) in cases {
            assert_eq!(unescape_tag_value(raw), expected, "raw {raw:?}");
        }
        assert!(matches!(unescape_tag_value("no escapes"), Cow::Borrowed(_)));
    }

    #[test]
    fn parse_table() {
        struct Case {
            line: &'static str,
            tags: Option<&'static str>,
            prefix: Option<&'static str>,
            command: &'static str,
            params: &'static [&'static str],
        }
        let cases = [
            Case {
                line: "PING",
                tags: None,
                prefix: None,
                command: "PING",
                params: &[],
            },
            Case {
                line: "PING :tmi.twitch.tv\r\n",
                tags: None,
                prefix: None,
                command: "PING",
                params: &["tmi.twitch.tv"],
            },
            Case {
                line: "   PING   a   b  :c  d ",
                tags: None,
                prefix: None,
                command: "PING",
                params: &["a", "b", "c  d "],
            },
            Case {
                line: "@a=1;b=x\\sy :nick!user@host PRIVMSG #chan :hello :world",
                tags: Some("a=1;b=x\\sy"),
                prefix: Some("nick!user@host"),
                command: "PRIVMSG",
                params: &["#chan", "hello :world"],
            },
            Case {
                line: ":tmi.twitch.tv 001 me :Welcome, GLHF!",
                tags: None,
                prefix: Some("tmi.twitch.tv"),
                command: "001",
                params: &["me", "Welcome, GLHF!"],
            },
            Case {
                line: ":prefix JOIN #chan",
                tags: None,
                prefix: Some("prefix"),
                command: "JOIN",
                params: &["#chan"],
            },
            Case {
                line: "CMD a b",
                tags: None,
                prefix: None,
                command: "CMD",
                params: &["a", "b"],
            },
            Case {
                line: "CMD a :",
                tags: None,
                prefix: None,
                command: "CMD",
                params: &["a", ""],
            },
            Case {
                line: "CMD ::x",
                tags: None,
                prefix: None,
                command: "CMD",
                params: &[":x"],
            },
            Case {
                line: "@ CMD",
                tags: Some(""),
                prefix: None,
                command: "CMD",
                params: &[],
            },
            Case {
                line: "@a=b  :p   CMD",
                tags: Some("a=b"),
                prefix: Some("p"),
                command: "CMD",
                params: &[],
            },
            Case {
                line: ": CMD x",
                tags: None,
                prefix: Some(""),
                command: "CMD",
                params: &["x"],
            },
        ];
        for case in cases {
            let message =
                parse(case.line).unwrap_or_else(|error| panic!("{:?}: {error}", case.line));
            assert_eq!(message.raw_tags(), case.tags, "line {:?}", case.line);
            assert_eq!(message.prefix, case.prefix, "line {:?}", case.line);
            assert_eq!(message.command, case.command, "line {:?}", case.line);
            assert_eq!(message.params, case.params, "line {:?}", case.line);
        }
    }

    #[test]
    fn parse_errors_table() {
        let cases = [
            ("", ParseError::Empty),
            ("   ", ParseError::Empty),
            ("\r\n", ParseError::Empty),
            (":", ParseError::NoCommand),
            ("@", ParseError::NoCommand),
            ("@a=b", ParseError::NoCommand),
            ("@a=b :prefix", ParseError::NoCommand),
            (":prefix   ", ParseError::NoCommand),
            ("@ :", ParseError::NoCommand),
        ];
        for (line, expected) in cases {
            assert_eq!(parse(line), Err(expected), "line {line:?}");
        }
        assert_eq!(ParseError::Empty.to_string(), "empty line");
        assert_eq!(ParseError::NoCommand.to_string(), "line has no command");
    }

    #[test]
    fn tag_lookup_table() {
        let message = parse(r"@a=1;empty=;bare;esc=x\sy\:z;a=2;d=a=b :p CMD").unwrap();
        let cases: [(&str, Option<&str>); 7] = [
            ("a", Some("1")),
            ("empty", Some("")),
            ("bare", Some("")),
            ("esc", Some("x y;z")),
            ("d", Some("a=b")),
            ("missing", None),
            ("", None),
        ];
        for (key, expected) in cases {
            assert_eq!(message.tag(key).as_deref(), expected, "key {key:?}");
        }
        assert_eq!(message.non_empty_tag("empty"), None);
        assert_eq!(parse("CMD").unwrap().tag("a"), None);
        assert_eq!(parse("@ CMD").unwrap().tag("a"), None);
    }

    #[test]
    fn nick_table() {
        let cases = [
            (":nick!user@host CMD", Some("nick")),
            (":nick@host CMD", Some("nick")),
            (":nick CMD", Some("nick")),
            (":tmi.twitch.tv CMD", None),
            (":!user@host CMD", None),
            ("CMD", None),
        ];
        for (line, expected) in cases {
            assert_eq!(parse(line).unwrap().nick(), expected, "line {line:?}");
        }
    }

    #[test]
    fn split_frame_table() {
        let cases: [(&str, &[&str]); 7] = [
            ("", &[]),
            ("\r\n", &[]),
            ("PING :a", &["PING :a"]),
            ("PING :a\r\n", &["PING :a"]),
            ("A\r\nB\r\nC\r\n", &["A", "B", "C"]),
            ("A\nB\n\n\r\nC", &["A", "B", "C"]),
            ("A\r\n\r\nB", &["A", "B"]),
        ];
        for (frame, expected) in cases {
            let lines: Vec<&str> = split_frame(frame).collect();
            assert_eq!(lines, expected, "frame {frame:?}");
        }
    }

    #[test]
    fn every_real_line_parses() {
        let mut count = 0;
        for line in real_lines() {
            let message = parse(line).unwrap_or_else(|error| panic!("{line:?}: {error}"));
            let _ = Event::from_message(&message);
            count += 1;
        }
        assert!(count >= 25, "only {count} real lines");
    }

    #[test]
    fn real_privmsg_with_escaped_display_name() {
        let line = real_line(r"display-name=CarvedTaleare\s;");
        let message = parse(line).unwrap();
        assert_eq!(
            message.tag("display-name").as_deref(),
            Some("CarvedTaleare ")
        );
        assert_eq!(
            Event::from_message(&message),
            Event::Privmsg {
                channel: "forsen",
                sender_login: Some("carvedtaleare"),
                user_id: Some(UserId::new("467684514")),
                text: Cow::Borrowed("NaM"),
                is_action: false,
            }
        );
    }

    #[test]
    fn real_privmsg_action() {
        assert_eq!(
            event_of(real_line("PRIVMSG #pajlada :\u{1}ACTION -tags")),
            Event::Privmsg {
                channel: "pajlada",
                sender_login: Some("randers"),
                user_id: Some(UserId::new("40286300")),
                text: Cow::Borrowed("-tags"),
                is_action: true,
            }
        );
    }

    #[test]
    fn real_privmsg_korean_display_name() {
        let line = real_line("testaccount_420");
        let message = parse(line).unwrap();
        assert_eq!(
            message.tag("display-name").as_deref(),
            Some("테스트계정420")
        );
        assert_eq!(
            Event::from_message(&message),
            Event::Privmsg {
                channel: "pajlada",
                sender_login: Some("testaccount_420"),
                user_id: Some(UserId::new("117166826")),
                text: Cow::Borrowed("@asd"),
                is_action: false,
            }
        );
    }

    #[test]
    fn real_privmsg_cyrillic() {
        assert_eq!(
            event_of(real_line("PRIVMSG #mocbka34")),
            Event::Privmsg {
                channel: "mocbka34",
                sender_login: Some("some_1_happy"),
                user_id: Some(UserId::new("473035780")),
                text: Cow::Borrowed("Я не такой красивый. Не урод, но до тебя далеко LUL"),
                is_action: false,
            }
        );
    }

    #[test]
    fn real_globaluserstate() {
        assert_eq!(
            event_of(real_line(
                "color=#19E6E6;display-name=randers;emote-sets=0,42"
            )),
            Event::GlobalUserState {
                user_id: Some(UserId::new("40286300")),
                color: Some("#19E6E6".to_string()),
                display_name: Some("randers".to_string()),
            }
        );
        assert_eq!(
            event_of(real_line("badges=premium/1;color=;")),
            Event::GlobalUserState {
                user_id: Some(UserId::new("40286300")),
                color: None,
                display_name: Some("randers".to_string()),
            }
        );
    }

    #[test]
    fn real_notice_ping_join_and_others() {
        assert_eq!(
            event_of(real_line("msg-id=msg_banned")),
            Event::Notice {
                channel: "forsen",
                msg_id: Some("msg_banned".to_string()),
                text: "You are permanently banned from talking in forsen.",
            }
        );
        assert_eq!(
            event_of(real_line(":tmi.twitch.tv PING test :abc def")),
            Event::Ping {
                argument: "abc def"
            }
        );
        assert_eq!(
            event_of(":tmi.twitch.tv PING"),
            Event::Ping {
                argument: "tmi.twitch.tv"
            }
        );
        assert_eq!(event_of(real_line("PONG :tmi.twitch.tv")), Event::Pong);
        assert_eq!(
            event_of(real_line(" JOIN #pajlada")),
            Event::Join {
                channel: "pajlada",
                login: Some("randers811"),
            }
        );
        for needle in [
            " WHISPER ",
            " USERNOTICE ",
            " CLEARCHAT ",
            " CLEARMSG ",
            " ROOMSTATE ",
            " USERSTATE ",
        ] {
            let line = real_line(needle);
            assert_eq!(event_of(line), Event::Other, "line {line:?}");
        }
    }

    #[test]
    fn synthetic_events_table() {
        let cases = [
            (
                "PING :tmi.twitch.tv",
                Event::Ping {
                    argument: "tmi.twitch.tv",
                },
            ),
            ("PING", Event::Ping { argument: "" }),
            (":tmi.twitch.tv RECONNECT", Event::Reconnect),
            (":tmi.twitch.tv 001 me :Welcome, GLHF!", Event::Welcome),
            (
                ":tmi.twitch.tv NOTICE * :Login authentication failed",
                Event::Notice {
                    channel: "*",
                    msg_id: None,
                    text: "Login authentication failed",
                },
            ),
            (
                "@user-id= :a!a@a PRIVMSG #c :\u{1}ACTION\u{1}",
                Event::Privmsg {
                    channel: "c",
                    sender_login: Some("a"),
                    user_id: None,
                    text: Cow::Borrowed(""),
                    is_action: true,
                },
            ),
            (
                ":a!a@a PRIVMSG #c :\u{1}ACTION waves",
                Event::Privmsg {
                    channel: "c",
                    sender_login: Some("a"),
                    user_id: None,
                    text: Cow::Borrowed("waves"),
                    is_action: true,
                },
            ),
            (
                ":a!a@a PRIVMSG #c :\u{1}ACTIONS are words",
                Event::Privmsg {
                    channel: "c",
                    sender_login: Some("a"),
                    user_id: None,
                    text: Cow::Borrowed("\u{1}ACTIONS are words"),
                    is_action: false,
                },
            ),
            (":a!a@a PRIVMSG #c", Event::Other),
            (":a!a@a PRIVMSG", Event::Other),
            (":tmi.twitch.tv NOTICE", Event::Other),
            (":a!a@a JOIN", Event::Other),
            (":tmi.twitch.tv 353 me = #c :a b", Event::Other),
            ("@a=b UNKNOWN", Event::Other),
        ];
        for (line, expected) in cases {
            assert_eq!(event_of(line), expected, "line {line:?}");
        }
    }

    #[test]
    fn no_real_line_is_a_privmsg_from_an_absent_user_id() {
        let absent = UserId::new("999999999");
        assert!(!REAL_LINES.contains(absent.as_str()));
        for line in real_lines() {
            if let Event::Privmsg { user_id, .. } = event_of(line) {
                assert_ne!(user_id.as_ref(), Some(&absent), "line {line:?}");
            }
        }
    }

    #[test]
    fn login_failure_texts() {
        let cases = [
            ("Login authentication failed", true),
            ("Improperly formatted auth", true),
            ("Login unsuccessful", true),
            ("You are permanently banned from talking in forsen.", false),
            ("", false),
        ];
        for (text, expected) in cases {
            assert_eq!(is_login_failure(text), expected, "text {text:?}");
        }
    }

    #[test]
    fn outgoing_lines() {
        assert_eq!(pong_for("tmi.twitch.tv"), "PONG :tmi.twitch.tv");
        assert_eq!(pong_for("abc def"), "PONG :abc def");
        assert_eq!(pass_line("abc123"), "PASS oauth:abc123");
        assert_eq!(pass_line("oauth:abc123"), "PASS oauth:abc123");
        assert_eq!(nick_line(&Login::new("Alice")), "NICK alice");
        assert_eq!(cap_line(), "CAP REQ :twitch.tv/tags twitch.tv/commands");
    }

    #[test]
    fn join_lines_table() {
        let logins = |names: &[&str]| {
            names
                .iter()
                .map(|name| Login::new(name))
                .collect::<Vec<_>>()
        };
        let cases: [(&[&str], usize, &[&str]); 6] = [
            (&[], 20, &[]),
            (&["a"], 20, &["JOIN #a"]),
            (&["a", "b", "c"], 20, &["JOIN #a,#b,#c"]),
            (&["a", "b", "c"], 2, &["JOIN #a,#b", "JOIN #c"]),
            (&["a", "b"], 0, &["JOIN #a", "JOIN #b"]),
            (&["a", "", "b"], 20, &["JOIN #a,#b"]),
        ];
        for (names, max_per_line, expected) in cases {
            assert_eq!(
                join_lines(&logins(names), max_per_line),
                expected,
                "names {names:?}"
            );
        }
    }

    #[test]
    fn join_lines_stay_under_the_irc_line_limit() {
        let channels: Vec<Login> = (0..200)
            .map(|index| Login::new(&format!("channel_name_number_{index:04}")))
            .collect();
        let lines = join_lines(&channels, 1000);
        assert!(lines.len() > 1);
        let mut joined = Vec::new();
        for line in &lines {
            assert!(line.len() <= MAX_LINE_BYTES, "{} bytes", line.len());
            let list = line.strip_prefix("JOIN ").unwrap();
            joined.extend(list.split(',').map(Login::new));
        }
        assert_eq!(joined, channels);
    }

    #[test]
    fn pass_lines_are_redacted_for_logs() {
        let cases = [
            ("PASS oauth:abc", "PASS [redacted]"),
            ("pass oauth:abc", "PASS [redacted]"),
            ("PASS", "PASS [redacted]"),
            ("PASSWORD x", "PASSWORD x"),
            ("NICK alice", "NICK alice"),
            ("PAS", "PAS"),
            ("PAé", "PAé"),
            ("", ""),
        ];
        for (line, expected) in cases {
            assert_eq!(line_for_log(line), expected, "line {line:?}");
        }
    }

    /// Builds arbitrary lines from fragments that matter to the parser, raw bytes and
    /// truncated real lines, so parsing and typing are exercised far off the happy path.
    fn arbitrary_line(rng: &mut StdRng, real: &[&str]) -> String {
        const FRAGMENTS: [&str; 32] = [
            "@",
            ":",
            ";",
            "=",
            "\\",
            " ",
            "  ",
            "\u{1}",
            "\u{1}ACTION ",
            "!",
            "#",
            ",",
            "\r",
            "\n",
            "é",
            "한",
            "😀",
            "я",
            "PRIVMSG",
            "NOTICE",
            "PING",
            "JOIN",
            "001",
            "GLOBALUSERSTATE",
            "user-id=",
            "color=",
            "display-name=",
            "msg-id=",
            "#chan",
            "nick!user@host",
            "\\s",
            "*",
        ];
        match rng.random_range(0..3) {
            0 => {
                let length = rng.random_range(0..24);
                (0..length)
                    .map(|_| FRAGMENTS[rng.random_range(0..FRAGMENTS.len())])
                    .collect()
            }
            1 => {
                let length = rng.random_range(0..64);
                let bytes: Vec<u8> = (0..length).map(|_| rng.random()).collect();
                String::from_utf8_lossy(&bytes).into_owned()
            }
            _ => {
                let line = real[rng.random_range(0..real.len())];
                let cut = rng.random_range(0..=line.len());
                String::from_utf8_lossy(&line.as_bytes()[..cut]).into_owned()
            }
        }
    }

    #[test]
    fn arbitrary_input_never_panics() {
        let real: Vec<&str> = real_lines().collect();
        let mut rng = StdRng::seed_from_u64(0x7477_6974_6368);
        for _ in 0..20_000 {
            let frame = arbitrary_line(&mut rng, &real);
            let _ = unescape_tag_value(&frame);
            let _ = line_for_log(&frame);
            let _ = is_login_failure(&frame);
            for line in split_frame(&frame).chain([frame.as_str()]) {
                if let Ok(message) = parse(line) {
                    let _ = Event::from_message(&message);
                    let _ = message.nick();
                    for key in ["user-id", "color", "display-name", "", "a"] {
                        let _ = message.tag(key);
                    }
                }
            }
        }
    }
}
