//! Chat over EventSub (`channel.chat.message` on a WebSocket session) as a pure state
//! machine: the messages Twitch sends, read by `metadata.message_type`, and what each asks of
//! the connection, with the silence deadline (the welcome's keepalive window plus a grace),
//! duplicate suppression by message id and a `session_reconnect` hand-over (the color timer
//! is `chat::watch`'s, as for IRC). Also the names of EventSub's close codes. Pure: frames and `now` in, `EventSubStep`s out;
//! `chat::eventsub_connection` reads the sockets, calls Helix and carries the steps out.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::base::ids::UserId;
use crate::chat::link::ChatMachine;
use crate::config::ChatTransport;

/// The subscription type that carries chat messages, and its version.
pub const CHAT_MESSAGE_TYPE: &str = "channel.chat.message";
pub const CHAT_MESSAGE_VERSION: &str = "1";
/// The scope a user token needs for `channel.chat.message`.
pub const READ_CHAT_SCOPE: &str = "user:read:chat";
/// The keepalive windows Twitch grants, in seconds.
pub const KEEPALIVE_SECONDS_RANGE: (u64, u64) = (10, 600);
/// Twitch's window when a welcome names none.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(10);
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

/// The keepalive window to ask for, from the daemon's chat keepalive setting, within what
/// Twitch grants.
pub fn keepalive_seconds_for(keepalive: Duration) -> u64 {
    let (low, high) = KEEPALIVE_SECONDS_RANGE;
    keepalive.as_secs().clamp(low, high)
}

/// The URL to connect to: `base` with `keepalive_timeout_seconds` added unless it already
/// names one.
pub fn url_with_keepalive(base: &str, keepalive_seconds: u64) -> String {
    if base.contains("keepalive_timeout_seconds=") {
        return base.to_string();
    }
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}keepalive_timeout_seconds={keepalive_seconds}")
}

/// What EventSub close codes mean (as client libraries document them; Twitch's page names
/// them by number only).
pub fn close_code_name(code: u16) -> Option<&'static str> {
    let name = match code {
        4000 => "internal server error",
        4001 => "client sent inbound traffic",
        4002 => "client failed ping-pong",
        4003 => "connection unused",
        4004 => "reconnect grace time expired",
        4005 => "network timeout",
        4006 => "network error",
        4007 => "invalid reconnect",
        _ => return None,
    };
    Some(name)
}

/// The transport a chat thread uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Irc,
    EventSub,
}

/// Which transport to use for `configured`, given the scopes validation reported for the
/// token (`None`: not known); with the reason, for the log line that says which.
pub fn choose_transport(
    configured: ChatTransport,
    scopes: Option<&[String]>,
) -> (Transport, &'static str) {
    match (configured, scopes) {
        (ChatTransport::Irc, _) => (Transport::Irc, "chat_transport is irc"),
        (ChatTransport::EventSub, _) => (Transport::EventSub, "chat_transport is eventsub"),
        (ChatTransport::Auto, Some(scopes)) if scopes.iter().any(|s| s == READ_CHAT_SCOPE) => {
            (Transport::EventSub, "the token has user:read:chat")
        }
        (ChatTransport::Auto, Some(_)) => (
            Transport::Irc,
            "the token lacks user:read:chat; run `twitch-colorchanger auth` again to move to EventSub",
        ),
        (ChatTransport::Auto, None) => (
            Transport::Irc,
            "the token's scopes could not be checked yet",
        ),
    }
}

/// One chat message from a `channel.chat.message` notification, borrowing the frame's text
/// where it holds no escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage<'a> {
    pub broadcaster_user_id: Cow<'a, str>,
    pub broadcaster_login: Cow<'a, str>,
    pub chatter_user_id: Cow<'a, str>,
    pub text: Cow<'a, str>,
    /// The chat message's own id; in shared chat the source channel's id, so the copy seen
    /// in a second channel is recognised.
    pub chat_message_id: Option<Cow<'a, str>>,
}

