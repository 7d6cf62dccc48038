//! OAuth calls to Twitch's id server (`id.twitch.tv/oauth2`): token validation, refresh,
//! and the device-code login. Does I/O over the shared `ureq::Agent`; the interpretation of
//! every answer (`interpret_*`) is pure and table-tested.

use std::fmt;
use std::time::Duration;

use serde_json::{Map, Value};
use ureq::Agent;

use crate::base::ids::{Login, UserId};
use crate::base::secret::Secret;
use crate::twitch::http::{describe_transport_error, error_message};

/// The scopes a device-code login asks for: `chat:read` to log in to chat and read it,
/// `user:manage:chat_color` to change the color, `user:read:chat` to read chat through
/// EventSub instead of IRC. Only the first two are required of a token (see
/// `token::machine::REQUIRED_SCOPES`).
pub const SCOPES: &str = "chat:read user:manage:chat_color user:read:chat";

/// Bodies of OAuth answers are small; anything longer is cut off rather than read forever.
const BODY_LIMIT: u64 = 64 * 1024;

/// RFC 8628 says to poll every 5 seconds when the server names no interval.
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);

/// What `GET /validate` says about a working access token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validation {
    pub client_id: String,
    pub login: Login,
    pub user_id: UserId,
    pub scopes: Vec<String>,
    /// What is left of the token's life. Zero when the token does not expire (Twitch's
    /// answer for some old tokens) or Twitch did not say.
    pub expires_in: Duration,
}

/// Tokens issued by a refresh or a device-code login.
///
/// `Debug` is safe to log: the tokens are [`Secret`]s and redact themselves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenGrant {
    pub access_token: Secret,
    /// Twitch may rotate the refresh token on every use: always store this one.
    pub refresh_token: Secret,
    /// The new access token's lifetime, when Twitch said.
    pub expires_in: Option<Duration>,
    pub scopes: Vec<String>,
}

/// A started device-code login: show `verification_uri` and `user_code` to the person, then
/// poll with `device_code` every `interval` until `expires_in` has passed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceCode {
    pub device_code: Secret,
    pub user_code: String,
    pub verification_uri: String,
    pub expires_in: Duration,
    /// Never zero, so a poll loop cannot spin.
    pub interval: Duration,
}

/// Why an OAuth call did not give what was asked. No variant ever holds a token.
///
/// Normal during a device-code login: `AuthorizationPending` and `SlowDown` (keep polling),
/// `InvalidDeviceCode` and `DeviceCodeExpired` (not final before the code's own expiry,
/// twitchdev/issues#971), `AccessDenied` (final). Transient (see [`OAuthError::is_transient`]): try the
/// same call again later. Everything else needs a person to act.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OAuthError {
    /// Validation answered 401: the access token is expired or revoked. Refresh it.
    InvalidAccessToken,
    /// The refresh was refused with 400 (`Invalid refresh token`, e.g. after a password
    /// change). Retrying will not help: the user must log in again.
    InvalidRefreshToken,
    /// The person has not yet entered the user code: poll again after the interval.
    AuthorizationPending,
    /// Polling too often: poll again with a longer interval.
    SlowDown,
    /// Twitch said the device code expired (`expired_token`).
    DeviceCodeExpired,
    /// Twitch called the device code invalid (`invalid device code`). Not final: Twitch has
    /// answered this for codes still pending that could still be approved
    /// (twitchdev/issues#971).
    InvalidDeviceCode,
    /// The person declined the login.
    AccessDenied,
    /// Any other status: 5xx and 429 are transient, the rest are not.
    Status { status: u16, message: String },
    /// A success status with a body that is not the expected JSON (a proxy's page, a
    /// truncated answer). Treated as transient.
    UnexpectedBody { status: u16, message: String },
    /// The call did not complete: connect failure, timeout, broken connection.
    Transport { message: String },
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OAuthError::InvalidAccessToken => f.write_str("access token rejected (401)"),
            OAuthError::InvalidRefreshToken => f.write_str("refresh token rejected (400)"),
            OAuthError::AuthorizationPending => f.write_str("authorization pending"),
            OAuthError::SlowDown => f.write_str("polling too fast"),
            OAuthError::DeviceCodeExpired => f.write_str("device code expired"),
            OAuthError::InvalidDeviceCode => f.write_str("invalid device code"),
            OAuthError::AccessDenied => f.write_str("login declined"),
            OAuthError::Status { status, message } => write!(f, "status {status}: {message}"),
            OAuthError::UnexpectedBody { status, message } => {
                write!(f, "unexpected answer (status {status}): {message}")
            }
            OAuthError::Transport { message } => write!(f, "request failed: {message}"),
        }
    }
}

