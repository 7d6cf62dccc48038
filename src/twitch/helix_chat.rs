//! The Helix calls chat over EventSub needs: channel logins to ids (`GET /users`), a
//! `channel.chat.message` subscription on a WebSocket session (`POST /eventsub/subscriptions`)
//! and the user's current color (`GET /chat/color`). Does I/O over the shared agent; what an
//! answer means (`interpret_*`) is pure.

use crate::base::ids::{Login, UserId};
use crate::base::secret::Secret;
use crate::color::{parse_rgb, Rgb};
use crate::twitch::helix::{read_answer, Answer, Helix, RateLimit};
use crate::twitch::http::{describe_transport_error, error_message};

/// Helix takes at most this many `login` parameters in one `GET /users`.
pub const MAX_LOGINS_PER_CALL: usize = 100;

/// Why a Helix call for chat failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelixCallError {
    /// 401: the access token is invalid or expired.
    Unauthorized,
    /// 403: the token lacks a scope (for subscriptions: `user:read:chat`) or is not the user's.
    Forbidden { message: String },
    /// 429: the bucket is empty until `rate_limit.reset_at_unix`.
    RateLimited { rate_limit: RateLimit },
    /// 429 whose message names a limit, not the rate ("number of websocket transports limit
    /// exceeded", "maximum subscriptions with type and condition exceeded", the total cost):
    /// waiting for the bucket does not help.
    LimitReached { limit: SubscriptionLimit, message: String },
    /// Any other status.
    Status { status: u16, message: String },
    /// The call did not complete, or the answer could not be read.
    Transport { message: String },
}

impl std::fmt::Display for HelixCallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HelixCallError::Unauthorized => f.write_str("token rejected (401)"),
            HelixCallError::Forbidden { message } => write!(f, "forbidden (403): {message}"),
            HelixCallError::RateLimited { .. } => f.write_str("rate limited (429)"),
            HelixCallError::LimitReached { message, .. } => write!(f, "limit reached (429): {message}"),
            HelixCallError::Status { status, message } => write!(f, "status {status}: {message}"),
            HelixCallError::Transport { message } => write!(f, "request failed: {message}"),
        }
    }
}

/// How a subscription request ended well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscribed {
    /// 202: the subscription is enabled.
    Created,
    /// 409: the same subscription already exists on this session.
    AlreadyExists,
}

/// Which of Twitch's EventSub limits a 429 on `POST /eventsub/subscriptions` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionLimit {
    /// "number of websocket transports limit exceeded": at most 3 WebSocket sessions with
    /// subscriptions per client id and user (twurple#616).
    Transports,
    /// "maximum subscriptions with type and condition exceeded": the same subscription is
    /// held elsewhere, possibly an orphan at Twitch (twitchdev/issues#1094).
    TypeAndCondition,
    /// The subscriptions' total cost would pass `max_total_cost`.
    TotalCost,
    /// Another message that says something was exceeded.
    Other,
}

impl SubscriptionLimit {
    /// The limit a 429's message names, or `None` when it names none (a plain rate limit:
    /// "Too Many Requests"). Every limit message seen says "exceeded".
    pub fn named_in(message: &str) -> Option<SubscriptionLimit> {
        let message = message.to_ascii_lowercase();
        if !message.contains("exceeded") {
            return None;
        }
        Some(if message.contains("transports") {
            SubscriptionLimit::Transports
        } else if message.contains("type and condition") {
            SubscriptionLimit::TypeAndCondition
        } else if message.contains("cost") {
            SubscriptionLimit::TotalCost
        } else {
            SubscriptionLimit::Other
        })
    }

    /// What the limit is and what to do about it, for the log.
    pub fn explained(self) -> &'static str {
        match self {
            SubscriptionLimit::Transports => "Twitch allows 3 EventSub WebSocket sessions per app and user; another program or another copy of twitch-colorchanger using the same client id and account holds them",
            SubscriptionLimit::TypeAndCondition => "a chat subscription for this channel and user already exists at Twitch (another program, or one Twitch has not cleaned up yet)",
            SubscriptionLimit::TotalCost => "the app's EventSub subscriptions for this user exceed Twitch's max_total_cost",
            SubscriptionLimit::Other => "Twitch's EventSub subscription limit",
        }
    }
}

fn error_for(answer: &Answer) -> HelixCallError {
    let message = error_message(&answer.body);
    match answer.status {
        401 => HelixCallError::Unauthorized,
        403 => HelixCallError::Forbidden { message },
        429 => match SubscriptionLimit::named_in(&message) {
            Some(limit) => HelixCallError::LimitReached { limit, message },
            None => HelixCallError::RateLimited {
                rate_limit: answer.rate_limit,
            },
        },
        status => HelixCallError::Status { status, message },
    }
}

fn data_of(body: &str) -> Result<Vec<serde_json::Value>, HelixCallError> {
    let value: serde_json::Value =
        serde_json::from_str(body).map_err(|_| HelixCallError::Transport {
            message: "the answer is not JSON".to_string(),
        })?;
    Ok(value
        .get("data")
        .and_then(serde_json::Value::as_array)
        .cloned()
        .unwrap_or_default())
}