/// One message from the EventSub server, borrowing from the frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message<'a> {
    Welcome {
        session_id: Cow<'a, str>,
        keepalive: Duration,
    },
    Keepalive,
    Notification {
        message_id: Cow<'a, str>,
        /// `None` for a subscription type we did not ask for.
        chat: Option<ChatMessage<'a>>,
    },
    Reconnect {
        url: Cow<'a, str>,
    },
    Revocation {
        broadcaster_user_id: Option<Cow<'a, str>>,
        status: Cow<'a, str>,
    },
    /// A message type this version does not know; ignored.
    Unknown {
        message_type: Cow<'a, str>,
    },
}

/// Why a frame is not an EventSub message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Not JSON, or an object where EventSub has none (or the other way round).
    Malformed,
    /// A field the message type requires is missing or not text.
    Missing(&'static str),
}

/// A JSON value read where EventSub has text or a whole number: the text (borrowed from the
/// frame unless it holds escapes), the number, or `Other` for a value of another kind, so
/// that a field of the wrong kind reads as missing rather than failing the frame.
#[derive(Debug, Default)]
enum Leaf<'a> {
    Text(Cow<'a, str>),
    Whole(u64),
    #[default]
    Other,
}

impl<'a> Leaf<'a> {
    fn text(self) -> Option<Cow<'a, str>> {
        match self {
            Leaf::Text(text) => Some(text),
            Leaf::Whole(_) | Leaf::Other => None,
        }
    }

    fn whole(&self) -> Option<u64> {
        match self {
            Leaf::Whole(number) => Some(*number),
            Leaf::Text(_) | Leaf::Other => None,
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Leaf<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LeafVisitor(PhantomData))
    }
}

struct LeafVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for LeafVisitor<'a> {
    type Value = Leaf<'a>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(Leaf::Text(Cow::Borrowed(text)))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Leaf::Text(Cow::Owned(text.to_string())))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Self::Value, E> {
        Ok(Leaf::Text(Cow::Owned(text)))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Leaf::Other)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Leaf::Other)
    }

    fn visit_u64<E: de::Error>(self, number: u64) -> Result<Self::Value, E> {
        Ok(Leaf::Whole(number))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Leaf::Other)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Leaf::Other)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Leaf::Other)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        Leaf::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Leaf::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Leaf::Other)
    }
}

// The parts of a frame that are read, as serde reads them straight from the text: no tree of
// the whole frame is built (a chat notification is a few dozen objects and strings, on every
// chat thread for every message in its channels). Everything else is skipped.

#[derive(Deserialize, Default)]
#[serde(default)]
struct Frame<'a> {
    #[serde(borrow)]
    metadata: Metadata<'a>,
    #[serde(borrow)]
    payload: Payload<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Metadata<'a> {
    #[serde(borrow)]
    message_type: Leaf<'a>,
    #[serde(borrow)]
    message_id: Leaf<'a>,
    #[serde(borrow)]
    subscription_type: Leaf<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Payload<'a> {
    #[serde(borrow)]
    session: Session<'a>,
    #[serde(borrow)]
    subscription: Subscription<'a>,
    #[serde(borrow)]
    event: Event<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Session<'a> {
    #[serde(borrow)]
    id: Leaf<'a>,
    #[serde(borrow)]
    keepalive_timeout_seconds: Leaf<'a>,
    #[serde(borrow)]
    reconnect_url: Leaf<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Subscription<'a> {
    #[serde(borrow, rename = "type")]
    kind: Leaf<'a>,
    #[serde(borrow)]
    status: Leaf<'a>,
    #[serde(borrow)]
    condition: Condition<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Condition<'a> {
    #[serde(borrow)]
    broadcaster_user_id: Leaf<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Event<'a> {
    #[serde(borrow)]
    broadcaster_user_id: Leaf<'a>,
    #[serde(borrow)]
    broadcaster_user_login: Leaf<'a>,
    #[serde(borrow)]
    chatter_user_id: Leaf<'a>,
    #[serde(borrow)]
    message_id: Leaf<'a>,
    #[serde(borrow)]
    source_message_id: Leaf<'a>,
    #[serde(borrow)]
    message: EventMessage<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct EventMessage<'a> {
    #[serde(borrow)]
    text: Leaf<'a>,
}

