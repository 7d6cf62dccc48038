//! Robustness test for everything that reads chat input: arbitrary strings, byte soups and
//! mutated real Twitch lines go through `irc::split_frame`, `irc::parse`,
//! `irc::Event::from_message`, `chat::Session::on_line` and `command::parse_chat_command`, which
//! must never panic and must keep a few simple invariants. No I/O: the real lines are
//! compiled in, and only `FUZZ_CASES` and `FUZZ_SEED` are read from the environment.
//!
//! The checks (`check_input` and what it calls) are shared with the cargo-fuzz target in
//! `fuzz/fuzz_targets/chat_line.rs`, which includes this file as a module.
//!
//! A longer run: `FUZZ_CASES=5000000 cargo test --release --test fuzz_lines`. A failure
//! prints the case's seed; `FUZZ_SEED=<seed> FUZZ_CASES=1` replays just that case.

use std::panic::{self, AssertUnwindSafe};

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use twitch_colorchanger::base::ids::{Login, UserId};
use twitch_colorchanger::chat::command::{parse_chat_command, ChatCommand, ChatCommandParse};
use twitch_colorchanger::chat::irc::line::{self as irc, Event, ParseError};
use twitch_colorchanger::chat::irc::session::{Action, Session};

const REAL_LINES: &str = include_str!("data/twitch-real-lines.txt");

/// Enough to reach the odd corners in CI while staying under about two seconds in a debug
/// build on a slow machine.
const DEFAULT_CASES: u64 = 50_000;
const DEFAULT_SEED: u64 = 0x6675_7a7a_6c69_6e65;

/// The login and id of the session's own user: randers, whose messages are among the real
/// lines, so mutated real lines regularly are own messages and exercise that path.
const OWN_LOGIN: &str = "randers";
const OWN_ID: &str = "40286300";
/// An id that appears in no real line.
const STRANGER_ID: &str = "999999999";

/// Pieces that matter to the parsers, glued together at random.
const FRAGMENTS: [&str; 48] = [
    "@",
    ":",
    ";",
    "=",
    "\\",
    "\\s",
    "\\:",
    "\\\\",
    " ",
    "  ",
    "\r",
    "\n",
    "\r\n",
    "\t",
    "\u{0}",
    "\u{1}",
    "\u{1}ACTION ",
    "!",
    "#",
    ",",
    "*",
    "é",
    "한",
    "😀",
    "я",
    "\u{E0000}",
    "\u{200B}",
    "PRIVMSG",
    "privmsg",
    "NOTICE",
    "PING",
    "PONG",
    "JOIN",
    "RECONNECT",
    "001",
    "GLOBALUSERSTATE",
    "PASS",
    "user-id=",
    "user-id=40286300",
    "color=",
    "color=#19E6E6",
    "display-name=",
    "msg-id=",
    "#pajlada",
    "randers!randers@randers.tmi.twitch.tv",
    "tmi.twitch.tv",
    "Login authentication failed",
    "ccc",
];

/// Pieces of chat commands and colors, for texts aimed at `parse_chat_command`.
const COMMAND_FRAGMENTS: [&str; 24] = [
    "ccc",
    "CCC",
    "ccd",
    "CcE",
    "cc",
    "c",
    " ",
    "  ",
    "\t",
    "\u{E0000}",
    "\u{034F}",
    "\u{200B}",
    "#",
    "abc",
    "ABCDEF",
    "12345",
    "g",
    "sea_green",
    "Sea Green",
    "red",
    "é",
    "😀",
    "\u{0}",
    "-",
];

/// The real captured lines, without comments.
fn real_lines() -> Vec<&'static str> {
    REAL_LINES
        .lines()
        .filter(|line| !line.starts_with("# ") && !line.is_empty())
        .collect()
}

fn pick<'a>(rng: &mut Xoshiro256PlusPlus, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

fn fragment_soup(rng: &mut Xoshiro256PlusPlus, fragments: &[&str], max_pieces: usize) -> String {
    let n_pieces = rng.random_range(0..=max_pieces);
    (0..n_pieces).map(|_| pick(rng, fragments)).collect()
}

