//! One IRC chat connection as a state machine: what each frame asks for, and every deadline
//! the connection keeps (keepalive PING, the PING's grace, JOINs held back by the join
//! limit). Pure: frames and `now` in, `Step`s out; `chat::irc::connection` reads the socket,
//! feeds the machine and carries the steps out.
//!
//! ```text
//!   connect ── login_steps (CAP, PASS, NICK) ──▶ logging in
//!   logging in ── GLOBALUSERSTATE ──▶ LoggedIn; JOINs go out as the join budget allows
//!   logging in ── NOTICE "Login authentication failed" ──▶ End(TokenRefused)
//!   any state ── silent for `keepalive` ──▶ PING sent ── any frame ──▶ back as it was
//!                                         PING sent ── no answer within the grace ──▶ End(Lost)
//!   any state ── RECONNECT ──▶ End(ReconnectRequested)
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::base::ids::{Login, UserId};
use crate::base::secret::Secret;
use crate::chat::irc::line as irc;
use crate::chat::irc::session::{Action, JoinBudget, Session};
use crate::chat::machine::ChatMachine;
use crate::chat::reconnect::ConnectionEnd;
use crate::color::Rgb;

/// At most this many channels go in one JOIN line.
pub const CHANNELS_PER_JOIN: usize = 20;
/// How long an unanswered PING of ours may wait before the connection counts as dead:
/// Twitch answers within a second, and the default keepalive plus this grace must stay
/// within `chat::machine::DEAD_LINK_LIMIT`.
pub const MAX_PING_GRACE: Duration = Duration::from_secs(10);
/// The line we send when the connection has been quiet for the keepalive interval.
pub const KEEPALIVE_PING: &str = "PING :tmi.twitch.tv";

/// What the connection must carry out, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this line (login lines, PONG, PING, JOIN).
    Send(String),
    /// Login succeeded: GLOBALUSERSTATE told us who we are and our current color.
    LoggedIn {
        user_id: Option<UserId>,
        color: Option<Rgb>,
    },
    /// The server confirmed a JOIN of ours.
    Joined { channel: String },
    /// This many channels wait for the join limit.
    JoinsWaiting { n_waiting: usize },
    /// The user sent a message from some client.
    OwnMessage { channel: String, text: String },
    /// A notice worth a log line (bans, rate limits, errors).
    Notice { channel: String, text: String },
    /// The connection is over (RECONNECT, a refused login, an unanswered PING); close it
    /// and reconnect.
    End(ConnectionEnd),
}

/// The connection's timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkTiming {
    /// Silence this long makes us send a PING.
    pub keepalive: Duration,
    /// How long that PING may go unanswered.
    pub ping_grace: Duration,
}

impl LinkTiming {
    /// The grace is never longer than the keepalive itself, nor than [`MAX_PING_GRACE`].
    pub fn new(keepalive: Duration) -> LinkTiming {
        LinkTiming {
            keepalive,
            ping_grace: keepalive.min(MAX_PING_GRACE),
        }
    }
}

/// One connection's session and deadlines.
#[derive(Debug)]
pub struct Link<'a> {
    session: Session,
    timing: LinkTiming,
    channels: Vec<Login>,
    /// Kept across connections by the caller: reconnects count against the join limit too.
    join_budget: &'a mut JoinBudget,
    last_traffic: Instant,
    ping_sent_at: Option<Instant>,
    pending_joins: VecDeque<Login>,
    join_at: Option<Instant>,
}

impl<'a> Link<'a> {
    /// A connection opened at `now`. `known_user_id` is the id from token validation, if
    /// any.
    pub fn new(
        login: Login,
        known_user_id: Option<UserId>,
        channels: Vec<Login>,
        timing: LinkTiming,
        join_budget: &'a mut JoinBudget,
        now: Instant,
    ) -> Link<'a> {
        Link {
            session: Session::new(login, known_user_id),
            timing,
            channels,
            join_budget,
            last_traffic: now,
            ping_sent_at: None,
            pending_joins: VecDeque::new(),
            join_at: None,
        }
    }

    /// The lines that log in with `token`.
    pub fn login_steps(&self, token: &Secret) -> Vec<Step> {
        vec![
            Step::Send(irc::cap_line()),
            Step::Send(irc::pass_line(token.expose())),
            Step::Send(irc::nick_line(self.session.login())),
        ]
    }
}

