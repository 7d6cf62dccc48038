//! What the EventSub WebSocket server sends, read by `metadata.message_type` (welcome,
//! keepalive, notification, reconnect, revocation), what a revocation status means, the names
//! of EventSub's close codes and the keepalive window asked for in the URL. Pure and sans-IO:
//! frames in, typed messages out; no frame, however malformed, panics anything here.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// The subscription type that carries chat messages, and its version.
pub const CHAT_MESSAGE_TYPE: &str = "channel.chat.message";
pub const CHAT_MESSAGE_VERSION: &str = "1";
/// The scope a user token needs for `channel.chat.message`.
pub const READ_CHAT_SCOPE: &str = "user:read:chat";
/// The keepalive windows Twitch grants, in seconds.
pub const KEEPALIVE_SECONDS_RANGE: (u64, u64) = (10, 600);
/// Twitch's window when a welcome names none.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(10);

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

/// One chat message from a `channel.chat.message` notification, borrowing the frame's text
/// where it holds no escapes. Only the chatter's id is required: it decides whether the
/// message is the user's own. The text matters only for commands (without it the message
/// still asks for an automatic change), the channel only for the log; a notification with
/// either missing or `null` is still read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage<'a> {
    pub broadcaster_user_id: Option<Cow<'a, str>>,
    pub broadcaster_login: Option<Cow<'a, str>>,
    pub chatter_user_id: Cow<'a, str>,
    pub text: Option<Cow<'a, str>>,
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
        broadcaster_user_id: event.broadcaster_user_id.text(),
        broadcaster_login: event.broadcaster_user_login.text(),
        chatter_user_id: required(event.chatter_user_id, "chatter_user_id")?,
        text: event.message.text.text(),
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
    /// The user may not read this channel's chat now (`chat_user_banned`, or
    /// `moderator_removed` for a subscription that needs the role): subscribing again at once
    /// would be revoked again.
    Banned,
    /// Anything else: subscribe again.
    Resubscribe,
}

pub fn revocation_verdict(status: &str) -> RevocationVerdict {
    match status {
        "authorization_revoked" => RevocationVerdict::LoginProblem,
        "user_removed" => RevocationVerdict::ChannelGone,
        "version_removed" => RevocationVerdict::VersionGone,
        "chat_user_banned" | "moderator_removed" => RevocationVerdict::Banned,
        _ => RevocationVerdict::Resubscribe,
    }
}
#[cfg(test)]
pub(crate) mod fixtures {
    //! Frames as Twitch sends them, for the tests of this folder.
    use serde_json::json;

    pub(crate) fn welcome(session_id: &str, keepalive: u64) -> String {
        json!({"metadata": {"message_id": "w", "message_type": "session_welcome",
                            "message_timestamp": "2023-07-19T14:56:51.634234626Z"},
               "payload": {"session": {"id": session_id, "status": "connected",
                                       "keepalive_timeout_seconds": keepalive,
                                       "reconnect_url": null}}})
        .to_string()
    }

    pub(crate) fn keepalive() -> String {
        json!({"metadata": {"message_id": "k", "message_type": "session_keepalive"},
               "payload": {}})
        .to_string()
    }

    pub(crate) fn notification(message_id: &str, chatter: &str, text: &str) -> String {
        notification_with(
            message_id,
            chatter,
            text,
            &format!("chat-{message_id}"),
            None,
        )
    }

    pub(crate) fn notification_with(
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

    pub(crate) fn reconnect(url: &str) -> String {
        json!({"metadata": {"message_id": "r", "message_type": "session_reconnect"},
               "payload": {"session": {"id": "s1", "status": "reconnecting",
                                       "reconnect_url": url}}})
        .to_string()
    }

    pub(crate) fn revocation(status: &str) -> String {
        json!({"metadata": {"message_id": "v", "message_type": "revocation",
                            "subscription_type": "channel.chat.message"},
               "payload": {"subscription": {"status": status,
                                            "condition": {"broadcaster_user_id": "77"}}}})
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_parse_by_their_type() {
        let chat = |text: &'static str| ChatMessage {
            broadcaster_user_id: Some("77".into()),
            broadcaster_login: Some("somechannel".into()),
            chatter_user_id: "1001".into(),
            text: Some(text.into()),
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
                       "payload": {"event": {"broadcaster_user_id": "77"}}})
                .to_string(),
                Err(ParseError::Missing("chatter_user_id")),
            ),
            // Only the chatter is required (issue 20): nulls and numbers elsewhere are None.
            (
                json!({"metadata": {"message_id": "n4", "message_type": "notification",
                                    "subscription_type": "channel.chat.message"},
                       "payload": {"event": {"broadcaster_user_id": 77,
                                             "broadcaster_user_login": null,
                                             "chatter_user_id": "1001",
                                             "message": {"text": null}}}})
                .to_string(),
                Ok(Message::Notification {
                    message_id: "n4".into(),
                    chat: Some(ChatMessage {
                        broadcaster_user_id: None,
                        broadcaster_login: None,
                        chatter_user_id: "1001".into(),
                        text: None,
                        chat_message_id: None,
                    }),
                }),
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
        assert!(matches!(chat.text, Some(Cow::Borrowed("hello"))));
        assert!(matches!(chat.chatter_user_id, Cow::Borrowed("1001")));

        let escaped = notification("n2", "1001", "say \"hi\" \u{e9}");
        let Ok(Message::Notification {
            chat: Some(chat), ..
        }) = parse_message(&escaped)
        else {
            panic!("a chat notification: {escaped}");
        };
        assert_eq!(chat.text.as_deref(), Some("say \"hi\" \u{e9}"));

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
            let _ = parse_message(frame);
        }
    }

    #[test]
    fn revocations_say_what_to_do() {
        let cases = [
            ("authorization_revoked", RevocationVerdict::LoginProblem),
            ("user_removed", RevocationVerdict::ChannelGone),
            ("version_removed", RevocationVerdict::VersionGone),
            ("chat_user_banned", RevocationVerdict::Banned),
            ("moderator_removed", RevocationVerdict::Banned),
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
