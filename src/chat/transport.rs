//! Which transport a user's chat runs over (IRC or EventSub), from the configured
//! `chat_transport` and, under `auto`, the token's scopes. Pure.

use crate::chat::eventsub::message::READ_CHAT_SCOPE;
use crate::config::{ChatTransport, MAX_EVENTSUB_CHANNELS};

/// The transport a chat thread uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Irc,
    EventSub,
}

/// Which transport to use for `configured` and `n_channels` channels, given the scopes
/// validation reported for the token (`None`: not known); with the reason, for the log line
/// that says which. Under `auto`, more channels than one EventSub session holds go over IRC:
/// spreading them over Twitch's 3 sessions per app and user would leave no session for
/// anything else of the user's, and IRC reads any number of channels (config check refuses
/// the same count under `eventsub`).
pub fn choose_transport(
    configured: ChatTransport,
    scopes: Option<&[String]>,
    n_channels: usize,
) -> (Transport, &'static str) {
    match (configured, scopes) {
        (ChatTransport::Irc, _) => (Transport::Irc, "chat_transport is irc"),
        (ChatTransport::EventSub, _) => (Transport::EventSub, "chat_transport is eventsub"),
        (ChatTransport::Auto, _) if n_channels > MAX_EVENTSUB_CHANNELS => (
            Transport::Irc,
            "more channels than the 300 one EventSub session may subscribe",
        ),
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
        // (configured, scopes, channels, transport)
        let cases: Vec<(ChatTransport, Option<&[String]>, usize, Transport)> = vec![
            (ChatTransport::Auto, Some(&with), 1, Transport::EventSub),
            (ChatTransport::Auto, Some(&with), 300, Transport::EventSub),
            (ChatTransport::Auto, Some(&with), 301, Transport::Irc),
            (ChatTransport::Auto, Some(&without), 1, Transport::Irc),
            (ChatTransport::Auto, None, 1, Transport::Irc),
            (ChatTransport::Irc, Some(&with), 1, Transport::Irc),
            (
                ChatTransport::EventSub,
                Some(&without),
                1,
                Transport::EventSub,
            ),
            (ChatTransport::EventSub, None, 1, Transport::EventSub),
        ];
        for (configured, scopes, n_channels, expected) in cases {
            assert_eq!(
                choose_transport(configured, scopes, n_channels).0,
                expected,
                "{configured:?} {scopes:?}"
            );
        }
    }
}
