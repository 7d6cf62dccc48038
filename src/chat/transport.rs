//! Which transport a user's chat runs over (IRC or EventSub), from the configured
//! `chat_transport` and, under `auto`, the token's scopes. Pure.

use crate::chat::eventsub::message::READ_CHAT_SCOPE;
use crate::config::ChatTransport;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
