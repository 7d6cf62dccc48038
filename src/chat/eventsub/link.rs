//! One EventSub connection (chat as `channel.chat.message` on a WebSocket session) as a
//! pure state machine: what each message asks of the connection, the silence deadline (the
//! welcome's keepalive window plus a grace), duplicate suppression by message id, a
//! `session_reconnect` hand-over and the waits a subscription rate limit imposes (the color
//! timer is `chat::net::watch`'s, as for IRC). Pure: frames and `now` in, `EventSubStep`s out;
//! `chat::eventsub::connection` reads the sockets, calls Helix and carries the steps out.
//!
//! ```text
//!   connect ──▶ AwaitingWelcome ── session_welcome ──▶ Welcomed: Subscribe (own messages flow)
//!   AwaitingWelcome ── no welcome within 10 s ──▶ End(Lost)
//!   Welcomed ── silence past the keepalive window and its grace ──▶ End(Lost)
//!   Welcomed ── 429 on a subscription ──▶ rate_limited: RetryAt (SubscribeRest when due)
//!                                          | Reconnect { not_before } | GiveUp
//!   Welcomed ── session_reconnect ──▶ Reconnect { url }; AwaitingWelcome (carried over)
//!   AwaitingWelcome (carried over) ── session_welcome ──▶ Welcomed: CarriedOver
//!   Welcomed ── a channel's ban runs out (`bans_end_at`) ──▶ BansOver: subscribe it again
//! ```

use std::borrow::Cow;
use std::collections::VecDeque;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration, Instant};

use crate::base::ids::UserId;
use crate::chat::eventsub::message::{
    parse_message, revocation_verdict, Message, ParseError, RevocationVerdict,
};
use crate::chat::machine::ChatMachine;
use crate::chat::reconnect::ConnectionEnd;

/// How long a new connection may wait for its `session_welcome`.
pub const WELCOME_TIMEOUT: Duration = Duration::from_secs(10);
/// Ids of the user's own messages remembered to drop re-sent deliveries and shared-chat
/// copies; Twitch re-sends within seconds (IRC keeps the last 32 for shared chat).
pub const REMEMBERED_MESSAGE_IDS: usize = 64;
/// Attempts of one subscription that Twitch answers with 429, the first included.
pub const MAX_SUBSCRIBE_ATTEMPTS: u32 = 3;
/// Time kept free for the subscription call itself before a session without subscriptions
/// closes as unused (the welcome's keepalive window after the welcome).
pub const SUBSCRIBE_CALL_ALLOWANCE: Duration = Duration::from_secs(2);

/// Silence allowed past the keepalive window before the link counts as dead: half the
/// window, at least a second (keepalives travel too) and at most ten.
pub fn silence_grace(keepalive: Duration) -> Duration {
    (keepalive / 2).clamp(Duration::from_secs(1), Duration::from_secs(10))
}

/// What the connection must carry out, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventSubStep {
    /// A new session was welcomed: subscribe the channels on it.
    Subscribe { session_id: String },
    /// The wait after Twitch rate-limited a subscription is over: subscribe the channels
    /// still left on the session.
    SubscribeRest { session_id: String },
    /// A ban that kept a channel unsubscribed has run out: subscribe the channels whose ban
    /// is over on the session.
    BansOver { session_id: String },
    /// The session moved to the new connection: close the old one (subscriptions came along).
    CarriedOver,
    /// Twitch moves the session: connect to `url` and wait there for the welcome.
    Reconnect { url: String },
    /// The user sent a message from some client, in the channel with this login (its id,
    /// or `?`, when the notification did not name it); `text` is empty when it had none.
    OwnMessage { channel: String, text: String },
    /// A subscription was revoked; the verdict says what to do about the channel.
    Revoked {
        broadcaster_user_id: Option<String>,
        status: String,
        verdict: RevocationVerdict,
    },
    /// A frame that is no EventSub message, for a debug line.
    Unreadable(ParseError),
    /// The connection is over: no welcome in time, or silence past the keepalive window.
    End(ConnectionEnd),
}

/// What to do after Twitch rate-limited a subscription (429) on the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitPlan {
    /// Keep reading the session; `due` asks for `SubscribeRest` at this moment.
    RetryAt(Instant),
    /// The session would close as unused before then: close it and connect again, not
    /// before this moment.
    Reconnect { not_before: Instant },
    /// The same subscription was refused [`MAX_SUBSCRIBE_ATTEMPTS`] times.
    GiveUp,
}

