//! What an IRC chat connection does with each line Twitch sends, and when it may send JOINs.
//! Pure: lines and `now` in, decisions out; the socket lives in `chat::irc::connection`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::base::ids::{Login, UserId};
use crate::chat::irc::line::{self as irc, Event};
use crate::color::{parse_rgb, Rgb};

/// How many of the user's own message ids a session remembers to recognise a copy. In a
/// shared chat session one message arrives once per joined channel of the session, the
/// copies moments apart; the user can send at most about 200 messages a minute.
pub const OWN_MESSAGE_IDS_KEPT: usize = 32;

/// Twitch allows a normal account 20 JOIN attempts per 10 seconds.
pub const JOIN_LIMIT: usize = 20;
pub const JOIN_WINDOW: Duration = Duration::from_secs(10);

/// What one line asks of the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing to do.
    Ignore,
    /// Send this line back (a PONG).
    Reply(String),
    /// Login succeeded: GLOBALUSERSTATE told us who we are and our current color.
    LoggedIn {
        user_id: Option<UserId>,
        color: Option<Rgb>,
    },
    /// The server confirmed a JOIN of ours.
    Joined { channel: String },
    /// The user sent a message from some client (their own `user-id`).
    OwnMessage { channel: String, text: String },
    /// Twitch refused the token at login.
    AuthFailed { text: String },
    /// The server is going away; reconnect now.
    ReconnectRequested,
    /// A notice worth a log line (bans, rate limits, errors).
    Notice { channel: String, text: String },
}

/// The per-connection state needed to interpret lines.
#[derive(Debug, Clone)]
pub struct Session {
    login: Login,
    user_id: Option<UserId>,
    logged_in: bool,
    /// Ids of the newest own messages, oldest first, at most [`OWN_MESSAGE_IDS_KEPT`].
    recent_own_ids: VecDeque<String>,
}

impl Session {
    /// `known_user_id` is the id from token validation, if any; GLOBALUSERSTATE replaces it.
    pub fn new(login: Login, known_user_id: Option<UserId>) -> Session {
        Session {
            login,
            user_id: known_user_id,
            logged_in: false,
            recent_own_ids: VecDeque::new(),
        }
    }

    pub fn login(&self) -> &Login {
        &self.login
    }

    pub fn user_id(&self) -> Option<&UserId> {
        self.user_id.as_ref()
    }

    /// Decides what to do with one line. Never panics, whatever the line holds.
    pub fn on_line(&mut self, line: &str) -> Action {
        let Ok(message) = irc::parse(line) else {
            return Action::Ignore;
        };
        match Event::from_message(&message) {
            Event::Ping { argument } => Action::Reply(irc::pong_for(argument)),
            Event::Reconnect => Action::ReconnectRequested,
            // Twitch sends GLOBALUSERSTATE once, at login. A later one claiming another
            // identity is not trusted: it would make a stranger's messages look like ours.
            Event::GlobalUserState { .. } if self.logged_in => Action::Ignore,
            Event::GlobalUserState { user_id, color, .. } => {
                self.logged_in = true;
                if user_id.is_some() {
                    self.user_id.clone_from(&user_id);
                }
                Action::LoggedIn {
                    user_id: self.user_id.clone(),
                    color: color.as_deref().and_then(parse_rgb),
                }
            }
            Event::Join { channel, login } => {
                if login.is_some_and(|login| login.eq_ignore_ascii_case(self.login.as_str())) {
                    Action::Joined {
                        channel: channel.to_string(),
                    }
                } else {
                    Action::Ignore
                }
            }
            Event::Privmsg {
                channel,
                user_id: Some(sender_id),
                text,
                ..
            } if self.user_id.as_ref() == Some(&sender_id) => {
                // A shared chat copy carries the original's id in `source-id`.
                let message_id = message
                    .non_empty_tag("source-id")
                    .or_else(|| message.non_empty_tag("id"));
                if message_id.is_some_and(|id| !self.remember_own_id(&id)) {
                    return Action::Ignore;
                }
                Action::OwnMessage {
                    channel: channel.to_string(),
                    text: text.into_owned(),
                }
            }
            Event::Notice { channel, text, .. } => {
                if channel == "*" && irc::is_login_failure(text) {
                    Action::AuthFailed {
                        text: text.to_string(),
                    }
                } else {
                    Action::Notice {
                        channel: channel.to_string(),
                        text: text.to_string(),
                    }
                }
            }
            _ => Action::Ignore,
        }
    }
}

impl Session {
    /// Remembers an own message id; false when it was seen already (a shared chat copy).
    fn remember_own_id(&mut self, id: &str) -> bool {
        if self.recent_own_ids.iter().any(|seen| seen == id) {
            return false;
        }
        if self.recent_own_ids.len() == OWN_MESSAGE_IDS_KEPT {
            self.recent_own_ids.pop_front();
        }
        self.recent_own_ids.push_back(id.to_string());
        true
    }
}