fn required<'a>(leaf: Leaf<'a>, name: &'static str) -> Result<Cow<'a, str>, ParseError> {
    leaf.text().ok_or(ParseError::Missing(name))
}

/// Reads one text frame. Never panics, whatever the frame holds; builds no JSON tree and
/// copies only text that holds escapes.
pub fn parse_message(frame: &str) -> Result<Message<'_>, ParseError> {
    let Frame { metadata, payload } =
        serde_json::from_str(frame).map_err(|_| ParseError::Malformed)?;
    let message_type = required(metadata.message_type, "metadata.message_type")?;
    let message = match message_type.as_ref() {
        "session_welcome" => Message::Welcome {
            session_id: required(payload.session.id, "payload.session.id")?,
            keepalive: payload
                .session
                .keepalive_timeout_seconds
                .whole()
                .map_or(DEFAULT_KEEPALIVE, Duration::from_secs),
        },
        "session_keepalive" => Message::Keepalive,
        "session_reconnect" => Message::Reconnect {
            url: required(
                payload.session.reconnect_url,
                "payload.session.reconnect_url",
            )?,
        },
        "notification" => {
            let message_id = required(metadata.message_id, "metadata.message_id")?;
            let subscription_type = metadata
                .subscription_type
                .text()
                .or(payload.subscription.kind.text());
            let chat = if subscription_type.as_deref() == Some(CHAT_MESSAGE_TYPE) {
                Some(chat_message(payload.event)?)
            } else {
                None
            };
            Message::Notification { message_id, chat }
        }
        "revocation" => Message::Revocation {
            broadcaster_user_id: payload.subscription.condition.broadcaster_user_id.text(),
            status: required(payload.subscription.status, "payload.subscription.status")?,
        },
        _ => Message::Unknown { message_type },
    };
    Ok(message)
}

fn chat_message(event: Event<'_>) -> Result<ChatMessage<'_>, ParseError> {
    Ok(ChatMessage {
        broadcaster_user_id: required(event.broadcaster_user_id, "broadcaster_user_id")?,
        broadcaster_login: required(event.broadcaster_user_login, "broadcaster_user_login")?,
        chatter_user_id: required(event.chatter_user_id, "chatter_user_id")?,
        text: required(event.message.text, "message.text")?,
        chat_message_id: event.source_message_id.text().or(event.message_id.text()),
    })
}

/// What a revocation means for the subscription it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationVerdict {
    /// The user withdrew the app's authorization: a login problem.
    LoginProblem,
    /// The channel or user no longer exists: nothing to subscribe to.
    ChannelGone,
    /// Twitch removed this subscription version: this daemon needs an update.
    VersionGone,
    /// Anything else: subscribe again.
    Resubscribe,
}

pub fn revocation_verdict(status: &str) -> RevocationVerdict {
    match status {
        "authorization_revoked" => RevocationVerdict::LoginProblem,
        "user_removed" => RevocationVerdict::ChannelGone,
        "version_removed" => RevocationVerdict::VersionGone,
        _ => RevocationVerdict::Resubscribe,
    }
}

/// What the connection must carry out, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventSubStep {
    /// A new session was welcomed: subscribe the channels on it.
    Subscribe { session_id: String },
    /// The wait after Twitch rate-limited a subscription is over: subscribe the channels
    /// still left on the session.
    SubscribeRest { session_id: String },
    /// The session moved to the new connection: close the old one (subscriptions came along).
    CarriedOver,
    /// Twitch moves the session: connect to `url` and wait there for the welcome.
    Reconnect { url: String },
    /// The user sent a message from some client, in the channel with this login.
    OwnMessage { channel: String, text: String },
    /// A subscription was revoked; the verdict says what to do about the channel.
    Revoked {
        broadcaster_user_id: Option<String>,
        status: String,
        verdict: RevocationVerdict,
    },
    /// A frame that is no EventSub message, for a debug line.
    Unreadable(ParseError),
    /// The connection is over.
    End(EventSubEnd),
}