impl std::error::Error for OAuthError {}

impl OAuthError {
    /// True for failures that may pass if the same call is made again a little later.
    pub fn is_transient(&self) -> bool {
        match self {
            OAuthError::Status { status, .. } => *status >= 500 || *status == 429,
            OAuthError::UnexpectedBody { .. } | OAuthError::Transport { .. } => true,
            OAuthError::InvalidAccessToken
            | OAuthError::InvalidRefreshToken
            | OAuthError::AuthorizationPending
            | OAuthError::SlowDown
            | OAuthError::DeviceCodeExpired
            | OAuthError::InvalidDeviceCode
            | OAuthError::AccessDenied => false,
        }
    }
}

/// Twitch's OAuth server at one base URL (`https://id.twitch.tv/oauth2` or a test server).
pub struct OAuth {
    agent: Agent,
    auth_url: String,
}

impl OAuth {
    pub fn new(agent: Agent, auth_url: &str) -> OAuth {
        OAuth {
            agent,
            auth_url: auth_url.trim_end_matches('/').to_string(),
        }
    }

    /// `GET /validate`: checks that the access token works and tells whose it is.
    pub fn validate(&self, access_token: &Secret) -> Result<Validation, OAuthError> {
        let url = format!("{}/validate", self.auth_url);
        let response = self
            .agent
            .get(&url)
            .header("Authorization", format!("OAuth {}", access_token.expose()))
            .call()
            .map_err(transport_error)?;
        let (status, body) = read_answer(response)?;
        interpret_validation(status, &body)
    }

    /// `POST /token` with `grant_type=refresh_token`: new tokens for a refresh token. An
    /// empty `client_secret` is left out, as public clients (device-code logins) have none.
    pub fn refresh(
        &self,
        refresh_token: &Secret,
        client_id: &str,
        client_secret: &Secret,
    ) -> Result<TokenGrant, OAuthError> {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose()),
            ("client_id", client_id),
        ];
        if !client_secret.is_empty() {
            form.push(("client_secret", client_secret.expose()));
        }
        let (status, body) = self.post_form("token", &form)?;
        interpret_refresh(status, &body)
    }

    /// `POST /device`: starts a device-code login for `scopes` (space-separated).
    pub fn start_device(&self, client_id: &str, scopes: &str) -> Result<DeviceCode, OAuthError> {
        let form = [("client_id", client_id), ("scopes", scopes)];
        let (status, body) = self.post_form("device", &form)?;
        interpret_device_start(status, &body)
    }

    /// `POST /token` with the device-code grant: one poll of a device-code login.
    pub fn poll_device(
        &self,
        client_id: &str,
        device_code: &Secret,
        scopes: &str,
    ) -> Result<TokenGrant, OAuthError> {
        let form = [
            ("client_id", client_id),
            ("device_code", device_code.expose()),
            ("scopes", scopes),
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ];
        let (status, body) = self.post_form("token", &form)?;
        interpret_device_poll(status, &body)
    }

    /// Posts a form. The form may hold tokens, so nothing of it goes into errors.
    fn post_form(
        &self,
        endpoint: &str,
        form: &[(&str, &str)],
    ) -> Result<(u16, String), OAuthError> {
        let url = format!("{}/{endpoint}", self.auth_url);
        let response = self
            .agent
            .post(&url)
            .send_form(form.iter().copied())
            .map_err(transport_error)?;
        read_answer(response)
    }
}

fn transport_error(error: ureq::Error) -> OAuthError {
    OAuthError::Transport {
        message: describe_transport_error(&error),
    }
}

/// The status and the whole body (up to [`BODY_LIMIT`]); reading to the end lets the agent
/// reuse the connection.
fn read_answer(
    mut response: ureq::http::Response<ureq::Body>,
) -> Result<(u16, String), OAuthError> {
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(BODY_LIMIT)
        .read_to_string()
        .map_err(transport_error)?;
    Ok((status, body))
}