/// Maps a `GET /users` answer to the logins and ids it names.
pub fn interpret_users(status: u16, body: &str) -> Result<Vec<(Login, UserId)>, HelixCallError> {
    let answer = Answer {
        status,
        body: body.to_string(),
        rate_limit: RateLimit::default(),
    };
    if !(200..=299).contains(&status) {
        return Err(error_for(&answer));
    }
    Ok(data_of(body)?
        .iter()
        .filter_map(|user| {
            let login = user.get("login")?.as_str()?;
            let id = user.get("id")?.as_str()?;
            Some((Login::new(login), UserId::new(id)))
        })
        .collect())
}

/// Maps a `POST /eventsub/subscriptions` answer to its outcome.
pub fn interpret_subscription(
    status: u16,
    body: &str,
    rate_limit: RateLimit,
) -> Result<Subscribed, HelixCallError> {
    match status {
        200..=299 => Ok(Subscribed::Created),
        409 => Ok(Subscribed::AlreadyExists),
        _ => Err(error_for(&Answer {
            status,
            body: body.to_string(),
            rate_limit,
        })),
    }
}

/// Maps a `GET /chat/color` answer to the user's color: `None` when never set (or a color
/// that is no `#RRGGBB`).
pub fn interpret_chat_color(status: u16, body: &str) -> Result<Option<Rgb>, HelixCallError> {
    if !(200..=299).contains(&status) {
        return Err(error_for(&Answer {
            status,
            body: body.to_string(),
            rate_limit: RateLimit::default(),
        }));
    }
    Ok(data_of(body)?
        .first()
        .and_then(|user| user.get("color")?.as_str())
        .and_then(parse_rgb))
}

/// The body of a chat subscription request.
pub fn subscription_body(session_id: &str, broadcaster_id: &UserId, user_id: &UserId) -> String {
    serde_json::json!({
        "type": "channel.chat.message",
        "version": "1",
        "condition": {
            "broadcaster_user_id": broadcaster_id.as_str(),
            "user_id": user_id.as_str(),
        },
        "transport": {"method": "websocket", "session_id": session_id},
    })
    .to_string()
}

impl Helix {
    /// Sends one call and reads the whole answer (so the agent can reuse the connection).
    fn call(
        &self,
        request: ureq::RequestBuilder<ureq::typestate::WithBody>,
        body: Option<String>,
    ) -> Result<Answer, HelixCallError> {
        let sent = match body {
            Some(body) => request
                .header("Content-Type", "application/json")
                .send(body),
            None => request.send_empty(),
        };
        let response = sent.map_err(|error| HelixCallError::Transport {
            message: describe_transport_error(&error),
        })?;
        Ok(read_answer(response, 256 * 1024))
    }

    fn authorised(
        &self,
        method: &str,
        path: &str,
        client_id: &str,
        token: &Secret,
    ) -> ureq::RequestBuilder<ureq::typestate::WithBody> {
        let url = format!("{}{path}", self.api_url());
        let builder = match method {
            "POST" => self.agent().post(&url),
            // GET with an empty body: ureq sends no body and no Content-Length for it.
            _ => self.agent().get(&url).force_send_body(),
        };
        builder
            .header("Authorization", format!("Bearer {}", token.expose()))
            .header("Client-Id", client_id)
    }

    /// `GET /users?login=…`: the ids of `logins`, [`MAX_LOGINS_PER_CALL`] per call. Logins
    /// Twitch does not know are left out of the answer.
    pub fn users_by_login(
        &self,
        client_id: &str,
        token: &Secret,
        logins: &[Login],
    ) -> Result<Vec<(Login, UserId)>, HelixCallError> {
        let mut found = Vec::new();
        for chunk in logins.chunks(MAX_LOGINS_PER_CALL) {
            let request = chunk.iter().fold(
                self.authorised("GET", "/users", client_id, token),
                |request, login| request.query("login", login.as_str()),
            );
            let answer = self.call(request, None)?;
            found.extend(interpret_users(answer.status, &answer.body)?);
        }
        Ok(found)
    }

    /// `POST /eventsub/subscriptions`: `channel.chat.message` v1 in `broadcaster_id`'s chat,
    /// read as `user_id`, delivered to WebSocket session `session_id`.
    pub fn subscribe_chat(
        &self,
        client_id: &str,
        token: &Secret,
        session_id: &str,
        broadcaster_id: &UserId,
        user_id: &UserId,
    ) -> Result<Subscribed, HelixCallError> {
        let request = self.authorised("POST", "/eventsub/subscriptions", client_id, token);
        let body = subscription_body(session_id, broadcaster_id, user_id);
        let answer = self.call(request, Some(body))?;
        interpret_subscription(answer.status, &answer.body, answer.rate_limit)
    }