/// What an id names: a delivery (`metadata.message_id`) or a chat message (its id, or in
/// shared chat its source's).
#[derive(Debug, Clone, Copy, Hash)]
enum IdKind {
    Delivery,
    Chat,
}

/// Ids of own messages already acted on, the newest [`REMEMBERED_MESSAGE_IDS`] of them, kept
/// as 64-bit hashes: a few hundred bytes per user however long the daemon runs, where the
/// ids themselves (UUIDs) in a set would take several KiB. Two ids sharing a hash among 64
/// is a chance of about 2^-58.
#[derive(Debug, Default)]
struct SeenIds {
    hashes: VecDeque<u64>,
}

impl SeenIds {
    /// True when `id` is new (and remembers it).
    fn first_time(&mut self, kind: IdKind, id: &str) -> bool {
        // SipHash with fixed keys: the same id always has the same hash.
        let mut hasher = DefaultHasher::new();
        (kind, id).hash(&mut hasher);
        let hash = hasher.finish();
        if self.hashes.contains(&hash) {
            return false;
        }
        if self.hashes.len() >= REMEMBERED_MESSAGE_IDS {
            self.hashes.pop_front();
        }
        self.hashes.push_back(hash);
        true
    }
}

/// Where the connection stands with its session.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Connected, no welcome yet; `carried_over` when the connection follows a reconnect.
    AwaitingWelcome { since: Instant, carried_over: bool },
    /// Welcomed on this session at `since`; keepalives must come within the window.
    Welcomed {
        session_id: String,
        keepalive: Duration,
        since: Instant,
    },
}

/// One EventSub connection's session, deadline and memory of what it acted on. A
/// `session_reconnect` keeps the same machine: it waits for the new connection's welcome and
/// keeps the ids seen.
#[derive(Debug)]
pub struct EventSubLink {
    own_user_id: Option<UserId>,
    phase: Phase,
    last_traffic: Instant,
    seen: SeenIds,
    /// When to subscribe the channels a rate limit held back.
    retry_at: Option<Instant>,
    /// The channel Twitch last rate-limited, and how many times in a row.
    rate_limited: Option<(String, u32)>,
    /// When the first ban keeping a channel unsubscribed runs out.
    bans_end_at: Option<Instant>,
}

impl EventSubLink {
    /// A connection opened at `now`; `own_user_id` when already known (validation).
    pub fn new(own_user_id: Option<UserId>, now: Instant) -> Self {
        EventSubLink {
            own_user_id,
            phase: Phase::AwaitingWelcome {
                since: now,
                carried_over: false,
            },
            last_traffic: now,
            seen: SeenIds::default(),
            retry_at: None,
            rate_limited: None,
            bans_end_at: None,
        }
    }

    /// The first ban keeping a channel unsubscribed runs out at `at` (`None`: no ban holds);
    /// `due` then asks for `BansOver`, on a welcomed session.
    pub fn bans_end_at(&mut self, at: Option<Instant>) {
        self.bans_end_at = at;
    }

    /// The user's own id, learnt when the channels were resolved.
    pub fn set_user_id(&mut self, user_id: UserId) {
        self.own_user_id = Some(user_id);
    }

    /// The welcomed session's id.
    pub fn session_id(&self) -> Option<&str> {
        match &self.phase {
            Phase::Welcomed { session_id, .. } => Some(session_id),
            Phase::AwaitingWelcome { .. } => None,
        }
    }

    /// A new connection to the reconnect URL is open at `now`: wait for its welcome.
    pub fn reconnecting(&mut self, now: Instant) {
        self.phase = Phase::AwaitingWelcome {
            since: now,
            carried_over: true,
        };
        self.last_traffic = now;
    }

    /// Twitch rate-limited the subscription of `channel` at `now` until `wait` has passed;
    /// `has_subscription` when the session holds one already (it cannot close as unused).
    /// The wait is the chat thread's, reading this session meanwhile, unless the session
    /// would close as unused first; the same channel refused too often ends the connection.
    pub fn rate_limited(
        &mut self,
        now: Instant,
        channel: &str,
        wait: Duration,
        has_subscription: bool,
    ) -> RateLimitPlan {
        let n_refused = match &self.rate_limited {
            Some((last, n_refused)) if last == channel => n_refused + 1,
            _ => 1,
        };
        self.rate_limited = Some((channel.to_string(), n_refused));
        self.retry_at = None;
        let at = now + wait;
        if n_refused >= MAX_SUBSCRIBE_ATTEMPTS {
            return RateLimitPlan::GiveUp;
        }
        let fits = match &self.phase {
            Phase::Welcomed {
                since, keepalive, ..
            } => has_subscription || at + SUBSCRIBE_CALL_ALLOWANCE <= *since + *keepalive,
            Phase::AwaitingWelcome { .. } => false,
        };
        if fits {
            self.retry_at = Some(at);
            RateLimitPlan::RetryAt(at)
        } else {
            RateLimitPlan::Reconnect { not_before: at }
        }
    }

