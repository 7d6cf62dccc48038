//! The process environment as the binary reads it, from `std::env::vars_os` so that no
//! byte sequence panics: every variable whose name and value are UTF-8 as text, the path
//! variables whatever their bytes, and the names of our variables that are not UTF-8 (an
//! error once a command needs the environment). Pure: the caller passes the variables in.

use std::collections::{BTreeSet, HashMap};
use std::ffi::{OsStr, OsString};

/// The variables whose value is a path, used as a path whatever its bytes.
pub const PATH_VARIABLES: [&str; 2] = ["TWITCH_CONF_FILE", "TWITCH_STATUS_FILE"];

/// True for a variable the binary reads: the `TWITCH_` names (the fixed ones and the
/// per-user `TWITCH_*_N` the config reads), `USE_RANDOM_COLORS_N`, `LOG_LEVEL` and `DEBUG`.
/// Any other variable is ignored, whatever its bytes.
pub fn is_ours(name: &str) -> bool {
    name.starts_with("TWITCH_")
        || name.starts_with("USE_RANDOM_COLORS_")
        || name == "LOG_LEVEL"
        || name == "DEBUG"
}

/// The environment, read once. Holds tokens from `TWITCH_*_N`, so it has no `Debug`.
#[derive(Clone, Default)]
pub struct Environment {
    text: HashMap<String, String>,
    paths: HashMap<&'static str, OsString>,
    not_utf8: BTreeSet<String>,
}

impl Environment {
    /// Sorts the variables: text, paths, and ours that are not UTF-8. A name that is not
    /// UTF-8 is not one of ours and is dropped.
    pub fn from_vars(vars: impl IntoIterator<Item = (OsString, OsString)>) -> Environment {
        let mut environment = Environment::default();
        for (name, value) in vars {
            let Ok(name) = name.into_string() else {
                continue;
            };
            if let Some(path_name) = PATH_VARIABLES.iter().find(|known| **known == name) {
                environment.paths.insert(path_name, value.clone());
            }
            match value.into_string() {
                Ok(value) => {
                    environment.text.insert(name, value);
                }
                Err(_) if is_ours(&name) && !PATH_VARIABLES.contains(&name.as_str()) => {
                    environment.not_utf8.insert(name);
                }
                Err(_) => {}
            }
        }
        environment
    }

    /// An environment of text variables, for tests and callers that hold text.
    pub fn from_text(vars: &HashMap<String, String>) -> Environment {
        Environment::from_vars(
            vars.iter()
                .map(|(name, value)| (OsString::from(name), OsString::from(value))),
        )
    }

    /// Every variable whose name and value are UTF-8 (what the config's `TWITCH_*_N`
    /// reader gets).
    pub fn text(&self) -> &HashMap<String, String> {
        &self.text
    }

    /// A text variable's value, when it is set and UTF-8.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.text.get(name).map(String::as_str)
    }

    /// A path variable's value (one of [`PATH_VARIABLES`]), whatever its bytes.
    pub fn path(&self, name: &str) -> Option<&OsStr> {
        self.paths.get(name).map(OsString::as_os_str)
    }

    /// The first (by name) of our variables whose value is not UTF-8.
    pub fn first_not_utf8(&self) -> Option<&str> {
        self.not_utf8.iter().next().map(String::as_str)
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStringExt;

    fn bytes(value: &[u8]) -> OsString {
        OsString::from_vec(value.to_vec())
    }

    #[test]
    fn variables_by_kind() {
        let vars = vec![
            (bytes(b"TWITCH_USERNAME_1"), bytes(b"alice")),
            (bytes(b"TWITCH_ACCESS_TOKEN_1"), bytes(b"a\xff")),
            (bytes(b"LOG_LEVEL"), bytes(b"\xfe")),
            (bytes(b"LANG"), bytes(b"\xff")),
            (bytes(b"\xffNAME"), bytes(b"x")),
            (bytes(b"TWITCH_CONF_FILE"), bytes(b"/c/\xff.json")),
            (bytes(b"TWITCH_STATUS_FILE"), bytes(b"/s.json")),
        ];
        let environment = Environment::from_vars(vars);
        // (name, text value, path value, reported as not UTF-8)
        let cases: [(&str, Option<&str>, Option<OsString>, bool); 6] = [
            ("TWITCH_USERNAME_1", Some("alice"), None, false),
            ("TWITCH_ACCESS_TOKEN_1", None, None, true),
            ("LOG_LEVEL", None, None, true),
            ("LANG", None, None, false),
            (
                "TWITCH_CONF_FILE",
                None,
                Some(bytes(b"/c/\xff.json")),
                false,
            ),
            (
                "TWITCH_STATUS_FILE",
                Some("/s.json"),
                Some(bytes(b"/s.json")),
                false,
            ),
        ];
        for (name, text, path, not_utf8) in cases {
            assert_eq!(environment.get(name), text, "{name}");
            assert_eq!(environment.path(name), path.as_deref(), "{name}");
            assert_eq!(environment.not_utf8.contains(name), not_utf8, "{name}");
        }
        assert_eq!(environment.first_not_utf8(), Some("LOG_LEVEL"));
        assert_eq!(environment.text().len(), 2);
    }

    #[test]
    fn ours() {
        for (name, expected) in [
            ("TWITCH_HTTP_LISTEN", true),
            ("TWITCH_CHAT_TRANSPORT_3", true),
            ("USE_RANDOM_COLORS_1", true),
            ("DEBUG", true),
            ("LOG_LEVEL", true),
            ("LANG", false),
            ("USE_RANDOM_COLORS", false),
            ("PATH", false),
        ] {
            assert_eq!(is_ours(name), expected, "{name}");
        }
    }
}