/// A sliding window over JOIN attempts, so that a user with many channels, or one who
/// reconnects often, never exceeds Twitch's join limit.
#[derive(Debug, Clone)]
pub struct JoinBudget {
    limit: usize,
    window: Duration,
    recent: VecDeque<Instant>,
}

impl Default for JoinBudget {
    fn default() -> Self {
        JoinBudget::new(JOIN_LIMIT, JOIN_WINDOW)
    }
}

impl JoinBudget {
    pub fn new(limit: usize, window: Duration) -> JoinBudget {
        JoinBudget {
            limit: limit.max(1),
            window,
            recent: VecDeque::new(),
        }
    }

    /// How many of `wanted` joins may be sent at `now`; those are counted as sent.
    pub fn take(&mut self, now: Instant, wanted: usize) -> usize {
        self.forget_old(now);
        let granted = wanted.min(self.limit - self.recent.len());
        self.recent.extend(std::iter::repeat_n(now, granted));
        granted
    }

    /// When the next join may be sent, if none may be sent at `now`.
    pub fn next_free_at(&mut self, now: Instant) -> Option<Instant> {
        self.forget_old(now);
        if self.recent.len() < self.limit {
            None
        } else {
            self.recent.front().map(|oldest| *oldest + self.window)
        }
    }

