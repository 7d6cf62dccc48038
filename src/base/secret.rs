//! `Secret`: a string that never shows itself in logs, panics or `Debug` output. Pure, no I/O.

use std::fmt;

/// A token or client secret.
///
/// `Debug` and `Display` print `[redacted]`, so a secret cannot leak through `{:?}` of a
/// struct that holds one, through a log line or through a panic message. The value is only
/// reachable through [`Secret::expose`], which makes every use easy to find.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret as given.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// Wraps an OAuth token, dropping the `oauth:` prefix that old token generators add.
    pub fn token(value: &str) -> Self {
        let trimmed = value.trim();
        let stripped = trimmed
            .get(..6)
            .filter(|prefix| prefix.eq_ignore_ascii_case("oauth:"))
            .map_or(trimmed, |_| &trimmed[6..]);
        Secret(stripped.to_string())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when no secret was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_strips_oauth_prefix_in_any_case() {
        let cases = [
            ("abc123", "abc123"),
            ("oauth:abc123", "abc123"),
            ("OAuth:abc123", "abc123"),
            ("  oauth:abc123 ", "abc123"),
            ("oauth", "oauth"),
            ("", ""),
            ("ö", "ö"),
        ];
        for (input, expected) in cases {
            assert_eq!(Secret::token(input).expose(), expected, "input {input:?}");
        }
    }

    #[test]
    fn debug_and_display_never_show_the_value() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(format!("{secret}"), "[redacted]");
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Holder {
            token: Secret,
        }
        let text = format!("{:?}", Holder { token: secret });
        assert!(!text.contains("hunter2"), "{text}");
    }
}
