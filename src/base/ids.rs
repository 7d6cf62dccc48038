//! Newtypes for Twitch identities: `Login` (lowercase user name) and `UserId`. Pure, no I/O.

use std::fmt;

/// A Twitch login name: lowercase ASCII, as used in `NICK` and channel names.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Login(String);

impl Login {
    /// Normalises a user-written name: trims spaces, drops a leading `#`, lowercases.
    pub fn new(name: &str) -> Self {
        Login(name.trim().trim_start_matches('#').to_lowercase())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Twitch user id, the `user-id` tag of IRC lines and `user_id` of Helix.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UserId(String);

impl UserId {
    pub fn new(id: impl Into<String>) -> Self {
        UserId(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_is_normalised() {
        let cases = [
            ("Alice", "alice"),
            ("#Bob", "bob"),
            ("  carol ", "carol"),
            ("", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(Login::new(input).as_str(), expected, "input {input:?}");
        }
    }
}