    fn forget_old(&mut self, now: Instant) {
        while self
            .recent
            .front()
            .is_some_and(|sent| now.saturating_duration_since(*sent) >= self.window)
        {
            self.recent.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN_ID: &str = "40286300";

    fn session() -> Session {
        Session::new(Login::new("randers"), Some(UserId::new(OWN_ID)))
    }

    fn privmsg(user_id: &str, display_name: &str, text: &str) -> String {
        format!(
            "@badge-info=;badges=;color=#0000FF;display-name={display_name};emotes=;id=1;mod=0;\
             room-id=1337;subscriber=0;tmi-sent-ts=1507246572675;turbo=0;user-id={user_id};\
             user-type= :someone!someone@someone.tmi.twitch.tv PRIVMSG #pajlada :{text}"
        )
    }

    #[test]
    fn lines_map_to_actions() {
        let cases: Vec<(String, Action)> = vec![
            (
                privmsg(OWN_ID, "randers", "hello"),
                Action::OwnMessage {
                    channel: "pajlada".into(),
                    text: "hello".into(),
                },
            ),
            (
                privmsg(OWN_ID, "randers", "\u{1}ACTION waves\u{1}"),
                Action::OwnMessage {
                    channel: "pajlada".into(),
                    text: "waves".into(),
                },
            ),
            // Someone else with our display name is not us.
            (privmsg("1", "randers", "hello"), Action::Ignore),
            (privmsg("1", "Randers\\s", "hello"), Action::Ignore),
            (
                ":tmi.twitch.tv PING :tmi.twitch.tv".into(),
                Action::Reply("PONG :tmi.twitch.tv".into()),
            ),
            (":tmi.twitch.tv RECONNECT".into(), Action::ReconnectRequested),
            (
                ":tmi.twitch.tv NOTICE * :Login authentication failed".into(),
                Action::AuthFailed {
                    text: "Login authentication failed".into(),
                },
            ),
            (
                ":tmi.twitch.tv NOTICE * :Improperly formatted auth".into(),
                Action::AuthFailed {
                    text: "Improperly formatted auth".into(),
                },
            ),
            (
                ":tmi.twitch.tv NOTICE * :Login unsuccessful".into(),
                Action::AuthFailed {
                    text: "Login unsuccessful".into(),
                },
            ),
            (
                "@msg-id=msg_banned :tmi.twitch.tv NOTICE #forsen :You are permanently banned from talking in forsen.".into(),
                Action::Notice {
                    channel: "forsen".into(),
                    text: "You are permanently banned from talking in forsen.".into(),
                },
            ),
            (
                ":randers!randers@randers.tmi.twitch.tv JOIN #pajlada".into(),
                Action::Joined {
                    channel: "pajlada".into(),
                },
            ),
            (":other!other@other.tmi.twitch.tv JOIN #pajlada".into(), Action::Ignore),
            (":tmi.twitch.tv 001 randers :Welcome, GLHF!".into(), Action::Ignore),
            (":tmi.twitch.tv FOO bar".into(), Action::Ignore),
            ("".into(), Action::Ignore),
            ("@".into(), Action::Ignore),
        ];
        for (line, expected) in cases {
            assert_eq!(session().on_line(&line), expected, "line {line:?}");
        }
    }

    /// An own message as Twitch delivers it in `channel`, with an `id` and, for a shared
    /// chat copy, a `source-id`.
    fn own_with_ids(channel: &str, id: &str, source_id: Option<&str>) -> String {
        let source = source_id
            .map(|source| format!("source-id={source};source-room-id=1;"))
            .unwrap_or_default();
        format!(
            "@badge-info=;color=;display-name=randers;id={id};room-id=2;{source}\
             user-id={OWN_ID} :randers!randers@randers.tmi.twitch.tv PRIVMSG #{channel} :hi"
        )
    }

    #[test]
    fn a_shared_chat_copy_of_an_own_message_counts_once() {
        let own = |channel: &str| Action::OwnMessage {
            channel: channel.into(),
            text: "hi".into(),
        };
        let mut session = session();
        // (line, expected action)
        let cases: Vec<(String, Action)> = vec![
            (own_with_ids("a", "m1", Some("m1")), own("a")),
            (own_with_ids("b", "m1-copy", Some("m1")), Action::Ignore),
            // The copy may come first, and a copy without `source-id` on the original too.
            (own_with_ids("b", "m2-copy", Some("m2")), own("b")),
            (own_with_ids("a", "m2", None), Action::Ignore),
            // The same text again is a new message with a new id.
            (own_with_ids("a", "m3", None), own("a")),
            (own_with_ids("a", "m3", None), Action::Ignore),
            // No id at all: nothing to compare, every copy counts.
            (
                privmsg(OWN_ID, "randers", "hi").replace("id=1;", ""),
                own("pajlada"),
            ),
            (
                privmsg(OWN_ID, "randers", "hi").replace("id=1;", ""),
                own("pajlada"),
            ),
        ];
        for (line, expected) in cases {
            assert_eq!(session.on_line(&line), expected, "line {line:?}");
        }
    }

    #[test]
    fn own_message_ids_are_remembered_within_a_bound() {
        let mut session = session();
        let total = OWN_MESSAGE_IDS_KEPT + 5;
        for n in 0..total {
            let line = own_with_ids("a", &format!("m{n}"), None);
            assert!(matches!(session.on_line(&line), Action::OwnMessage { .. }));
        }
        assert_eq!(session.recent_own_ids.len(), OWN_MESSAGE_IDS_KEPT);
        // The newest are still recognised; the oldest were forgotten.
        let newest = own_with_ids("b", "x", Some(&format!("m{}", total - 1)));
        assert_eq!(session.on_line(&newest), Action::Ignore);
        let oldest = own_with_ids("b", "y", Some("m0"));
        assert!(matches!(
            session.on_line(&oldest),
            Action::OwnMessage { .. }
        ));
    }

    #[test]
    fn global_user_state_sets_the_id_and_the_current_color() {
        let mut session = Session::new(Login::new("randers"), None);
        assert_eq!(
            session.on_line(&privmsg(OWN_ID, "randers", "before login")),
            Action::Ignore
        );
        let action = session.on_line(
            "@badge-info=;badges=;color=#19E6E6;display-name=randers;emote-sets=0,42,237;\
             user-id=40286300;user-type= :tmi.twitch.tv GLOBALUSERSTATE",
        );
        assert_eq!(
            action,
            Action::LoggedIn {
                user_id: Some(UserId::new(OWN_ID)),
                color: Some(Rgb {
                    r: 0x19,
                    g: 0xE6,
                    b: 0xE6
                }),
            }
        );
        assert!(matches!(
            session.on_line(&privmsg(OWN_ID, "randers", "after login")),
            Action::OwnMessage { .. }
        ));
        // A second GLOBALUSERSTATE on the same connection changes nothing.
        let action = session.on_line(
            "@badge-info=;badges=premium/1;color=;display-name=other;emote-sets=;\
             user-id=1;user-type= :tmi.twitch.tv GLOBALUSERSTATE",
        );
        assert_eq!(action, Action::Ignore);
        assert_eq!(session.user_id(), Some(&UserId::new(OWN_ID)));
    }

    #[test]
    fn real_lines_are_never_own_messages_of_a_stranger() {
        let data = include_str!("../../../tests/data/twitch-real-lines.txt");
        for line in data.lines().filter(|line| !line.starts_with("# ")) {
            let mut stranger = Session::new(Login::new("nobody"), Some(UserId::new("999999999")));
            let action = stranger.on_line(line);
            assert!(!matches!(action, Action::OwnMessage { .. }), "{line}");
        }
    }

    #[test]
    fn join_budget_follows_the_sliding_window() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut budget = JoinBudget::new(20, Duration::from_secs(10));
        assert_eq!(budget.take(at(0), 15), 15);
        assert_eq!(budget.next_free_at(at(0)), None);
        assert_eq!(budget.take(at(1_000), 15), 5);
        assert_eq!(budget.next_free_at(at(1_000)), Some(at(10_000)));
        assert_eq!(budget.take(at(9_999), 1), 0);
        assert_eq!(budget.take(at(10_000), 30), 15);
        assert_eq!(budget.next_free_at(at(10_000)), Some(at(11_000)));
        assert_eq!(budget.take(at(11_000), 30), 5);
    }
}