/// Maps a `GET /validate` answer to its outcome.
pub fn interpret_validation(status: u16, body: &str) -> Result<Validation, OAuthError> {
    match status {
        200..=299 => {
            let object = json_object(status, body)?;
            let login = required_string(status, &object, "login")?;
            let user_id = required_string(status, &object, "user_id")?;
            Ok(Validation {
                client_id: optional_string(status, &object, "client_id")?,
                login: Login::new(&login),
                user_id: UserId::new(user_id),
                scopes: string_list(status, &object, "scopes")?,
                expires_in: optional_seconds(status, &object, "expires_in")?
                    .unwrap_or(Duration::ZERO),
            })
        }
        401 => Err(OAuthError::InvalidAccessToken),
        _ => Err(status_error(status, body)),
    }
}

/// Maps a refresh answer (`POST /token`, `grant_type=refresh_token`) to its outcome.
pub fn interpret_refresh(status: u16, body: &str) -> Result<TokenGrant, OAuthError> {
    match status {
        200..=299 => token_grant(status, body),
        // A 400 means Twitch will not take this refresh token, however often we ask. Only a
        // rejected client id is told apart: its fix is in the config, not a new login.
        400 => {
            let message = error_message(body);
            if message.to_lowercase().contains("client") {
                Err(OAuthError::Status { status, message })
            } else {
                Err(OAuthError::InvalidRefreshToken)
            }
        }
        _ => Err(status_error(status, body)),
    }
}

/// Maps a `POST /device` answer to its outcome.
pub fn interpret_device_start(status: u16, body: &str) -> Result<DeviceCode, OAuthError> {
    if !(200..=299).contains(&status) {
        return Err(status_error(status, body));
    }
    let object = json_object(status, body)?;
    let interval = optional_seconds(status, &object, "interval")?
        .unwrap_or(DEFAULT_POLL_INTERVAL)
        .max(Duration::from_secs(1));
    let Some(expires_in) = optional_seconds(status, &object, "expires_in")? else {
        return Err(unexpected(status, "no \"expires_in\" in the answer"));
    };
    Ok(DeviceCode {
        device_code: Secret::new(required_string(status, &object, "device_code")?),
        user_code: required_string(status, &object, "user_code")?,
        verification_uri: required_string(status, &object, "verification_uri")?,
        expires_in,
        interval,
    })
}

/// Maps a device-code poll answer (`POST /token`, device-code grant) to its outcome.
pub fn interpret_device_poll(status: u16, body: &str) -> Result<TokenGrant, OAuthError> {
    if (200..=299).contains(&status) {
        return token_grant(status, body);
    }
    if (400..=499).contains(&status) {
        // Twitch puts the RFC 8628 error code in `message`; RFC servers put it in `error`.
        let words = format!("{} {}", error_message(body), error_field(body)).to_lowercase();
        let has = |needles: &[&str]| needles.iter().any(|needle| words.contains(needle));
        if has(&["authorization_pending", "authorization pending"]) {
            return Err(OAuthError::AuthorizationPending);
        }
        if has(&["slow_down", "slow down"]) {
            return Err(OAuthError::SlowDown);
        }
        if has(&["invalid device code"]) {
            return Err(OAuthError::InvalidDeviceCode);
        }
        if has(&["expired_token", "expired"]) {
            return Err(OAuthError::DeviceCodeExpired);
        }
        if has(&["access_denied", "denied"]) {
            return Err(OAuthError::AccessDenied);
        }
    }
    Err(status_error(status, body))
}

/// The tokens of a successful `POST /token` answer.
fn token_grant(status: u16, body: &str) -> Result<TokenGrant, OAuthError> {
    let object = json_object(status, body)?;
    let access_token = required_string(status, &object, "access_token")?;
    let refresh_token = required_string(status, &object, "refresh_token")?;
    Ok(TokenGrant {
        access_token: Secret::new(access_token),
        refresh_token: Secret::new(refresh_token),
        expires_in: optional_seconds(status, &object, "expires_in")?,
        scopes: string_list(status, &object, "scope")?,
    })
}

fn status_error(status: u16, body: &str) -> OAuthError {
    OAuthError::Status {
        status,
        message: error_message(body),
    }
}

