//! `Document`: the config file's JSON tree, kept so that writes preserve unknown fields and
//! key order. Pure; the file itself is read and written by `config::file`.

use std::fmt;

use serde_json::{Map, Value};

use crate::base::ids::Login;
use crate::base::secret::Secret;
use crate::color::{ColorMode, PaletteOrder, DEFAULT_RAINBOW_STEP_DEGREES};

use super::fields::{palette_order_name, ColorModeName};
use super::model::{ChatTransport, Field, SavedField, UserConfig};

/// The file's JSON tree, kept so that writes preserve unknown fields and key order.
///
/// It holds tokens, so its `Debug` only tells how many users it has.
#[derive(Clone, PartialEq)]
pub struct Document {
    pub(super) root: Value,
    /// What was converted from upstream twitch_colorchanger's shapes when the file was
    /// read; the file should be written back in this project's shape.
    pub(super) upstream: Option<String>,
}

impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Document")
            .field("n_users", &self.users().map_or(0, Vec::len))
            .finish_non_exhaustive()
    }
}

impl Document {
    /// A new document for users that came from the environment, written to a new file.
    pub fn from_users(users: &[UserConfig]) -> Document {
        let users_json = users
            .iter()
            .map(|user| {
                let mut object = Map::new();
                object.insert(Field::Username.key().into(), user.username.as_str().into());
                object.insert(Field::ClientId.key().into(), user.client_id.as_str().into());
                object.insert(
                    Field::ClientSecret.key().into(),
                    user.client_secret.expose().into(),
                );
                object.insert(
                    Field::AccessToken.key().into(),
                    user.access_token.expose().into(),
                );
                object.insert(
                    Field::RefreshToken.key().into(),
                    user.refresh_token.expose().into(),
                );
                let channels = user.channels.iter().map(|c| Value::from(c.as_str()));
                object.insert(
                    Field::Channels.key().into(),
                    Value::Array(channels.collect()),
                );
                object.insert(
                    Field::IsPrimeOrTurbo.key().into(),
                    user.is_prime_or_turbo.into(),
                );
                object.insert(Field::Enabled.key().into(), user.enabled.into());
                insert_color_fields(&mut object, user);
                if user.chat_transport != ChatTransport::default() {
                    object.insert(
                        Field::ChatTransport.key().into(),
                        user.chat_transport.name().into(),
                    );
                }
                Value::Object(object)
            })
            .collect();
        let mut root = Map::new();
        root.insert("users".into(), Value::Array(users_json));
        Document {
            root: Value::Object(root),
            upstream: None,
        }
    }

    /// An empty config, `{"users": []}`, for a file that does not exist yet.
    pub fn empty() -> Document {
        let mut root = Map::new();
        root.insert("users".into(), Value::Array(Vec::new()));
        Document {
            root: Value::Object(root),
            upstream: None,
        }
    }

    /// Puts a user logged in by `auth --client-id` in the document: an existing entry of
    /// that login gets the new client and tokens and keeps everything else; otherwise a
    /// new entry is added at the end with the default settings written out (own channel,
    /// Turbo/Prime colors, enabled), so the person sees what there is to change. A client
    /// secret not given is kept for the same client id and cleared for a new one (it
    /// belongs to the old app). Returns true when the user is new.
    pub fn put_logged_in_user(
        &mut self,
        login: &Login,
        client_id: &str,
        client_secret: Option<&Secret>,
        tokens: &SavedField,
    ) -> bool {
        let same_client = self.user_str(login, Field::ClientId) == Some(client_id);
        let mut fields = vec![(Field::ClientId, Value::from(client_id))];
        match client_secret {
            Some(secret) => fields.push((Field::ClientSecret, secret.expose().into())),
            None if !same_client => fields.push((Field::ClientSecret, "".into())),
            None => {}
        }
        fields.extend(tokens.entries());
        if self.user_str(login, Field::Username).is_some() {
            for (field, value) in fields {
                self.set_user_field(login, field, value);
            }
            return false;
        }
        let mut object = Map::new();
        object.insert(Field::Username.key().into(), login.as_str().into());
        for (field, value) in fields {
            object.insert(field.key().into(), value);
        }
        object.insert(Field::Channels.key().into(), Value::Array(Vec::new()));
        object.insert(Field::IsPrimeOrTurbo.key().into(), true.into());
        object.insert(Field::Enabled.key().into(), true.into());
        if !self.root.is_object() {
            self.root = Value::Object(Map::new());
        }
        if let Some(root) = self.root.as_object_mut() {
            let users = root
                .entry("users")
                .or_insert_with(|| Value::Array(Vec::new()));
            if !users.is_array() {
                *users = Value::Array(Vec::new());
            }
            if let Some(users) = users.as_array_mut() {
                users.push(Value::Object(object));
            }
        }
        true
    }

    /// What was converted from upstream's shapes when the file was read (a bare list of
    /// users, a single user, `token_expiry` dates), if anything: then the file should be
    /// written back as [`Document::to_json_string`] gives it.
    pub fn upstream_conversion(&self) -> Option<&str> {
        self.upstream.as_deref()
    }

    /// A string field of the user whose `username` matches, if there is one.
    pub fn user_str(&self, username: &Login, field: Field) -> Option<&str> {
        self.users()?
            .iter()
            .filter_map(Value::as_object)
            .find(|user| {
                user.get(Field::Username.key())
                    .and_then(Value::as_str)
                    .is_some_and(|name| Login::new(name) == *username)
            })?
            .get(field.key())
            .and_then(Value::as_str)
    }

