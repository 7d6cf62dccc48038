//! Chat commands a user gives the daemon from their own messages (`ccd`, `cce`,
//! `ccc <color>`). Pure, no I/O: this only reads the text; whether the sender is the user,
//! and whether a hex color is allowed for them, is decided by the caller.

use crate::color::{parse_user_color, Color};

/// What a command asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChatCommand {
    /// `ccd`: stop automatic color changes.
    Disable,
    /// `cce`: resume automatic color changes.
    Enable,
    /// `ccc <color>`: set this color now, even while disabled.
    SetColor(Color),
}

/// The reading of one chat message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChatCommandParse {
    /// An ordinary message (including `cccool` or `ccd please`).
    NotACommand,
    Command(ChatCommand),
    /// Meant as a command but unusable, such as `ccc nonsense`; `reason` is a short
    /// lowercase sentence for the log.
    Invalid {
        reason: String,
    },
}

/// Characters some chat clients append so Twitch accepts the same message twice within
/// 30 seconds (Chatterino and 7TV add U+E0000, older versions U+034F), plus zero-width
/// characters. A user repeating `ccd` must still be understood, so these are ignored at the
/// ends of a message.
fn is_invisible_filler(character: char) -> bool {
    character.is_whitespace()
        || matches!(
            character,
            '\u{E0000}'
                | '\u{034F}'
                | '\u{200B}'
                | '\u{200C}'
                | '\u{200D}'
                | '\u{2060}'
                | '\u{FEFF}'
        )
}

/// Reads a whole chat message as a command. The message must be exactly the command:
/// case-insensitive, surrounding spaces ignored, and for `ccc` the rest of the message is
/// the color (see [`parse_user_color`]).
pub fn parse_chat_command(text: &str) -> ChatCommandParse {
    let text = text.trim_matches(is_invisible_filler);
    let (word, rest) = match text.split_once(char::is_whitespace) {
        Some((word, rest)) => (word, rest.trim_matches(is_invisible_filler)),
        None => (text, ""),
    };
    if word.eq_ignore_ascii_case("ccd") || word.eq_ignore_ascii_case("cce") {
        if !rest.is_empty() {
            return ChatCommandParse::NotACommand;
        }
        let command = if word.eq_ignore_ascii_case("ccd") {
            ChatCommand::Disable
        } else {
            ChatCommand::Enable
        };
        return ChatCommandParse::Command(command);
    }
    if !word.eq_ignore_ascii_case("ccc") {
        return ChatCommandParse::NotACommand;
    }
    if rest.is_empty() {
        return ChatCommandParse::Invalid {
            reason: "ccc needs a color, such as ccc sea_green or ccc #A1B2C3".to_string(),
        };
    }
    match parse_user_color(rest) {
        Ok(color) => ChatCommandParse::Command(ChatCommand::SetColor(color)),
        Err(error) => ChatCommandParse::Invalid {
            reason: error.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::color::{NamedColor, Rgb};

    fn set(color: Color) -> ChatCommandParse {
        ChatCommandParse::Command(ChatCommand::SetColor(color))
    }

    #[test]
    fn command_table() {
        let cases = [
            ("ccd", ChatCommandParse::Command(ChatCommand::Disable)),
            ("CCD", ChatCommandParse::Command(ChatCommand::Disable)),
            ("  ccd  ", ChatCommandParse::Command(ChatCommand::Disable)),
            (
                "ccd \u{E0000}",
                ChatCommandParse::Command(ChatCommand::Disable),
            ),
            ("cce", ChatCommandParse::Command(ChatCommand::Enable)),
            ("Cce", ChatCommandParse::Command(ChatCommand::Enable)),
            ("\tcce\r\n", ChatCommandParse::Command(ChatCommand::Enable)),
            ("ccc red", set(Color::Named(NamedColor::Red))),
            ("CCC RED", set(Color::Named(NamedColor::Red))),
            ("ccc Sea_Green", set(Color::Named(NamedColor::SeaGreen))),
            ("ccc seagreen", set(Color::Named(NamedColor::SeaGreen))),
            ("ccc   sea green  ", set(Color::Named(NamedColor::SeaGreen))),
            ("ccc #a1b2c3", set(Color::Hex(Rgb::new(0xA1, 0xB2, 0xC3)))),
            ("ccc A1B2C3", set(Color::Hex(Rgb::new(0xA1, 0xB2, 0xC3)))),
            ("ccc ABC", set(Color::Hex(Rgb::new(0xAA, 0xBB, 0xCC)))),
            ("ccc #abc", set(Color::Hex(Rgb::new(0xAA, 0xBB, 0xCC)))),
            ("ccc ccc", set(Color::Hex(Rgb::new(0xCC, 0xCC, 0xCC)))),
            ("ccc red \u{E0000}", set(Color::Named(NamedColor::Red))),
            ("", ChatCommandParse::NotACommand),
            ("   ", ChatCommandParse::NotACommand),
            ("cccool", ChatCommandParse::NotACommand),
            ("ccdd", ChatCommandParse::NotACommand),
            ("ccd please", ChatCommandParse::NotACommand),
            ("cce now", ChatCommandParse::NotACommand),
            ("please ccd", ChatCommandParse::NotACommand),
            ("hello world", ChatCommandParse::NotACommand),
            ("@ccd", ChatCommandParse::NotACommand),
            ("ссd", ChatCommandParse::NotACommand), // Cyrillic "сс".
            ("ccc一", ChatCommandParse::NotACommand),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_chat_command(text), expected, "text {text:?}");
        }
    }

    #[test]
    fn invalid_set_color_table() {
        let cases = [
            (
                "ccc",
                "ccc needs a color, such as ccc sea_green or ccc #A1B2C3",
            ),
            (
                "  CCC  ",
                "ccc needs a color, such as ccc sea_green or ccc #A1B2C3",
            ),
            (
                "ccc \u{E0000}",
                "ccc needs a color, such as ccc sea_green or ccc #A1B2C3",
            ),
            (
                "ccc nonsense",
                "\"nonsense\" is neither a color name nor #RRGGBB or #RGB hex",
            ),
            (
                "ccc #12345",
                "\"#12345\" is neither a color name nor #RRGGBB or #RGB hex",
            ),
            (
                "ccc red blue",
                "\"red blue\" is neither a color name nor #RRGGBB or #RGB hex",
            ),
        ];
        for (text, reason) in cases {
            assert_eq!(
                parse_chat_command(text),
                ChatCommandParse::Invalid {
                    reason: reason.to_string()
                },
                "text {text:?}"
            );
        }
    }
}