fn unexpected(status: u16, message: &str) -> OAuthError {
    OAuthError::UnexpectedBody {
        status,
        message: message.to_string(),
    }
}

/// The `error` field of an RFC 6749 error body, or nothing.
fn error_field(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|value| value.get("error")?.as_str().map(str::to_string))
        .unwrap_or_default()
}

// The field readers below write their own messages instead of passing on serde's: serde
// quotes the offending value, and in these bodies that could be a token.

fn json_object(status: u16, body: &str) -> Result<Map<String, Value>, OAuthError> {
    match serde_json::from_str::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(unexpected(status, "the answer is not a json object")),
        Err(_) => Err(unexpected(status, "the answer is not json")),
    }
}

fn required_string(
    status: u16,
    object: &Map<String, Value>,
    field: &str,
) -> Result<String, OAuthError> {
    let value = optional_string(status, object, field)?;
    if value.is_empty() {
        return Err(unexpected(status, &format!("no \"{field}\" in the answer")));
    }
    Ok(value)
}

/// A string field; empty when absent or null.
fn optional_string(
    status: u16,
    object: &Map<String, Value>,
    field: &str,
) -> Result<String, OAuthError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(_) => Err(unexpected(status, &format!("\"{field}\" is not a string"))),
    }
}

/// A list of strings; empty when absent or null (Twitch sends `null` for no scopes).
fn string_list(
    status: u16,
    object: &Map<String, Value>,
    field: &str,
) -> Result<Vec<String>, OAuthError> {
    let wrong = || unexpected(status, &format!("\"{field}\" is not a list of strings"));
    match object.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_string).ok_or_else(wrong))
            .collect(),
        Some(_) => Err(wrong()),
    }
}