    /// `GET /chat/color?user_id=…`: the user's current color, `None` if never set.
    pub fn chat_color(
        &self,
        client_id: &str,
        token: &Secret,
        user_id: &UserId,
    ) -> Result<Option<Rgb>, HelixCallError> {
        let request = self
            .authorised("GET", "/chat/color", client_id, token)
            .query("user_id", user_id.as_str());
        let answer = self.call(request, None)?;
        interpret_chat_color(answer.status, &answer.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Ids = Vec<(Login, UserId)>;
    type Color = Option<Rgb>;

    #[test]
    fn users_answers_map_to_ids() {
        let cases: Vec<(u16, &str, Result<Ids, HelixCallError>)> = vec![
            (
                200,
                r#"{"data":[{"id":"1","login":"alice"},{"id":"2","login":"Bob"},{"login":"x"}]}"#,
                Ok(vec![
                    (Login::new("alice"), UserId::new("1")),
                    (Login::new("bob"), UserId::new("2")),
                ]),
            ),
            (200, r#"{"data":[]}"#, Ok(vec![])),
            (401, "", Err(HelixCallError::Unauthorized)),
            (
                400,
                r#"{"message":"too many"}"#,
                Err(HelixCallError::Status {
                    status: 400,
                    message: "too many".into(),
                }),
            ),
            (
                200,
                "<html>",
                Err(HelixCallError::Transport {
                    message: "the answer is not JSON".into(),
                }),
            ),
        ];
        for (status, body, expected) in cases {
            assert_eq!(interpret_users(status, body), expected, "{status} {body}");
        }
    }

    #[test]
    fn subscription_answers_map_to_outcomes() {
        let limit = RateLimit {
            remaining: Some(0),
            reset_at_unix: Some(1_700_000_000),
        };
        let cases: Vec<(u16, &str, Result<Subscribed, HelixCallError>)> = vec![
            (
                202,
                r#"{"data":[{"status":"enabled"}]}"#,
                Ok(Subscribed::Created),
            ),
            (409, "", Ok(Subscribed::AlreadyExists)),
            (401, "", Err(HelixCallError::Unauthorized)),
            (
                403,
                r#"{"message":"subscription missing proper authorization"}"#,
                Err(HelixCallError::Forbidden {
                    message: "subscription missing proper authorization".into(),
                }),
            ),
            (
                429,
                "",
                Err(HelixCallError::RateLimited { rate_limit: limit }),
            ),
            (
                429,
                r#"{"error":"Too Many Requests","status":429,"message":"Too Many Requests"}"#,
                Err(HelixCallError::RateLimited { rate_limit: limit }),
            ),
            (
                429,
                r#"{"error":"Too Many Requests","status":429,"message":"number of websocket transports limit exceeded"}"#,
                Err(HelixCallError::LimitReached {
                    limit: SubscriptionLimit::Transports,
                    message: "number of websocket transports limit exceeded".into(),
                }),
            ),
            (
                429,
                r#"{"status":429,"message":"maximum subscriptions with type and condition exceeded"}"#,
                Err(HelixCallError::LimitReached {
                    limit: SubscriptionLimit::TypeAndCondition,
                    message: "maximum subscriptions with type and condition exceeded".into(),
                }),
            ),
            (
                429,
                r#"{"status":429,"message":"total cost exceeded"}"#,
                Err(HelixCallError::LimitReached {
                    limit: SubscriptionLimit::TotalCost,
                    message: "total cost exceeded".into(),
                }),
            ),
            (
                500,
                "oops",
                Err(HelixCallError::Status {
                    status: 500,
                    message: "oops".into(),
                }),
            ),
        ];
        for (status, body, expected) in cases {
            assert_eq!(
                interpret_subscription(status, body, limit),
                expected,
                "{status}"
            );
        }
    }

    #[test]
    fn chat_color_answers_map_to_the_color() {
        let cases: Vec<(u16, &str, Result<Color, HelixCallError>)> = vec![
            (
                200,
                r##"{"data":[{"user_id":"1","color":"#19E6E6"}]}"##,
                Ok(Some(Rgb {
                    r: 0x19,
                    g: 0xe6,
                    b: 0xe6,
                })),
            ),
            (200, r#"{"data":[{"user_id":"1","color":""}]}"#, Ok(None)),
            (200, r#"{"data":[]}"#, Ok(None)),
            (401, "", Err(HelixCallError::Unauthorized)),
        ];
        for (status, body, expected) in cases {
            assert_eq!(interpret_chat_color(status, body), expected, "{body}");
        }
    }

    #[test]
    fn the_subscription_body_names_type_condition_and_session() {
        let body: serde_json::Value = serde_json::from_str(&subscription_body(
            "s1",
            &UserId::new("77"),
            &UserId::new("1001"),
        ))
        .unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "type": "channel.chat.message",
                "version": "1",
                "condition": {"broadcaster_user_id": "77", "user_id": "1001"},
                "transport": {"method": "websocket", "session_id": "s1"},
            })
        );
    }
}