fn byte_soup(rng: &mut Xoshiro256PlusPlus) -> String {
    let length = rng.random_range(0..128);
    let bytes: Vec<u8> = (0..length).map(|_| rng.random()).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A real line changed by a few random edits at the byte level (so UTF-8 sequences get cut
/// too), turned back into text the way a lossy decoder would.
fn mutated_real_line(rng: &mut Xoshiro256PlusPlus, real: &[&str]) -> String {
    let mut bytes = pick(rng, real).as_bytes().to_vec();
    let n_mutations = rng.random_range(1..=4);
    for _ in 0..n_mutations {
        let position = rng.random_range(0..=bytes.len());
        match rng.random_range(0..8) {
            0 => bytes.truncate(position),
            1 => {
                let end = rng.random_range(position..=bytes.len());
                bytes.drain(position..end);
            }
            2 => {
                let fragment = pick(rng, &FRAGMENTS).as_bytes();
                bytes.splice(position..position, fragment.iter().copied());
            }
            3 if position < bytes.len() => bytes[position] = rng.random(),
            4 => {
                let end = rng.random_range(position..=bytes.len());
                let copy = bytes[position..end].to_vec();
                bytes.splice(position..position, copy);
            }
            5 => {
                // The head of this line on the tail of another.
                let other = pick(rng, real).as_bytes();
                let cut = rng.random_range(0..=other.len());
                bytes.truncate(position);
                bytes.extend_from_slice(&other[cut..]);
            }
            6 => {
                // Makes the line claim to come from our user (or a stranger), so the
                // own-message path runs on damaged lines.
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let id = if rng.random() { OWN_ID } else { STRANGER_ID };
                bytes = text
                    .replace("user-id=", &format!("user-id={id}"))
                    .into_bytes();
            }
            _ => {
                let separator = pick(rng, &[";", " ", ":", "=", "\\"]).as_bytes()[0];
                for byte in bytes.iter_mut().filter(|byte| **byte == separator) {
                    if rng.random_range(0..4) == 0 {
                        *byte = pick(rng, &[";", " ", ":", "=", "\\", "@"]).as_bytes()[0];
                    }
                }
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// One line from any of the generators.
fn arbitrary_line(rng: &mut Xoshiro256PlusPlus, real: &[&str]) -> String {
    match rng.random_range(0..10) {
        0..=2 => fragment_soup(rng, &FRAGMENTS, 40),
        3 => byte_soup(rng),
        4 => pick(rng, real).to_string(),
        _ => mutated_real_line(rng, real),
    }
}

/// A WebSocket text frame: one or more lines with whatever separators.
fn arbitrary_frame(rng: &mut Xoshiro256PlusPlus, real: &[&str]) -> String {
    let n_lines = rng.random_range(1..=3);
    let mut frame = String::new();
    for _ in 0..n_lines {
        frame.push_str(&arbitrary_line(rng, real));
        frame.push_str(pick(
            rng,
            &["\r\n", "\r\n", "\n", "\r", "\r\n\r\n", "", " "],
        ));
    }
    frame
}

/// What one case feeds the checks: a frame and a text for `parse_chat_command`.
#[derive(Debug)]
struct Case {
    frame: String,
    /// Whether the frame is also checked as one unsplit line (one case in four, as that
    /// path matters less and doubles the cost of a case).
    check_unsplit: bool,
    command_text: String,
}

fn arbitrary_case(rng: &mut Xoshiro256PlusPlus, real: &[&str]) -> Case {
    let command_text = if rng.random() {
        fragment_soup(rng, &COMMAND_FRAGMENTS, 8)
    } else {
        arbitrary_line(rng, real)
    };
    Case {
        frame: arbitrary_frame(rng, real),
        check_unsplit: rng.random_range(0..4) == 0,
        command_text,
    }
}

/// The sessions a frame is fed to: our user with a known id, and our user before its id is
/// known (it learns it from GLOBALUSERSTATE). A stranger's session adds nothing: lines
/// carry strangers' ids already, so "only our id is ours" is checked on both.
struct Sessions {
    sessions: [Session; 2],
    n_logged_in: [usize; 2],
}

impl Sessions {
    fn new() -> Sessions {
        Sessions {
            sessions: [
                Session::new(Login::new(OWN_LOGIN), Some(UserId::new(OWN_ID))),
                Session::new(Login::new(OWN_LOGIN), None),
            ],
            n_logged_in: [0; 2],
        }
    }

    /// Feeds `line` to every session. `from_frame` says the line came out of
    /// `split_frame`, so it holds no line breaks.
    fn feed(&mut self, line: &str, from_frame: bool) -> Vec<Action> {
        let mut actions = Vec::new();
        for (session, n_logged_in) in self.sessions.iter_mut().zip(&mut self.n_logged_in) {
            let action = check_session_line(session, line, from_frame);
            if matches!(action, Action::LoggedIn { .. }) {
                *n_logged_in += 1;
                assert_eq!(*n_logged_in, 1, "a second login on one connection");
            }
            actions.push(action);
        }
        actions
    }
}

/// Every check on raw bytes, as a fuzzer hands them over: the bytes lossily decoded (the
/// WebSocket layer refuses invalid UTF-8 anyway) as a frame, as one unsplit line, and as a
/// chat text.
pub fn check_input(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    check_frame(&text);
    check_unsplit(&text);
    check_command(&text);
}

/// Splits a frame and checks every line, feeding them in order to fresh sessions.
fn check_frame(frame: &str) {
    let lines: Vec<&str> = irc::split_frame(frame).collect();
    for line in &lines {
        assert!(!line.is_empty(), "split_frame gave an empty line");
        assert!(
            !has_line_break(line),
            "split_frame gave a line with a line break: {line:?}"
        );
    }
    // Two single-character replaces run on memchr; the collapsed `replace(['\r', '\n'], ..)`
    // clippy suggests makes this whole test about a third slower in debug builds.
    #[allow(clippy::collapsible_str_replace)]
    let without_breaks = frame.replace('\r', "").replace('\n', "");
    assert_eq!(
        lines.concat(),
        without_breaks,
        "split_frame lost or added text"
    );

    let mut sessions = Sessions::new();
    for line in &lines {
        check_parse(line);
        for action in sessions.feed(line, true) {
            if let Action::OwnMessage { text, .. } = action {
                check_command(&text);
            }
        }
    }
}

/// Byte searches (memchr) rather than `contains([..])`, which is slow in debug builds.
fn has_line_break(text: &str) -> bool {
    text.as_bytes().contains(&b'\r') || text.as_bytes().contains(&b'\n')
}

/// A whole frame given to the parser and a session as if it were one line: the chat thread
/// never does that, but nothing may panic if a caller ever does.
fn check_unsplit(frame: &str) {
    check_parse(frame);
    Sessions::new().feed(frame, false);
}

/// `irc::parse`, the tag accessors and `Event::from_message` on one line.
fn check_parse(line: &str) {
    let _ = irc::line_for_log(line);
    let _ = irc::is_login_failure(line);
    let unescaped = irc::unescape_tag_value(line);
    assert!(unescaped.len() <= line.len(), "unescaping grew {line:?}");

    let first_word = line.trim_start_matches(' ').split(' ').next().unwrap_or("");
    if first_word.eq_ignore_ascii_case("PASS") {
        assert_eq!(irc::line_for_log(line), "PASS [redacted]");
    }

    let blank = line
        .trim_end_matches(['\r', '\n'])
        .trim_start_matches(' ')
        .is_empty();
    let message = match irc::parse(line) {
        Ok(message) => message,
        Err(ParseError::Empty) => {
            assert!(blank, "{line:?} is not empty");
            return;
        }
        Err(ParseError::NoCommand) => {
            assert!(!blank, "{line:?} is empty, not missing a command");
            return;
        }
    };
    assert!(!blank, "a blank line parsed: {line:?}");
    assert!(!message.command.is_empty() && !message.command.contains(' '));
    if let Some((_, middle)) = message.params.split_last() {
        for param in middle {
            assert!(!param.is_empty() && !param.contains(' '), "param {param:?}");
            assert!(!param.starts_with(':'), "param {param:?}");
        }
    }
    if let Some(nick) = message.nick() {
        assert!(
            !nick.is_empty() && !nick.contains(['!', '@']),
            "nick {nick:?}"
        );
    }
    if let Some(raw_tags) = message.raw_tags() {
        // The first and the last tag and the one that decides "is it me": looking up every
        // tag would cost time quadratic in the tag count for little more coverage.
        let pairs = [raw_tags.split(';').next(), raw_tags.split(';').next_back()];
        let keys = pairs
            .into_iter()
            .flatten()
            .map(|pair| pair.split_once('=').map_or(pair, |(key, _)| key));
        for key in keys {
            let value = message.tag(key).expect("a tag that is there is found");
            assert_eq!(message.non_empty_tag(key).is_some(), !value.is_empty());
        }
        let _ = message.tag("user-id");
    }

    let command = message.command;
    let is = |name: &str| command.eq_ignore_ascii_case(name);
    match Event::from_message(&message) {
        Event::Ping { .. } => assert!(is("PING")),
        Event::Pong => assert!(is("PONG")),
        Event::Reconnect => assert!(is("RECONNECT")),
        Event::Welcome => assert_eq!(command, "001"),
        Event::GlobalUserState {
            user_id,
            color,
            display_name,
        } => {
            assert!(is("GLOBALUSERSTATE"));
            assert!(user_id.is_none_or(|id| !id.as_str().is_empty()));
            assert!(color.is_none_or(|color| !color.is_empty()));
            assert!(display_name.is_none_or(|name| !name.is_empty()));
        }
        Event::Privmsg {
            sender_login,
            user_id,
            ..
        } => {
            assert!(is("PRIVMSG"));
            assert_eq!(sender_login, message.nick());
            assert!(user_id.is_none_or(|id| !id.as_str().is_empty()));
        }
        Event::Notice { .. } => assert!(is("NOTICE")),
        Event::Join { login, .. } => {
            assert!(is("JOIN"));
            assert_eq!(login, message.nick());
        }
        Event::Other => {}
    }
}

/// One line through a session, checking that the action fits the line.
fn check_session_line(session: &mut Session, line: &str, from_frame: bool) -> Action {
    let id_before = session.user_id().cloned();
    let action = session.on_line(line);
    if !matches!(action, Action::LoggedIn { .. }) {
        assert_eq!(
            session.user_id(),
            id_before.as_ref(),
            "the id changed without a login: {line:?}"
        );
    }
    if matches!(action, Action::Ignore) {
        // Most lines; parsing them again to check nothing would only cost time.
        return action;
    }
    let parsed = irc::parse(line);
    assert!(
        parsed.is_ok(),
        "{action:?} from an unparsable line {line:?}"
    );
    let command = parsed.as_ref().map_or("", |message| message.command);
    let is = |name: &str| command.eq_ignore_ascii_case(name);
    match &action {
        Action::Ignore | Action::Notice { .. } => {}
        Action::Reply(reply) => {
            assert!(is("PING"), "{reply:?} for {line:?}");
            assert!(reply.starts_with("PONG :"), "{reply:?}");
            if from_frame {
                assert!(!has_line_break(reply), "reply {reply:?}");
            }
        }
        Action::LoggedIn { user_id, .. } => {
            assert!(is("GLOBALUSERSTATE"), "login from {line:?}");
            assert_eq!(session.user_id(), user_id.as_ref());
            let tagged = parsed
                .as_ref()
                .ok()
                .and_then(|message| message.non_empty_tag("user-id"));
            match tagged {
                Some(tagged) => assert_eq!(user_id.as_ref().map(UserId::as_str), Some(&*tagged)),
                None => assert_eq!(user_id, &id_before),
            }
        }
        Action::Joined { .. } => {
            assert!(is("JOIN"));
            let nick = parsed.as_ref().ok().and_then(|message| message.nick());
            assert!(
                nick.is_some_and(|nick| Login::new(nick) == Login::new(OWN_LOGIN)
                    || Login::new(nick) == Login::new("nobody"))
            );
        }
        Action::OwnMessage { channel, text } => {
            // The one invariant that matters most: a message is ours only when its user-id
            // tag is exactly the session's id.
            let message = parsed.as_ref().expect("parsed");
            assert!(is("PRIVMSG"), "own message from {line:?}");
            let own_id = id_before.as_ref().expect("an own message needs a known id");
            let tagged = message.non_empty_tag("user-id");
            assert_eq!(
                tagged.as_deref(),
                Some(own_id.as_str()),
                "a stranger's line taken as ours: {line:?}"
            );
            match Event::from_message(message) {
                Event::Privmsg {
                    channel: event_channel,
                    text: event_text,
                    ..
                } => {
                    assert_eq!(channel, event_channel);
                    assert_eq!(text, &event_text);
                }
                other => panic!("own message from {other:?}"),
            }
        }
        Action::AuthFailed { text } => {
            assert!(is("NOTICE"));
            assert!(irc::is_login_failure(text));
        }
        Action::ReconnectRequested => assert!(is("RECONNECT")),
    }
    action
}

/// `parse_chat_command` on one text: a command only when its word is in the text, and spaces
/// around the text change nothing.
fn check_command(text: &str) {
    let parsed = parse_chat_command(text);
    let lowercase = text.to_ascii_lowercase();
    match &parsed {
        ChatCommandParse::NotACommand => {}
        ChatCommandParse::Command(ChatCommand::Disable) => assert!(lowercase.contains("ccd")),
        ChatCommandParse::Command(ChatCommand::Enable) => assert!(lowercase.contains("cce")),
        ChatCommandParse::Command(ChatCommand::SetColor(_)) | ChatCommandParse::Invalid { .. } => {
            assert!(lowercase.contains("ccc"), "{parsed:?} from {text:?}");
        }
    }
    assert_eq!(
        parse_chat_command(&format!("  {text} ")),
        parsed,
        "text {text:?}"
    );
}

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) => value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a whole number, not {value:?}")),
        Err(_) => default,
    }
}

#[test]
fn arbitrary_chat_input_never_panics_and_keeps_the_invariants() {
    let n_cases = env_u64("FUZZ_CASES", DEFAULT_CASES);
    let base_seed = env_u64("FUZZ_SEED", DEFAULT_SEED);
    let real = real_lines();
    for index in 0..n_cases {
        // One seed per case, so a failure can be replayed alone.
        let seed = base_seed.wrapping_add(index);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let case = arbitrary_case(&mut rng, &real);
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
            check_frame(&case.frame);
            if case.check_unsplit {
                check_unsplit(&case.frame);
            }
            check_command(&case.command_text);
        }));
        if outcome.is_err() {
            panic!(
                "case {index} failed; replay with FUZZ_SEED={seed} FUZZ_CASES=1; input {case:?}"
            );
        }
    }
}

#[test]
fn real_lines_and_raw_bytes_pass_the_checks() {
    for line in real_lines() {
        check_input(line.as_bytes());
        check_input(format!("{line}\r\n{line}\r\n").as_bytes());
    }
    let cases: [&[u8]; 6] = [
        b"",
        b"\r\n",
        b"\xff\xfe PRIVMSG #x :\xc3",
        b"@user-id=40286300 :a!a@a PRIVMSG #c :ccc red\r\n",
        b"PING :a\nb",
        b"PASS oauth:secret",
    ];
    for bytes in cases {
        check_input(bytes);
    }
}

#[test]
fn own_message_checks_do_see_own_messages() {
    // Guards the generators: if mutations never produced own messages, the most important
    // invariant would be checked on nothing.
    let real = real_lines();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(DEFAULT_SEED);
    let mut n_own = 0;
    for _ in 0..2_000 {
        let frame = arbitrary_frame(&mut rng, &real);
        let mut sessions = Sessions::new();
        for line in irc::split_frame(&frame) {
            let actions = sessions.feed(line, true);
            n_own += actions
                .iter()
                .filter(|action| matches!(action, Action::OwnMessage { .. }))
                .count();
        }
    }
    assert!(n_own > 50, "only {n_own} own messages");
}