/// A whole number of seconds; `None` when absent or null.
fn optional_seconds(
    status: u16,
    object: &Map<String, Value>,
    field: &str,
) -> Result<Option<Duration>, OAuthError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_u64()
            .map(|seconds| Some(Duration::from_secs(seconds)))
            .ok_or_else(|| {
                unexpected(
                    status,
                    &format!("\"{field}\" is not a whole number of seconds"),
                )
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    fn status(status: u16, message: &str) -> OAuthError {
        OAuthError::Status {
            status,
            message: message.to_string(),
        }
    }

    fn unexpected_body(status: u16, message: &str) -> OAuthError {
        OAuthError::UnexpectedBody {
            status,
            message: message.to_string(),
        }
    }

    fn grant(access: &str, refresh: &str, expires_in: Option<u64>, scopes: &[&str]) -> TokenGrant {
        TokenGrant {
            access_token: Secret::new(access),
            refresh_token: Secret::new(refresh),
            expires_in: expires_in.map(Duration::from_secs),
            scopes: scopes.iter().map(|scope| scope.to_string()).collect(),
        }
    }

    const VALIDATE_OK: &str = r#"{"client_id":"cid","login":"Alice","scopes":["chat:read","user:manage:chat_color"],"user_id":"1234","expires_in":5520}"#;
    const TOKEN_OK: &str = r#"{"access_token":"newaccess","refresh_token":"newrefresh","expires_in":14400,"scope":["chat:read","user:manage:chat_color"],"token_type":"bearer"}"#;

    #[test]
    fn validation_answers() {
        let alice = Validation {
            client_id: "cid".into(),
            login: Login::new("alice"),
            user_id: UserId::new("1234"),
            scopes: vec!["chat:read".into(), "user:manage:chat_color".into()],
            expires_in: Duration::from_secs(5520),
        };
        let cases: Vec<(u16, &str, Result<Validation, OAuthError>)> = vec![
            (200, VALIDATE_OK, Ok(alice.clone())),
            (
                200,
                r#"{"client_id":"cid","login":"alice","scopes":null,"user_id":"1234","expires_in":0}"#,
                Ok(Validation {
                    scopes: vec![],
                    expires_in: Duration::ZERO,
                    ..alice.clone()
                }),
            ),
            (
                401,
                r#"{"status":401,"message":"invalid access token"}"#,
                Err(OAuthError::InvalidAccessToken),
            ),
            (401, "", Err(OAuthError::InvalidAccessToken)),
            (
                503,
                "<html>bad gateway</html>",
                Err(status(503, "<html>bad gateway</html>")),
            ),
            (
                429,
                r#"{"status":429,"message":"too many requests"}"#,
                Err(status(429, "too many requests")),
            ),
            (
                200,
                "<html>captive portal</html>",
                Err(unexpected_body(200, "the answer is not json")),
            ),
            (
                200,
                "[1,2]",
                Err(unexpected_body(200, "the answer is not a json object")),
            ),
            (
                200,
                r#"{"client_id":"cid","scopes":[],"expires_in":5}"#,
                Err(unexpected_body(200, "no \"login\" in the answer")),
            ),
            (
                200,
                r#"{"client_id":"cid","login":"alice","user_id":"1","scopes":"chat:read","expires_in":5}"#,
                Err(unexpected_body(200, "\"scopes\" is not a list of strings")),
            ),
            (
                200,
                r#"{"client_id":"cid","login":"alice","user_id":"1","scopes":[],"expires_in":-5}"#,
                Err(unexpected_body(
                    200,
                    "\"expires_in\" is not a whole number of seconds",
                )),
            ),
        ];
        for (status, body, expected) in cases {
            assert_eq!(interpret_validation(status, body), expected, "{body}");
        }
    }

    #[test]
    fn refresh_answers() {
        let cases: Vec<(u16, &str, Result<TokenGrant, OAuthError>)> = vec![
            (
                200,
                TOKEN_OK,
                Ok(grant(
                    "newaccess",
                    "newrefresh",
                    Some(14400),
                    &["chat:read", "user:manage:chat_color"],
                )),
            ),
            (
                200,
                r#"{"access_token":"a","refresh_token":"r"}"#,
                Ok(grant("a", "r", None, &[])),
            ),
            (
                400,
                r#"{"status":400,"message":"Invalid refresh token"}"#,
                Err(OAuthError::InvalidRefreshToken),
            ),
            (400, "", Err(OAuthError::InvalidRefreshToken)),
            (
                400,
                r#"{"status":400,"message":"invalid client"}"#,
                Err(status(400, "invalid client")),
            ),
            (
                403,
                r#"{"status":403,"message":"invalid client secret"}"#,
                Err(status(403, "invalid client secret")),
            ),
            (500, "", Err(status(500, ""))),
            (
                200,
                r#"{"access_token":"a"}"#,
                Err(unexpected_body(200, "no \"refresh_token\" in the answer")),
            ),
            (
                200,
                r#"{"access_token":"","refresh_token":"r"}"#,
                Err(unexpected_body(200, "no \"access_token\" in the answer")),
            ),
            (
                200,
                r#"{"access_token":17,"refresh_token":"r"}"#,
                Err(unexpected_body(200, "\"access_token\" is not a string")),
            ),
            (
                200,
                "garbage",
                Err(unexpected_body(200, "the answer is not json")),
            ),
        ];
        for (status, body, expected) in cases {
            assert_eq!(interpret_refresh(status, body), expected, "{body}");
        }
    }

    #[test]
    fn device_start_answers() {
        let code = DeviceCode {
            device_code: Secret::new("devcode"),
            user_code: "ABCDEFGH".into(),
            verification_uri: "https://www.twitch.tv/activate?public=true&device-code=ABCDEFGH"
                .into(),
            expires_in: Duration::from_secs(1800),
            interval: Duration::from_secs(5),
        };
        let cases: Vec<(u16, &str, Result<DeviceCode, OAuthError>)> = vec![
            (
                200,
                r#"{"device_code":"devcode","expires_in":1800,"interval":5,"user_code":"ABCDEFGH","verification_uri":"https://www.twitch.tv/activate?public=true&device-code=ABCDEFGH"}"#,
                Ok(code.clone()),
            ),
            (
                200,
                r#"{"device_code":"devcode","expires_in":1800,"user_code":"ABCDEFGH","verification_uri":"https://www.twitch.tv/activate?public=true&device-code=ABCDEFGH"}"#,
                Ok(code.clone()),
            ),
            (
                200,
                r#"{"device_code":"devcode","expires_in":1800,"interval":0,"user_code":"ABCDEFGH","verification_uri":"https://www.twitch.tv/activate?public=true&device-code=ABCDEFGH"}"#,
                Ok(DeviceCode {
                    interval: Duration::from_secs(1),
                    ..code.clone()
                }),
            ),
            (
                200,
                r#"{"device_code":"devcode","interval":5,"user_code":"ABCDEFGH","verification_uri":"x"}"#,
                Err(unexpected_body(200, "no \"expires_in\" in the answer")),
            ),
            (
                200,
                r#"{"expires_in":1800,"interval":5,"user_code":"ABCDEFGH","verification_uri":"x"}"#,
                Err(unexpected_body(200, "no \"device_code\" in the answer")),
            ),
            (
                400,
                r#"{"status":400,"message":"invalid client"}"#,
                Err(status(400, "invalid client")),
            ),
            (502, "", Err(status(502, ""))),
            (200, "", Err(unexpected_body(200, "the answer is not json"))),
        ];
        for (status, body, expected) in cases {
            assert_eq!(interpret_device_start(status, body), expected, "{body}");
        }
    }

    #[test]
    fn device_poll_answers() {
        let cases: Vec<(u16, &str, Result<TokenGrant, OAuthError>)> = vec![
            (
                200,
                TOKEN_OK,
                Ok(grant(
                    "newaccess",
                    "newrefresh",
                    Some(14400),
                    &["chat:read", "user:manage:chat_color"],
                )),
            ),
            (
                400,
                r#"{"status":400,"message":"authorization_pending"}"#,
                Err(OAuthError::AuthorizationPending),
            ),
            (
                400,
                r#"{"error":"authorization_pending","error_description":"not yet"}"#,
                Err(OAuthError::AuthorizationPending),
            ),
            (
                400,
                r#"{"status":400,"message":"slow_down"}"#,
                Err(OAuthError::SlowDown),
            ),
            (
                400,
                r#"{"status":400,"message":"invalid device code"}"#,
                Err(OAuthError::InvalidDeviceCode),
            ),
            (
                400,
                r#"{"error":"expired_token"}"#,
                Err(OAuthError::DeviceCodeExpired),
            ),
            (
                400,
                r#"{"status":400,"message":"access_denied"}"#,
                Err(OAuthError::AccessDenied),
            ),
            (
                400,
                r#"{"status":400,"message":"invalid client"}"#,
                Err(status(400, "invalid client")),
            ),
            (503, "", Err(status(503, ""))),
            (
                500,
                r#"{"status":500,"message":"authorization_pending"}"#,
                Err(status(500, "authorization_pending")),
            ),
            (
                200,
                "{",
                Err(unexpected_body(200, "the answer is not json")),
            ),
        ];
        for (status, body, expected) in cases {
            assert_eq!(interpret_device_poll(status, body), expected, "{body}");
        }
    }

    #[test]
    fn transient_errors_are_the_retryable_ones() {
        let cases = [
            (OAuthError::InvalidAccessToken, false),
            (OAuthError::InvalidRefreshToken, false),
            (OAuthError::AuthorizationPending, false),
            (OAuthError::SlowDown, false),
            (OAuthError::DeviceCodeExpired, false),
            (OAuthError::AccessDenied, false),
            (status(400, ""), false),
            (status(403, ""), false),
            (status(429, ""), true),
            (status(500, ""), true),
            (status(503, ""), true),
            (unexpected_body(200, ""), true),
            (
                OAuthError::Transport {
                    message: String::new(),
                },
                true,
            ),
        ];
        for (error, expected) in cases {
            assert_eq!(error.is_transient(), expected, "{error:?}");
        }
    }

    #[test]
    fn display_is_short_and_lowercase() {
        let cases = [
            (
                OAuthError::InvalidAccessToken,
                "access token rejected (401)",
            ),
            (
                OAuthError::InvalidRefreshToken,
                "refresh token rejected (400)",
            ),
            (OAuthError::DeviceCodeExpired, "device code expired"),
            (status(503, "down"), "status 503: down"),
            (
                OAuthError::Transport {
                    message: "timed out".into(),
                },
                "request failed: timed out",
            ),
        ];
        for (error, expected) in cases {
            assert_eq!(error.to_string(), expected);
        }
    }

    #[test]
    fn debug_of_grants_and_codes_hides_tokens() {
        let grant = interpret_refresh(200, TOKEN_OK).unwrap();
        let shown = format!("{grant:?}");
        assert!(
            !shown.contains("newaccess") && !shown.contains("newrefresh"),
            "{shown}"
        );
        let code = DeviceCode {
            device_code: Secret::new("devcode"),
            user_code: "ABCD".into(),
            verification_uri: "https://example.invalid".into(),
            expires_in: Duration::from_secs(1),
            interval: Duration::from_secs(1),
        };
        assert!(!format!("{code:?}").contains("devcode"));
    }

    /// One HTTP request as the stub server received it.
    #[derive(Debug)]
    struct RecordedRequest {
        method: String,
        path: String,
        /// Names in lowercase.
        headers: Vec<(String, String)>,
        body: String,
    }

    impl RecordedRequest {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        }

        /// The decoded fields of a form body, in order.
        fn form(&self) -> Vec<(String, String)> {
            self.body
                .split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    (form_decode(key), form_decode(value))
                })
                .collect()
        }
    }

    fn form_decode(text: &str) -> String {
        let bytes = text.as_bytes();
        let mut decoded = Vec::with_capacity(bytes.len());
        let mut index = 0;
        while index < bytes.len() {
            match bytes[index] {
                b'+' => decoded.push(b' '),
                b'%' if index + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).unwrap();
                    decoded.push(u8::from_str_radix(hex, 16).unwrap());
                    index += 2;
                }
                byte => decoded.push(byte),
            }
            index += 1;
        }
        String::from_utf8(decoded).unwrap()
    }

    /// Serves one canned answer on 127.0.0.1 and hands back the request it got. Returns the
    /// base URL (`http://127.0.0.1:PORT/oauth2`) and where the request will arrive.
    fn stub_server(
        status_line: &'static str,
        answer_body: &'static str,
    ) -> (String, crossbeam_channel::Receiver<RecordedRequest>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/oauth2", listener.local_addr().unwrap());
        let (sender, receiver) = crossbeam_channel::bounded(1);
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut parts = request_line.split_whitespace();
            let method = parts.next().unwrap_or_default().to_string();
            let path = parts.next().unwrap_or_default().to_string();
            let mut headers = Vec::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                let (name, value) = line.split_once(':').unwrap();
                headers.push((name.trim().to_lowercase(), value.trim().to_string()));
            }
            let length = headers
                .iter()
                .find(|(name, _)| name == "content-length")
                .map_or(0, |(_, value)| value.parse().unwrap());
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            // The request is recorded before answering, so it is there when the call returns.
            let _ = sender.send(RecordedRequest {
                method,
                path,
                headers,
                body: String::from_utf8(body).unwrap(),
            });
            let _ = write!(
                stream,
                "{status_line}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{answer_body}",
                answer_body.len(),
            );
        });
        (url, receiver)
    }

    fn test_agent() -> Agent {
        let tls = crate::twitch::http::SharedTls::default();
        crate::twitch::http::new_agent(Duration::from_secs(10), &tls)
    }

    fn recorded(requests: &crossbeam_channel::Receiver<RecordedRequest>) -> RecordedRequest {
        requests
            .recv_timeout(Duration::from_secs(10))
            .expect("the stub server got no request")
    }

    fn form_of(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn validate_sends_the_token_in_an_oauth_header() {
        let (url, requests) = stub_server("HTTP/1.1 200 OK", VALIDATE_OK);
        let oauth = OAuth::new(test_agent(), &format!("{url}/"));
        let validation = oauth.validate(&Secret::new("tok123")).unwrap();
        assert_eq!(validation.login, Login::new("alice"));
        assert_eq!(validation.user_id, UserId::new("1234"));
        let request = recorded(&requests);
        assert_eq!(request.method, "GET");
        assert_eq!(request.path, "/oauth2/validate");
        assert_eq!(request.header("authorization"), Some("OAuth tok123"));
        assert_eq!(request.body, "");
    }

    #[test]
    fn validate_maps_401() {
        let (url, requests) = stub_server(
            "HTTP/1.1 401 Unauthorized",
            r#"{"status":401,"message":"invalid access token"}"#,
        );
        let oauth = OAuth::new(test_agent(), &url);
        let result = oauth.validate(&Secret::new("expired"));
        assert_eq!(result, Err(OAuthError::InvalidAccessToken));
        assert_eq!(recorded(&requests).path, "/oauth2/validate");
    }

    #[test]
    fn refresh_posts_the_form_with_the_client_secret() {
        let (url, requests) = stub_server("HTTP/1.1 200 OK", TOKEN_OK);
        let oauth = OAuth::new(test_agent(), &url);
        let grant = oauth
            .refresh(&Secret::new("old+refresh/="), "cid", &Secret::new("shh"))
            .unwrap();
        assert_eq!(grant.access_token.expose(), "newaccess");
        assert_eq!(grant.refresh_token.expose(), "newrefresh");
        let request = recorded(&requests);
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/oauth2/token");
        assert_eq!(
            request.header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(
            request.form(),
            form_of(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", "old+refresh/="),
                ("client_id", "cid"),
                ("client_secret", "shh"),
            ])
        );
    }

    #[test]
    fn refresh_of_a_public_client_sends_no_secret() {
        let (url, requests) = stub_server(
            "HTTP/1.1 400 Bad Request",
            r#"{"status":400,"message":"Invalid refresh token"}"#,
        );
        let oauth = OAuth::new(test_agent(), &url);
        let result = oauth.refresh(&Secret::new("stale"), "cid", &Secret::default());
        assert_eq!(result, Err(OAuthError::InvalidRefreshToken));
        assert_eq!(
            recorded(&requests).form(),
            form_of(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", "stale"),
                ("client_id", "cid"),
            ])
        );
    }

    #[test]
    fn start_device_posts_client_id_and_scopes() {
        let (url, requests) = stub_server(
            "HTTP/1.1 200 OK",
            r#"{"device_code":"dc","expires_in":1800,"interval":5,"user_code":"WXYZ","verification_uri":"https://www.twitch.tv/activate"}"#,
        );
        let oauth = OAuth::new(test_agent(), &url);
        let code = oauth.start_device("cid", SCOPES).unwrap();
        assert_eq!(code.user_code, "WXYZ");
        assert_eq!(code.device_code.expose(), "dc");
        let request = recorded(&requests);
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/oauth2/device");
        assert_eq!(
            request.form(),
            form_of(&[
                ("client_id", "cid"),
                ("scopes", "chat:read user:manage:chat_color user:read:chat"),
            ])
        );
    }

    #[test]
    fn poll_device_posts_the_device_code_grant() {
        let (url, requests) = stub_server(
            "HTTP/1.1 400 Bad Request",
            r#"{"status":400,"message":"authorization_pending"}"#,
        );
        let oauth = OAuth::new(test_agent(), &url);
        let result = oauth.poll_device("cid", &Secret::new("dc"), SCOPES);
        assert_eq!(result, Err(OAuthError::AuthorizationPending));
        let request = recorded(&requests);
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/oauth2/token");
        assert_eq!(
            request.form(),
            form_of(&[
                ("client_id", "cid"),
                ("device_code", "dc"),
                ("scopes", "chat:read user:manage:chat_color user:read:chat"),
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ])
        );
    }

    #[test]
    fn server_errors_are_transient() {
        let (url, _requests) = stub_server("HTTP/1.1 503 Service Unavailable", "try later");
        let oauth = OAuth::new(test_agent(), &url);
        let error = oauth.validate(&Secret::new("tok")).unwrap_err();
        assert_eq!(error, status(503, "try later"));
        assert!(error.is_transient());
    }

    #[test]
    fn transport_errors_are_transient_and_never_show_tokens() {
        // A port that was just free and is closed again refuses the connection.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/oauth2", listener.local_addr().unwrap());
        drop(listener);
        let oauth = OAuth::new(test_agent(), &url);
        let errors = [
            oauth.validate(&Secret::new("tok-secret-1")).unwrap_err(),
            oauth
                .refresh(
                    &Secret::new("tok-secret-2"),
                    "cid",
                    &Secret::new("tok-secret-3"),
                )
                .unwrap_err(),
            oauth
                .poll_device("cid", &Secret::new("tok-secret-4"), SCOPES)
                .unwrap_err(),
        ];
        for error in errors {
            assert!(matches!(error, OAuthError::Transport { .. }), "{error:?}");
            assert!(error.is_transient());
            for shown in [error.to_string(), format!("{error:?}")] {
                assert!(!shown.contains("tok-secret"), "{shown}");
            }
        }
    }
}