impl ChatMachine for Link<'_> {
    type Step = Step;

    /// The earliest moment `due` has something to do.
    fn next_deadline(&self) -> Instant {
        let silence = match self.ping_sent_at {
            None => self.last_traffic + self.timing.keepalive,
            Some(sent) => sent + self.timing.ping_grace,
        };
        self.join_at.map_or(silence, |join_at| join_at.min(silence))
    }

    /// Any frame from the server shows the link is alive.
    fn on_traffic(&mut self, now: Instant) {
        self.last_traffic = now;
        self.ping_sent_at = None;
    }

    /// What one text frame asks for. Stops at the first line that ends the connection.
    fn on_frame(&mut self, now: Instant, frame: &str) -> Vec<Step> {
        self.on_traffic(now);
        let mut steps = Vec::new();
        for line in irc::split_frame(frame) {
            let step = match self.session.on_line(line) {
                Action::Ignore => continue,
                Action::Reply(reply) => Step::Send(reply),
                Action::LoggedIn { user_id, color } => {
                    self.pending_joins = self.channels.iter().cloned().collect();
                    self.join_at = Some(now);
                    Step::LoggedIn { user_id, color }
                }
                Action::Joined { channel } => Step::Joined { channel },
                Action::OwnMessage { channel, text } => Step::OwnMessage { channel, text },
                Action::Notice { channel, text } => Step::Notice { channel, text },
                Action::AuthFailed { text } => Step::End(ConnectionEnd::TokenRefused(text)),
                Action::ReconnectRequested => Step::End(ConnectionEnd::ReconnectRequested),
            };
            let ends = matches!(step, Step::End(_));
            steps.push(step);
            if ends {
                break;
            }
        }
        steps
    }

    /// What the deadlines that have passed by `now` ask for.
    fn due(&mut self, now: Instant) -> Vec<Step> {
        let mut steps = Vec::new();
        match self.ping_sent_at {
            Some(sent) if now >= sent + self.timing.ping_grace => {
                return vec![Step::End(ConnectionEnd::Lost(format!(
                    "no answer to PING within {:?}",
                    self.timing.ping_grace
                )))];
            }
            None if now >= self.last_traffic + self.timing.keepalive => {
                steps.push(Step::Send(KEEPALIVE_PING.to_string()));
                self.ping_sent_at = Some(now);
            }
            _ => {}
        }
        if self.join_at.is_some_and(|at| at <= now) {
            let granted = self.join_budget.take(now, self.pending_joins.len());
            let batch: Vec<Login> = self.pending_joins.drain(..granted).collect();
            steps.extend(
                irc::join_lines(&batch, CHANNELS_PER_JOIN)
                    .into_iter()
                    .map(Step::Send),
            );
            self.join_at = if self.pending_joins.is_empty() {
                None
            } else {
                steps.push(Step::JoinsWaiting {
                    n_waiting: self.pending_joins.len(),
                });
                Some(self.join_budget.next_free_at(now).unwrap_or(now))
            };
        }
        steps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GLOBAL_USER_STATE: &str = "@badge-info=;badges=;color=#19E6E6;display-name=alice;\
        emote-sets=0;user-id=1001;user-type= :tmi.twitch.tv GLOBALUSERSTATE";

    fn logins(names: &[&str]) -> Vec<Login> {
        names.iter().map(|name| Login::new(name)).collect()
    }

    fn link<'a>(budget: &'a mut JoinBudget, channels: &[&str], start: Instant) -> Link<'a> {
        Link::new(
            Login::new("alice"),
            None,
            logins(channels),
            LinkTiming::new(Duration::from_secs(360)),
            budget,
            start,
        )
    }

    fn secs(start: Instant, seconds: u64) -> Instant {
        start + Duration::from_secs(seconds)
    }

    #[test]
    fn login_lines_carry_the_token_and_the_login() {
        let mut budget = JoinBudget::default();
        let link = link(&mut budget, &["a"], Instant::now());
        assert_eq!(
            link.login_steps(&Secret::new("oauth:abc")),
            vec![
                Step::Send("CAP REQ :twitch.tv/tags twitch.tv/commands".into()),
                Step::Send("PASS oauth:abc".into()),
                Step::Send("NICK alice".into()),
            ]
        );
    }

    #[test]
    fn keepalive_pings_after_silence_and_gives_up_after_the_grace() {
        let start = Instant::now();
        let mut budget = JoinBudget::default();
        let mut link = link(&mut budget, &[], start);
        // (seconds since start, traffic at that moment, steps expected, next deadline)
        let ping = || Step::Send(KEEPALIVE_PING.into());
        let cases: Vec<(u64, bool, Vec<Step>, u64)> = vec![
            (100, false, vec![], 360),
            (200, true, vec![], 560),
            (559, false, vec![], 560),
            (560, false, vec![ping()], 570),
            (565, false, vec![], 570),
            // The PONG (any traffic) counts: the keepalive starts over.
            (567, true, vec![], 927),
            (927, false, vec![ping()], 937),
            (
                937,
                false,
                vec![Step::End(ConnectionEnd::Lost(
                    "no answer to PING within 10s".into(),
                ))],
                937,
            ),
        ];
        for (at, traffic, expected, next) in cases {
            if traffic {
                link.on_traffic(secs(start, at));
            }
            assert_eq!(link.due(secs(start, at)), expected, "at {at} s");
            assert_eq!(link.next_deadline(), secs(start, next), "at {at} s");
        }
    }

    #[test]
    fn a_short_keepalive_has_a_grace_no_longer_than_itself() {
        let timing = LinkTiming::new(Duration::from_secs(5));
        assert_eq!(timing.ping_grace, Duration::from_secs(5));
        let timing = LinkTiming::new(Duration::from_secs(360));
        assert_eq!(timing.ping_grace, MAX_PING_GRACE);
    }

    #[test]
    fn frames_become_steps_and_stop_at_the_end_of_the_connection() {
        let start = Instant::now();
        let mut budget = JoinBudget::default();
        let mut link = link(&mut budget, &["a"], start);
        let frame = ":tmi.twitch.tv PING :x\r\n:tmi.twitch.tv RECONNECT\r\n:tmi.twitch.tv PING :y";
        assert_eq!(
            link.on_frame(start, frame),
            vec![
                Step::Send("PONG :x".into()),
                Step::End(ConnectionEnd::ReconnectRequested)
            ]
        );
        let refused = ":tmi.twitch.tv NOTICE * :Login authentication failed";
        assert_eq!(
            link.on_frame(start, refused),
            vec![Step::End(ConnectionEnd::TokenRefused(
                "Login authentication failed".into()
            ))]
        );
    }

    #[test]
    fn joins_go_out_at_login_within_the_join_limit() {
        let start = Instant::now();
        let channels: Vec<String> = (0..25).map(|n| format!("c{n:02}")).collect();
        let channel_names: Vec<&str> = channels.iter().map(String::as_str).collect();
        let mut budget = JoinBudget::default();
        let mut link = link(&mut budget, &channel_names, start);
        assert_eq!(link.due(start), vec![], "nothing is joined before login");
        let steps = link.on_frame(start, GLOBAL_USER_STATE);
        assert_eq!(
            steps,
            vec![Step::LoggedIn {
                user_id: Some(UserId::new("1001")),
                color: Some(Rgb {
                    r: 0x19,
                    g: 0xE6,
                    b: 0xE6
                }),
            }]
        );
        assert_eq!(link.next_deadline(), start);
        let first_twenty: Vec<String> = channels[..20].iter().map(|c| format!("#{c}")).collect();
        assert_eq!(
            link.due(start),
            vec![
                Step::Send(format!("JOIN {}", first_twenty.join(","))),
                Step::JoinsWaiting { n_waiting: 5 },
            ]
        );
        assert_eq!(link.next_deadline(), secs(start, 10));
        assert_eq!(link.due(secs(start, 9)), vec![]);
        let last_five: Vec<String> = channels[20..].iter().map(|c| format!("#{c}")).collect();
        assert_eq!(
            link.due(secs(start, 10)),
            vec![Step::Send(format!("JOIN {}", last_five.join(",")))]
        );
        assert_eq!(link.next_deadline(), secs(start, 360));
    }

    #[test]
    fn the_join_budget_outlives_a_connection() {
        let start = Instant::now();
        let mut budget = JoinBudget::new(2, Duration::from_secs(10));
        {
            let mut first = link(&mut budget, &["a", "b"], start);
            first.on_frame(start, GLOBAL_USER_STATE);
            assert_eq!(first.due(start), vec![Step::Send("JOIN #a,#b".into())]);
        }
        let mut second = link(&mut budget, &["a", "b"], secs(start, 1));
        second.on_frame(secs(start, 1), GLOBAL_USER_STATE);
        assert_eq!(
            second.due(secs(start, 1)),
            vec![Step::JoinsWaiting { n_waiting: 2 }]
        );
        assert_eq!(second.next_deadline(), secs(start, 10));
    }
}