    /// Every channel is subscribed: no rate limit is pending.
    pub fn subscribed(&mut self) {
        self.retry_at = None;
        self.rate_limited = None;
    }

    /// When the connection ends unless traffic comes: the welcome's or the keepalive's
    /// deadline.
    fn end_deadline(&self) -> Instant {
        match &self.phase {
            Phase::AwaitingWelcome { since, .. } => *since + WELCOME_TIMEOUT,
            Phase::Welcomed { keepalive, .. } => {
                self.last_traffic + *keepalive + silence_grace(*keepalive)
            }
        }
    }

    /// When to subscribe the rest or a channel whose ban ran out: only on a welcomed session
    /// (a `session_reconnect` in between waits for the new welcome).
    fn retry_deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Welcomed { .. } => match (self.retry_at, self.bans_end_at) {
                (Some(retry), Some(bans)) => Some(retry.min(bans)),
                (retry, bans) => retry.or(bans),
            },
            Phase::AwaitingWelcome { .. } => None,
        }
    }
}

impl ChatMachine for EventSubLink {
    type Step = EventSubStep;

    /// The earliest moment `due` has something to do: the welcome's or the keepalive's
    /// deadline, the end of a rate limit's wait, or of a ban.
    fn next_deadline(&self) -> Instant {
        let end = self.end_deadline();
        self.retry_deadline().map_or(end, |retry| retry.min(end))
    }

    /// Any frame, pings and keepalives included, shows the link is alive.
    fn on_traffic(&mut self, now: Instant) {
        self.last_traffic = now;
    }

    /// What one text frame asks for.
    fn on_frame(&mut self, now: Instant, frame: &str) -> Vec<EventSubStep> {
        self.on_traffic(now);
        let message = match parse_message(frame) {
            Ok(message) => message,
            Err(error) => return vec![EventSubStep::Unreadable(error)],
        };
        match message {
            Message::Welcome {
                session_id,
                keepalive,
            } => {
                let carried_over = match &self.phase {
                    Phase::AwaitingWelcome { carried_over, .. } => *carried_over,
                    // A second welcome on a live session is not Twitch's way; keep going.
                    Phase::Welcomed { .. } => return Vec::new(),
                };
                self.phase = Phase::Welcomed {
                    session_id: session_id.to_string(),
                    keepalive,
                    since: now,
                };
                if carried_over {
                    vec![EventSubStep::CarriedOver]
                } else {
                    vec![EventSubStep::Subscribe {
                        session_id: session_id.into_owned(),
                    }]
                }
            }
            Message::Keepalive | Message::Unknown { .. } => Vec::new(),
            Message::Reconnect { url } => match self.phase {
                Phase::Welcomed { .. } => vec![EventSubStep::Reconnect {
                    url: url.into_owned(),
                }],
                // Already moving: the first reconnect wins.
                Phase::AwaitingWelcome { .. } => Vec::new(),
            },
            Message::Notification { message_id, chat } => {
                let Some(chat) = chat else {
                    return Vec::new();
                };
                // Only own messages are acted on, so only their ids are remembered.
                let own = self
                    .own_user_id
                    .as_ref()
                    .is_some_and(|own| own.as_str() == chat.chatter_user_id);
                if !own {
                    return Vec::new();
                }
                let first_delivery = self.seen.first_time(IdKind::Delivery, &message_id);
                let first_copy = chat
                    .chat_message_id
                    .as_deref()
                    .is_none_or(|id| self.seen.first_time(IdKind::Chat, id));
                if first_delivery && first_copy {
                    vec![EventSubStep::OwnMessage {
                        channel: chat
                            .broadcaster_login
                            .or(chat.broadcaster_user_id)
                            .map_or_else(|| "?".to_string(), Cow::into_owned),
                        text: chat.text.map(Cow::into_owned).unwrap_or_default(),
                    }]
                } else {
                    Vec::new()
                }
            }
            Message::Revocation {
                broadcaster_user_id,
                status,
            } => {
                let verdict = revocation_verdict(&status);
                vec![EventSubStep::Revoked {
                    broadcaster_user_id: broadcaster_user_id.map(Cow::into_owned),
                    status: status.into_owned(),
                    verdict,
                }]
            }
        }
    }

