//! The tokens file, `<config>.tokens` beside the config (mode 0600): the newest tokens of
//! every user whose tokens the daemon replaced, with the replaced ones. While the config
//! cannot be written (a full disk, a read-only file, a hand edit that does not parse) it is
//! where the newest tokens are, so that they are never only in memory; at all times it is
//! the record by which the next start tells a stale copy of the config (saved from an old
//! editor buffer while the daemon was stopped) from tokens a person pasted. The next start
//! takes the newest tokens over where the config holds replaced ones. Does file I/O.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::base::ids::Login;
use crate::base::secret::Secret;
use crate::config::file::{self as config_file};
use crate::config::tokens::TokenPair;

/// One user's tokens in the file, and the refresh tokens they replaced (which Twitch no
/// longer accepts), so that the next start can tell a config holding those as stale.
#[derive(Clone, Debug, PartialEq)]
pub struct SpilledUser {
    pub username: Login,
    pub tokens: TokenPair,
    pub replaced: Vec<Secret>,
}

/// `<config>.tokens`.
pub fn spill_path(config_path: &Path) -> PathBuf {
    let mut name = config_path.file_name().unwrap_or_default().to_os_string();
    name.push(".tokens");
    config_path.with_file_name(name)
}

/// Writes `users` to the file for `config_path`, atomically, mode 0600.
pub fn write(config_path: &Path, users: &[SpilledUser]) -> io::Result<()> {
    let entries: Vec<Value> = users
        .iter()
        .map(|user| {
            json!({
                "username": user.username.as_str(),
                "access_token": user.tokens.access_token.expose(),
                "refresh_token": user.tokens.refresh_token.expose(),
                "token_expires_at": user.tokens.expires_at_unix,
                "replaced": user.replaced.iter().map(Secret::expose).collect::<Vec<_>>(),
            })
        })
        .collect();
    let document = json!({
        "_comment": "twitch-colorchanger's newest tokens and the ones they replaced; the \
                     next start takes them over where the config holds replaced ones. Do not \
                     edit or delete.",
        "users": entries,
    });
    let mut text = serde_json::to_string_pretty(&document).unwrap_or_default();
    text.push('\n');
    config_file::write_atomic(&spill_path(config_path), text.as_bytes()).map(|_| ())
}

/// The users in the file for `config_path`; empty when there is none. A file that cannot
/// be read as ours is an error: it may hold the only copy of a token.
pub fn read(config_path: &Path) -> io::Result<Vec<SpilledUser>> {
    let path = spill_path(config_path);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    let invalid = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not an unsaved-tokens file", path.display()),
        )
    };
    let document: Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    let entries = document["users"].as_array().ok_or_else(invalid)?;
    let text = |entry: &Value, key: &str| entry[key].as_str().map(Secret::new);
    entries
        .iter()
        .map(|entry| {
            Some(SpilledUser {
                username: Login::new(entry["username"].as_str()?),
                tokens: TokenPair {
                    access_token: text(entry, "access_token")?,
                    refresh_token: text(entry, "refresh_token")?,
                    expires_at_unix: entry["token_expires_at"].as_u64(),
                },
                replaced: entry["replaced"]
                    .as_array()?
                    .iter()
                    .filter_map(|token| token.as_str().map(Secret::new))
                    .collect(),
            })
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(invalid)
}

/// Removes the file for `config_path`, if there is one.
pub fn remove(config_path: &Path) -> io::Result<()> {
    match fs::remove_file(spill_path(config_path)) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_round_trip_with_mode_0600() {
        let directory = tempfile::tempdir().unwrap();
        let config = directory.path().join("config.json");
        assert_eq!(read(&config).unwrap(), []);
        let users = vec![SpilledUser {
            username: Login::new("alice"),
            tokens: TokenPair {
                access_token: Secret::new("a2"),
                refresh_token: Secret::new("r2"),
                expires_at_unix: Some(99),
            },
            replaced: vec![Secret::new("r1")],
        }];
        write(&config, &users).unwrap();
        assert_eq!(read(&config).unwrap(), users);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(spill_path(&config))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        remove(&config).unwrap();
        remove(&config).unwrap();
        assert_eq!(read(&config).unwrap(), []);
        fs::write(spill_path(&config), "{\"users\": [{}]}").unwrap();
        assert_eq!(
            read(&config).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }
}