    /// Sets one field of the user whose `username` matches (case-insensitively, `#`
    /// ignored), keeping every other field and the order of keys. An existing field keeps
    /// its place; a new one is appended. Returns false when there is no such user.
    pub fn set_user_field(&mut self, username: &Login, field: Field, value: Value) -> bool {
        let Some(users) = self.root.get_mut("users").and_then(Value::as_array_mut) else {
            return false;
        };
        let found = users
            .iter_mut()
            .filter_map(Value::as_object_mut)
            .find(|user| {
                user.get(Field::Username.key())
                    .and_then(Value::as_str)
                    .is_some_and(|name| Login::new(name) == *username)
            });
        match found {
            Some(user) => {
                user.insert(field.key().to_string(), value);
                true
            }
            None => false,
        }
    }

    /// The document as the file should hold it: pretty, 2-space indent, trailing newline.
    pub fn to_json_string(&self) -> String {
        // Serialising a `Value` cannot fail: all its keys are strings.
        let mut text = serde_json::to_string_pretty(&self.root).unwrap_or_default();
        text.push('\n');
        text
    }

    pub(super) fn users(&self) -> Option<&Vec<Value>> {
        self.root.get("users").and_then(Value::as_array)
    }
}

/// Writes the color fields of `user` that differ from their defaults, so that a file made
/// from environment users stays as short as the variables that made it.
pub(super) fn insert_color_fields(object: &mut Map<String, Value>, user: &UserConfig) {
    if user.color_mode != ColorMode::Random {
        let name = ColorModeName::of(&user.color_mode).as_str();
        object.insert(Field::ColorMode.key().into(), name.into());
    }
    match &user.color_mode {
        ColorMode::Rainbow { step_degrees } if *step_degrees != DEFAULT_RAINBOW_STEP_DEGREES => {
            object.insert(Field::RainbowStep.key().into(), number_value(*step_degrees));
        }
        ColorMode::Palette { colors, order } => {
            let colors = colors.iter().map(|color| Value::from(color.to_string()));
            object.insert(Field::Palette.key().into(), Value::Array(colors.collect()));
            if *order != PaletteOrder::default() {
                object.insert(
                    Field::PaletteOrder.key().into(),
                    palette_order_name(*order).into(),
                );
            }
        }
        _ => {}
    }
    if let Some(interval) = user.change_every {
        object.insert(
            Field::ChangeEverySeconds.key().into(),
            interval.as_secs().into(),
        );
    }
}

/// A JSON number written as people write it: `45` rather than `45.0` for whole numbers.
pub(super) fn number_value(value: f64) -> Value {
    // Validated steps are at most 359 degrees, so the cast to i64 is exact.
    if value.fract() == 0.0 && value.abs() < 1e15 {
        Value::from(value as i64)
    } else {
        Value::from(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tokens(n: u64) -> SavedField {
        SavedField::Tokens {
            access_token: Secret::new(format!("at{n}")),
            refresh_token: Secret::new(format!("rt{n}")),
            expires_at_unix: Some(n),
        }
    }

    fn document(root: Value) -> Document {
        Document {
            root,
            upstream: None,
        }
    }

    #[test]
    fn a_logged_in_user_is_added_or_updated_in_place() {
        let alice = Login::new("alice");
        // (file before, client id, secret given, expected user entry after, added)
        let cases = [
            (
                json!({"users": []}),
                "cid",
                Some("cs"),
                json!({"username": "alice", "client_id": "cid", "client_secret": "cs",
                       "access_token": "at1", "refresh_token": "rt1", "token_expires_at": 1,
                       "channels": [], "is_prime_or_turbo": true, "enabled": true}),
                true,
            ),
            (
                json!({"users": []}),
                "cid",
                None,
                json!({"username": "alice", "client_id": "cid", "client_secret": "",
                       "access_token": "at1", "refresh_token": "rt1", "token_expires_at": 1,
                       "channels": [], "is_prime_or_turbo": true, "enabled": true}),
                true,
            ),
            // Same client, no secret given: the secret stays, and so does everything else.
            (
                json!({"users": [{"username": "Alice", "_note": "x", "client_id": "cid",
                                  "client_secret": "old", "access_token": "a0",
                                  "channels": ["friend"]}]}),
                "cid",
                None,
                json!({"username": "Alice", "_note": "x", "client_id": "cid",
                       "client_secret": "old", "access_token": "at1", "channels": ["friend"],
                       "refresh_token": "rt1", "token_expires_at": 1}),
                false,
            ),
            // Another client: the old secret belongs to the old app.
            (
                json!({"users": [{"username": "alice", "client_id": "old-cid",
                                  "client_secret": "old"}]}),
                "cid",
                None,
                json!({"username": "alice", "client_id": "cid", "client_secret": "",
                       "access_token": "at1", "refresh_token": "rt1", "token_expires_at": 1}),
                false,
            ),
        ];
        for (before, client_id, secret, after, added) in cases {
            let mut document = document(before.clone());
            let secret = secret.map(Secret::new);
            assert_eq!(
                document.put_logged_in_user(&alice, client_id, secret.as_ref(), &tokens(1)),
                added,
                "{before}"
            );
            let users = document.users().unwrap();
            assert_eq!(users.len(), 1, "{before}");
            assert_eq!(users[0], after, "{before}");
            let keys: Vec<&String> = users[0].as_object().unwrap().keys().collect();
            let expected: Vec<&String> = after.as_object().unwrap().keys().collect();
            assert_eq!(keys, expected, "key order kept: {before}");
        }
        // A second account goes after the first.
        let mut document = document(json!({"users": [{"username": "alice"}]}));
        assert!(document.put_logged_in_user(&Login::new("Bob"), "c", None, &tokens(2)));
        assert_eq!(document.users().unwrap()[1]["username"], "bob");
    }
}