    /// What the deadlines that have passed by `now` ask for.
    fn due(&mut self, now: Instant) -> Vec<EventSubStep> {
        if now >= self.end_deadline() {
            let end = match &self.phase {
                Phase::AwaitingWelcome { .. } => ConnectionEnd::Lost(format!(
                    "no welcome from EventSub within {WELCOME_TIMEOUT:?}"
                )),
                Phase::Welcomed { .. } => ConnectionEnd::Lost(format!(
                    "no message or keepalive from EventSub for {:.1} s",
                    now.saturating_duration_since(self.last_traffic)
                        .as_secs_f64()
                )),
            };
            return vec![EventSubStep::End(end)];
        }
        let Phase::Welcomed { session_id, .. } = &self.phase else {
            return Vec::new();
        };
        let mut steps = Vec::new();
        if self.retry_at.is_some_and(|retry| now >= retry) {
            self.retry_at = None;
            steps.push(EventSubStep::SubscribeRest {
                session_id: session_id.clone(),
            });
        }
        if self.bans_end_at.is_some_and(|bans| now >= bans) {
            self.bans_end_at = None;
            steps.push(EventSubStep::BansOver {
                session_id: session_id.clone(),
            });
        }
        steps
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::eventsub::message::fixtures::*;

    #[test]
    fn a_session_goes_from_welcome_to_own_messages_once_each() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut link = EventSubLink::new(Some(UserId::new("1001")), start);
        let own = |text: &str| EventSubStep::OwnMessage {
            channel: "somechannel".into(),
            text: text.into(),
        };
        // (frame, steps expected)
        let cases: Vec<(String, Vec<EventSubStep>)> = vec![
            (
                welcome("s1", 10),
                vec![EventSubStep::Subscribe {
                    session_id: "s1".into(),
                }],
            ),
            (keepalive(), vec![]),
            (notification("n1", "1001", "hi"), vec![own("hi")]),
            // Delivered again with the same message id: acted on once.
            (notification("n1", "1001", "hi"), vec![]),
            // Someone else.
            (notification("n2", "2002", "hello"), vec![]),
            (notification("n3", "1001", "ccd"), vec![own("ccd")]),
            // The same chat message seen through a second channel of a shared chat.
            (
                notification_with("n4", "1001", "shared", "c4", None),
                vec![own("shared")],
            ),
            (
                notification_with("n5", "1001", "shared", "c5", Some("c4")),
                vec![],
            ),
            // A second welcome on a live session changes nothing.
            (welcome("s9", 10), vec![]),
            (
                revocation("authorization_revoked"),
                vec![EventSubStep::Revoked {
                    broadcaster_user_id: Some("77".into()),
                    status: "authorization_revoked".into(),
                    verdict: RevocationVerdict::LoginProblem,
                }],
            ),
            (
                "garbage".into(),
                vec![EventSubStep::Unreadable(ParseError::Malformed)],
            ),
        ];
        for (index, (frame, expected)) in cases.into_iter().enumerate() {
            assert_eq!(link.on_frame(at(index as u64), &frame), expected, "{frame}");
        }
        assert_eq!(link.session_id(), Some("s1"));
    }

    #[test]
    fn without_a_known_id_no_message_is_own() {
        let start = Instant::now();
        let mut link = EventSubLink::new(None, start);
        link.on_frame(start, &welcome("s1", 10));
        assert_eq!(
            link.on_frame(start, &notification("n1", "1001", "hi")),
            vec![]
        );
        link.set_user_id(UserId::new("1001"));
        assert_eq!(
            link.on_frame(start, &notification("n2", "1001", "hi"))
                .len(),
            1
        );
    }

    #[test]
    fn the_oldest_ids_are_forgotten_first() {
        let mut seen = SeenIds::default();
        let delivery = IdKind::Delivery;
        for index in 0..REMEMBERED_MESSAGE_IDS {
            assert!(seen.first_time(delivery, &index.to_string()));
        }
        assert!(!seen.first_time(delivery, "0"));
        assert!(
            seen.first_time(IdKind::Chat, "1"),
            "a chat id is no delivery id"
        );
        assert!(
            seen.first_time(delivery, "0"),
            "the oldest ids were forgotten"
        );
        assert!(!seen.first_time(delivery, "3"));
        assert!(!seen.first_time(IdKind::Chat, "1"));
    }