/// Why the machine ended a connection that the socket still held open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventSubEnd {
    /// No welcome within this long after connecting.
    NoWelcome(Duration),
    /// Nothing arrived for this long, past the keepalive window and its grace.
    Silence(Duration),
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
        }
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

    /// When to subscribe the rest: only on a welcomed session (a `session_reconnect` in
    /// between waits for the new welcome).
    fn retry_deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Welcomed { .. } => self.retry_at,
            Phase::AwaitingWelcome { .. } => None,
        }
    }
}

impl ChatMachine for EventSubLink {
    type Step = EventSubStep;

    /// The earliest moment `due` has something to do: the welcome's or the keepalive's
    /// deadline, or the end of a rate limit's wait.
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
                        channel: chat.broadcaster_login.into_owned(),
                        text: chat.text.into_owned(),
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
                Phase::AwaitingWelcome { .. } => EventSubEnd::NoWelcome(WELCOME_TIMEOUT),
                Phase::Welcomed { .. } => {
                    EventSubEnd::Silence(now.saturating_duration_since(self.last_traffic))
                }
            };
            return vec![EventSubStep::End(end)];
        }
        match (&self.phase, self.retry_deadline()) {
            (Phase::Welcomed { session_id, .. }, Some(retry)) if now >= retry => {
                self.retry_at = None;
                vec![EventSubStep::SubscribeRest {
                    session_id: session_id.clone(),
                }]
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn welcome(session_id: &str, keepalive: u64) -> String {
        json!({"metadata": {"message_id": "w", "message_type": "session_welcome",
                            "message_timestamp": "2023-07-19T14:56:51.634234626Z"},
               "payload": {"session": {"id": session_id, "status": "connected",
                                       "keepalive_timeout_seconds": keepalive,
                                       "reconnect_url": null}}})
        .to_string()
    }

    fn keepalive() -> String {
        json!({"metadata": {"message_id": "k", "message_type": "session_keepalive"},
               "payload": {}})
        .to_string()
    }

    fn notification(message_id: &str, chatter: &str, text: &str) -> String {
        notification_with(
            message_id,
            chatter,
            text,
            &format!("chat-{message_id}"),
            None,
        )
    }

    fn notification_with(
        message_id: &str,
        chatter: &str,
        text: &str,
        chat_id: &str,
        source_id: Option<&str>,
    ) -> String {
        json!({"metadata": {"message_id": message_id, "message_type": "notification",
                            "subscription_type": "channel.chat.message",
                            "subscription_version": "1"},
               "payload": {"subscription": {"type": "channel.chat.message"},
                           "event": {"broadcaster_user_id": "77",
                                     "broadcaster_user_login": "somechannel",
                                     "broadcaster_user_name": "SomeChannel",
                                     "chatter_user_id": chatter,
                                     "chatter_user_login": "x",
                                     "message_id": chat_id,
                                     "source_message_id": source_id,
                                     "message": {"text": text, "fragments": []}}}})
        .to_string()
    }

    fn reconnect(url: &str) -> String {
        json!({"metadata": {"message_id": "r", "message_type": "session_reconnect"},
               "payload": {"session": {"id": "s1", "status": "reconnecting",
                                       "reconnect_url": url}}})
        .to_string()
    }

    fn revocation(status: &str) -> String {
        json!({"metadata": {"message_id": "v", "message_type": "revocation",
                            "subscription_type": "channel.chat.message"},
               "payload": {"subscription": {"status": status,
                                            "condition": {"broadcaster_user_id": "77"}}}})
        .to_string()
    }

    #[test]
    fn messages_parse_by_their_type() {
        let chat = |text: &'static str| ChatMessage {
            broadcaster_user_id: "77".into(),
            broadcaster_login: "somechannel".into(),
            chatter_user_id: "1001".into(),
            text: text.into(),
            chat_message_id: Some("chat-n1".into()),
        };
        let cases: Vec<(String, Result<Message, ParseError>)> = vec![
            (
                welcome("s1", 30),
                Ok(Message::Welcome {
                    session_id: "s1".into(),
                    keepalive: Duration::from_secs(30),
                }),
            ),
            (
                json!({"metadata": {"message_type": "session_welcome"},
                       "payload": {"session": {"id": "s2"}}})
                .to_string(),
                Ok(Message::Welcome {
                    session_id: "s2".into(),
                    keepalive: DEFAULT_KEEPALIVE,
                }),
            ),
            (keepalive(), Ok(Message::Keepalive)),
            (
                notification("n1", "1001", "hello"),
                Ok(Message::Notification {
                    message_id: "n1".into(),
                    chat: Some(chat("hello")),
                }),
            ),
            (
                json!({"metadata": {"message_id": "n2", "message_type": "notification",
                                    "subscription_type": "channel.follow"},
                       "payload": {"event": {}}})
                .to_string(),
                Ok(Message::Notification {
                    message_id: "n2".into(),
                    chat: None,
                }),
            ),
            (
                reconnect("wss://elsewhere/ws"),
                Ok(Message::Reconnect {
                    url: "wss://elsewhere/ws".into(),
                }),
            ),
            (
                revocation("authorization_revoked"),
                Ok(Message::Revocation {
                    broadcaster_user_id: Some("77".into()),
                    status: "authorization_revoked".into(),
                }),
            ),
            (
                json!({"metadata": {"message_type": "session_future"}}).to_string(),
                Ok(Message::Unknown {
                    message_type: "session_future".into(),
                }),
            ),
            ("not json".into(), Err(ParseError::Malformed)),
            (
                json!({"payload": {}}).to_string(),
                Err(ParseError::Missing("metadata.message_type")),
            ),
            (
                json!({"metadata": {"message_type": "session_reconnect"},
                       "payload": {"session": {"reconnect_url": null}}})
                .to_string(),
                Err(ParseError::Missing("payload.session.reconnect_url")),
            ),
            (
                json!({"metadata": {"message_id": "n3", "message_type": "notification",
                                    "subscription_type": "channel.chat.message"},
                       "payload": {"event": {"broadcaster_user_id": 77}}})
                .to_string(),
                Err(ParseError::Missing("broadcaster_user_id")),
            ),
        ];
        for (frame, expected) in cases {
            assert_eq!(parse_message(&frame), expected, "{frame}");
        }
    }

    #[test]
    fn text_is_borrowed_from_the_frame_unless_it_holds_escapes() {
        let plain = notification("n1", "1001", "hello");
        let Ok(Message::Notification {
            chat: Some(chat), ..
        }) = parse_message(&plain)
        else {
            panic!("a chat notification: {plain}");
        };
        assert!(matches!(chat.text, Cow::Borrowed("hello")));
        assert!(matches!(chat.chatter_user_id, Cow::Borrowed("1001")));

        let escaped = notification("n2", "1001", "say \"hi\" \u{e9}");
        let Ok(Message::Notification {
            chat: Some(chat), ..
        }) = parse_message(&escaped)
        else {
            panic!("a chat notification: {escaped}");
        };
        assert_eq!(chat.text, "say \"hi\" \u{e9}");

        // A keepalive window that is no whole number is Twitch's default.
        let odd_window = r#"{"metadata":{"message_type":"session_welcome"},
                             "payload":{"session":{"id":"s","keepalive_timeout_seconds":-1.5}}}"#;
        assert_eq!(
            parse_message(odd_window),
            Ok(Message::Welcome {
                session_id: "s".into(),
                keepalive: DEFAULT_KEEPALIVE
            })
        );

        // Objects where EventSub has text, and text where it has objects.
        let cases = [
            (r#"{"metadata":1}"#, ParseError::Malformed),
            (
                r#"{"metadata":{"message_type":7}}"#,
                ParseError::Missing("metadata.message_type"),
            ),
            (
                r#"{"metadata":{"message_type":{"a":[1]}},"payload":{}}"#,
                ParseError::Missing("metadata.message_type"),
            ),
            (
                r#"{"metadata":{"message_type":"session_welcome"},"payload":{"session":[]}}"#,
                ParseError::Missing("payload.session.id"),
            ),
        ];
        for (frame, expected) in cases {
            assert_eq!(parse_message(frame), Err(expected), "{frame}");
        }
    }

    #[test]
    fn arbitrary_frames_never_panic() {
        let frames = [
            "", "{", "[]", "null", "{\"metadata\":1}", "{\"metadata\":{\"message_type\":7}}",
            "{\"metadata\":{\"message_type\":\"notification\"}}",
            "{\"metadata\":{\"message_type\":\"notification\",\"message_id\":\"a\",\"subscription_type\":\"channel.chat.message\"},\"payload\":[]}",
            "{\"metadata\":{\"message_type\":\"revocation\"},\"payload\":{\"subscription\":{}}}",
        ];
        for frame in frames {
            let mut link = EventSubLink::new(None, Instant::now());
            let _ = link.on_frame(Instant::now(), frame);
        }
    }

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
                vec![EventSubStep::End(EventSubEnd::Silence(
                    Duration::from_secs(30),
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
    fn no_welcome_in_time_ends_the_link() {
        let start = Instant::now();
        let mut link = EventSubLink::new(None, start);
        assert_eq!(
            link.due(start + WELCOME_TIMEOUT),
            vec![EventSubStep::End(EventSubEnd::NoWelcome(WELCOME_TIMEOUT))]
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
    fn revocations_say_what_to_do() {
        let cases = [
            ("authorization_revoked", RevocationVerdict::LoginProblem),
            ("user_removed", RevocationVerdict::ChannelGone),
            ("version_removed", RevocationVerdict::VersionGone),
            (
                "notification_failures_exceeded",
                RevocationVerdict::Resubscribe,
            ),
            ("", RevocationVerdict::Resubscribe),
        ];
        for (status, expected) in cases {
            assert_eq!(revocation_verdict(status), expected, "{status}");
        }
    }

    #[test]
    fn auto_follows_the_scope() {
        let scopes = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let with = scopes(&["chat:read", "user:read:chat", "user:manage:chat_color"]);
        let without = scopes(&["chat:read", "user:manage:chat_color"]);
        let cases: Vec<(ChatTransport, Option<&[String]>, Transport)> = vec![
            (ChatTransport::Auto, Some(&with), Transport::EventSub),
            (ChatTransport::Auto, Some(&without), Transport::Irc),
            (ChatTransport::Auto, None, Transport::Irc),
            (ChatTransport::Irc, Some(&with), Transport::Irc),
            (ChatTransport::EventSub, Some(&without), Transport::EventSub),
            (ChatTransport::EventSub, None, Transport::EventSub),
        ];
        for (configured, scopes, expected) in cases {
            assert_eq!(
                choose_transport(configured, scopes).0,
                expected,
                "{configured:?} {scopes:?}"
            );
        }
    }

    #[test]
    fn close_codes_have_names() {
        let cases = [
            (4000, Some("internal server error")),
            (4001, Some("client sent inbound traffic")),
            (4003, Some("connection unused")),
            (4007, Some("invalid reconnect")),
            (1000, None),
            (4008, None),
        ];
        for (code, expected) in cases {
            assert_eq!(close_code_name(code), expected, "{code}");
        }
    }

    #[test]
    fn windows_and_urls() {
        let grace_cases = [(1, 1), (10, 5), (20, 10), (360, 10)];
        for (keepalive, grace) in grace_cases {
            assert_eq!(
                silence_grace(Duration::from_secs(keepalive)),
                Duration::from_secs(grace)
            );
        }
        let keepalive_cases = [(0, 10), (1, 10), (360, 360), (3600, 600)];
        for (setting, asked) in keepalive_cases {
            assert_eq!(keepalive_seconds_for(Duration::from_secs(setting)), asked);
        }
        let url_cases = [
            ("wss://e/ws", "wss://e/ws?keepalive_timeout_seconds=30"),
            (
                "wss://e/ws?a=1",
                "wss://e/ws?a=1&keepalive_timeout_seconds=30",
            ),
            (
                "wss://e/ws?keepalive_timeout_seconds=99",
                "wss://e/ws?keepalive_timeout_seconds=99",
            ),
        ];
        for (base, expected) in url_cases {
            assert_eq!(url_with_keepalive(base, 30), expected);
        }
    }
}
