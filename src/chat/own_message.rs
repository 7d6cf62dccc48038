//! What one of the user's own chat messages asks for, whichever transport delivered it: a
//! color change, a chat command (`ccd`, `cce`, `ccc <color>`) or nothing. Pure: text and the
//! user's flags in, a decision out; `chat::thread` carries it out.

use crate::chat::command::{parse_chat_command, ChatCommand, ChatCommandParse};
use crate::color::ChangeRequest;

/// What the daemon does about one of the user's own messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnMessageDecision {
    /// Change the color (an ordinary message while enabled, or `ccc <color>`).
    Change(ChangeRequest),
    /// `ccd` / `cce`: turn automatic changes off or on (and save that).
    SetEnabled(bool),
    /// A command that cannot be obeyed; the text says why, for the log.
    Refuse(String),
    /// Nothing: an ordinary message while automatic changes are off.
    Ignore,
}

/// Decides what an own message asks for. Commands are obeyed even while automatic changes
/// are off, and a command never also triggers an automatic change.
pub fn decide_own_message(text: &str, enabled: bool, prime_or_turbo: bool) -> OwnMessageDecision {
    match parse_chat_command(text) {
        ChatCommandParse::NotACommand if enabled => OwnMessageDecision::Change(ChangeRequest::Auto),
        ChatCommandParse::NotACommand => OwnMessageDecision::Ignore,
        ChatCommandParse::Command(ChatCommand::Disable) => OwnMessageDecision::SetEnabled(false),
        ChatCommandParse::Command(ChatCommand::Enable) => OwnMessageDecision::SetEnabled(true),
        ChatCommandParse::Command(ChatCommand::SetColor(color))
            if color.is_hex() && !prime_or_turbo =>
        {
            OwnMessageDecision::Refuse(format!(
                "ccc {color} refused: hex colors need Turbo or Prime; use one of the named colors"
            ))
        }
        ChatCommandParse::Command(ChatCommand::SetColor(color)) => {
            OwnMessageDecision::Change(ChangeRequest::Set(color))
        }
        ChatCommandParse::Invalid { reason } => OwnMessageDecision::Refuse(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_messages_become_changes_commands_or_nothing() {
        use crate::color::{Color, NamedColor, Rgb};
        let hex = Color::Hex(Rgb {
            r: 0xA1,
            g: 0xB2,
            b: 0xC3,
        });
        let red = Color::Named(NamedColor::Red);
        let auto = OwnMessageDecision::Change(ChangeRequest::Auto);
        let cases: Vec<(&str, bool, bool, OwnMessageDecision)> = vec![
            ("hello", true, true, auto.clone()),
            ("hello", false, true, OwnMessageDecision::Ignore),
            ("cccool", true, false, auto.clone()),
            ("ccd", true, true, OwnMessageDecision::SetEnabled(false)),
            ("  CCD ", false, true, OwnMessageDecision::SetEnabled(false)),
            ("cce", false, true, OwnMessageDecision::SetEnabled(true)),
            ("ccd please", true, true, auto.clone()),
            (
                "ccc red",
                false,
                false,
                OwnMessageDecision::Change(ChangeRequest::Set(red)),
            ),
            (
                "ccc #a1b2c3",
                true,
                true,
                OwnMessageDecision::Change(ChangeRequest::Set(hex)),
            ),
        ];
        for (text, enabled, prime, expected) in cases {
            assert_eq!(
                decide_own_message(text, enabled, prime),
                expected,
                "{text:?} enabled={enabled} prime={prime}"
            );
        }
        for (text, prime) in [
            ("ccc #abcdef", false),
            ("ccc nonsense", true),
            ("ccc", true),
        ] {
            assert!(
                matches!(
                    decide_own_message(text, true, prime),
                    OwnMessageDecision::Refuse(_)
                ),
                "{text:?}"
            );
        }
    }
}