    #[test]
    fn silence_past_the_window_and_grace_ends_the_link() {
        let start = Instant::now();
        let secs = |seconds: u64| start + Duration::from_secs(seconds);
        let mut link = EventSubLink::new(None, start);
        assert_eq!(link.next_deadline(), start + WELCOME_TIMEOUT);
        assert_eq!(link.due(secs(9)), vec![]);
        link.on_frame(secs(1), &welcome("s1", 20));
        // (seconds, frame at that moment, steps expected from due, next deadline)
        let cases: Vec<(u64, Option<String>, Vec<EventSubStep>, u64)> = vec![
            (10, None, vec![], 31),
            (20, Some(keepalive()), vec![], 50),
            (49, None, vec![], 50),
            (
                50,
                None,
                vec![EventSubStep::End(ConnectionEnd::Lost(
                    "no message or keepalive from EventSub for 30.0 s".into(),
                ))],
                50,
            ),
        ];
        for (seconds, frame, expected, next) in cases {
            if let Some(frame) = frame {
                link.on_frame(secs(seconds), &frame);
            }
            assert_eq!(link.due(secs(seconds)), expected, "at {seconds} s");
            assert_eq!(link.next_deadline(), secs(next), "at {seconds} s");
        }
    }

    #[test]
    fn a_rate_limit_waits_on_the_session_unless_it_would_close_unused_first() {
        let start = Instant::now();
        let secs = |seconds: u64| start + Duration::from_secs(seconds);
        // (keepalive window, the session holds a subscription, wait asked at 1 s, plan)
        let cases = vec![
            (30, false, 5, RateLimitPlan::RetryAt(secs(6))),
            (30, false, 27, RateLimitPlan::RetryAt(secs(28))),
            (
                30,
                false,
                28,
                RateLimitPlan::Reconnect {
                    not_before: secs(29),
                },
            ),
            (10, true, 60, RateLimitPlan::RetryAt(secs(61))),
        ];
        for (keepalive, has_subscription, wait, expected) in cases {
            let mut link = EventSubLink::new(None, start);
            link.on_frame(start, &welcome("s1", keepalive));
            let plan = link.rate_limited(
                secs(1),
                "first",
                Duration::from_secs(wait),
                has_subscription,
            );
            assert_eq!(plan, expected, "{keepalive} s window, wait {wait} s");
        }
        let mut unwelcomed = EventSubLink::new(None, start);
        assert_eq!(
            unwelcomed.rate_limited(start, "first", Duration::from_secs(1), true),
            RateLimitPlan::Reconnect {
                not_before: secs(1)
            }
        );
    }

    #[test]
    fn the_rest_is_subscribed_when_the_wait_is_over_and_one_channel_is_retried_few_times() {
        let start = Instant::now();
        let secs = |seconds: u64| start + Duration::from_secs(seconds);
        let mut link = EventSubLink::new(None, start);
        link.on_frame(start, &welcome("s1", 30));
        let silence_end = secs(30) + silence_grace(Duration::from_secs(30));
        let rest = vec![EventSubStep::SubscribeRest {
            session_id: "s1".into(),
        }];
        let plan = link.rate_limited(secs(1), "first", Duration::from_secs(5), false);
        assert_eq!(plan, RateLimitPlan::RetryAt(secs(6)));
        assert_eq!(link.next_deadline(), secs(6));
        assert_eq!(link.due(secs(5)), vec![]);
        assert_eq!(link.due(secs(6)), rest);
        assert_eq!(link.next_deadline(), silence_end, "asked for once");
        assert_eq!(link.due(secs(7)), vec![]);

        // The same channel again, then a third time: given up.
        let plan = link.rate_limited(secs(7), "first", Duration::from_secs(1), false);
        assert_eq!(plan, RateLimitPlan::RetryAt(secs(8)));
        let plan = link.rate_limited(secs(8), "first", Duration::from_secs(1), false);
        assert_eq!(plan, RateLimitPlan::GiveUp);
        assert_eq!(link.next_deadline(), silence_end);
        // Another channel, or after everything was subscribed, counts from one again.
        let plan = link.rate_limited(secs(8), "second", Duration::from_secs(1), true);
        assert_eq!(plan, RateLimitPlan::RetryAt(secs(9)));
        link.rate_limited(secs(8), "second", Duration::from_secs(1), true);
        link.subscribed();
        assert_eq!(link.next_deadline(), silence_end);
        let plan = link.rate_limited(secs(8), "second", Duration::from_secs(1), true);
        assert_eq!(plan, RateLimitPlan::RetryAt(secs(9)));

        // A session_reconnect in between: the rest waits for the new welcome.
        link.on_frame(secs(8), &reconnect("ws://new/ws"));
        link.reconnecting(secs(8));
        assert_eq!(link.due(secs(9)), vec![]);
        assert_eq!(
            link.on_frame(secs(10), &welcome("s1", 30)),
            vec![EventSubStep::CarriedOver]
        );
        assert_eq!(link.next_deadline(), secs(9));
        assert_eq!(link.due(secs(10)), rest);
    }

    #[test]
    fn a_ban_running_out_asks_for_its_channels_on_a_welcomed_session() {
        let start = Instant::now();
        let secs = |seconds: u64| start + Duration::from_secs(seconds);
        let mut link = EventSubLink::new(None, start);
        let over = || EventSubStep::BansOver {
            session_id: "s1".into(),
        };
        // Before the welcome nothing is asked for, the welcome deadline stands.
        link.bans_end_at(Some(secs(5)));
        assert_eq!(link.next_deadline(), start + WELCOME_TIMEOUT);
        link.on_frame(secs(1), &welcome("s1", 600));
        assert_eq!(link.next_deadline(), secs(5));
        assert_eq!(link.due(secs(4)), vec![]);
        assert_eq!(link.due(secs(5)), vec![over()]);
        assert_eq!(link.due(secs(6)), vec![], "asked for once");
        // With a rate limit's wait at the same moment, both are asked for.
        link.bans_end_at(Some(secs(8)));
        link.rate_limited(secs(6), "first", Duration::from_secs(2), true);
        assert_eq!(link.next_deadline(), secs(8));
        let rest = EventSubStep::SubscribeRest {
            session_id: "s1".into(),
        };
        assert_eq!(link.due(secs(8)), vec![rest, over()]);
        // No ban: only the keepalive deadline.
        link.bans_end_at(None);
        assert_eq!(link.next_deadline(), secs(1 + 600 + 10));
    }

    #[test]
    fn no_welcome_in_time_ends_the_link() {
        let start = Instant::now();
        let mut link = EventSubLink::new(None, start);
        assert_eq!(
            link.due(start + WELCOME_TIMEOUT),
            vec![EventSubStep::End(ConnectionEnd::Lost(
                "no welcome from EventSub within 10s".into()
            ))]
        );
    }

    #[test]
    fn a_reconnect_waits_for_the_new_welcome_and_keeps_what_was_seen() {
        let start = Instant::now();
        let mut link = EventSubLink::new(Some(UserId::new("1001")), start);
        link.on_frame(start, &welcome("s1", 10));
        link.on_frame(start, &notification("n1", "1001", "hi"));
        assert_eq!(
            link.on_frame(start, &reconnect("ws://new/ws?x")),
            vec![EventSubStep::Reconnect {
                url: "ws://new/ws?x".into()
            }]
        );
        let moved = start + Duration::from_secs(1);
        link.reconnecting(moved);
        assert_eq!(link.next_deadline(), moved + WELCOME_TIMEOUT);
        // A second reconnect from the old connection while moving is ignored.
        assert_eq!(link.on_frame(moved, &reconnect("ws://other/ws")), vec![]);
        assert_eq!(
            link.on_frame(moved, &welcome("s1", 10)),
            vec![EventSubStep::CarriedOver]
        );
        // The old connection's last delivery, seen again on the new one: acted on once.
        assert_eq!(
            link.on_frame(moved, &notification("n1", "1001", "hi")),
            vec![]
        );
    }

    #[test]
    fn arbitrary_frames_never_panic_the_machine() {
        let frames = [
            "",
            "{",
            "[]",
            "null",
            "{\"metadata\":1}",
            "{\"metadata\":{\"message_type\":\"notification\"}}",
            "{\"metadata\":{\"message_type\":\"revocation\"},\"payload\":{\"subscription\":{}}}",
        ];
        for frame in frames {
            let mut link = EventSubLink::new(None, Instant::now());
            let _ = link.on_frame(Instant::now(), frame);
        }
    }

    #[test]
    fn silence_grace_is_half_the_window_within_bounds() {
        let grace_cases = [(1, 1), (10, 5), (20, 10), (360, 10)];
        for (keepalive, grace) in grace_cases {
            assert_eq!(
                silence_grace(Duration::from_secs(keepalive)),
                Duration::from_secs(grace)
            );
        }
    }
}
