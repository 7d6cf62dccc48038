//! The Helix calls chat over EventSub needs: channel logins to ids (`GET /users`), a
//! `channel.chat.message` subscription on a WebSocket session (`POST /eventsub/subscriptions`)
//! and the user's current color (`GET /chat/color`). Does I/O over the shared agent; what an
//! answer means (`interpret_*`) is pure.

use crate::base::ids::{Login, UserId};
use crate::base::secret::Secret;
use crate::color::{parse_rgb, Rgb};
use crate::twitch::helix::{error_for, read_answer, Answer, Helix, HelixError, RateLimit};
use crate::twitch::http::describe_transport_error;

/// Helix takes at most this many `login` parameters in one `GET /users`.
pub const MAX_LOGINS_PER_CALL: usize = 100;

/// How a subscription request ended well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscribed {
    /// 202: the subscription is enabled.
    Created,
    /// 409: the same subscription already exists on this session.
    AlreadyExists,
}

fn error_of(answer: &Answer) -> HelixError {
    error_for(answer.status, &answer.body, answer.rate_limit)
}

fn data_of(body: &str) -> Result<Vec<serde_json::Value>, HelixError> {
    let value: serde_json::Value =
        serde_json::from_str(body).map_err(|_| HelixError::Transport {
            message: "the answer is not JSON".to_string(),
        })?;
    Ok(value
        .get("data")
        .and_then(serde_json::Value::as_array)
        .cloned()
        .unwrap_or_default())
}

/// Maps a `GET /users` answer to the logins and ids it names.
pub fn interpret_users(status: u16, body: &str) -> Result<Vec<(Login, UserId)>, HelixError> {
    let answer = Answer {
        status,
        body: body.to_string(),
        rate_limit: RateLimit::default(),
    };
    if !(200..=299).contains(&status) {
        return Err(error_of(&answer));
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
) -> Result<Subscribed, HelixError> {
    match status {
        200..=299 => Ok(Subscribed::Created),
        409 => Ok(Subscribed::AlreadyExists),
        _ => Err(error_of(&Answer {
            status,
            body: body.to_string(),
            rate_limit,
        })),
    }
}

/// Maps a `GET /chat/color` answer to the user's color: `None` when never set (or a color
/// that is no `#RRGGBB`).
pub fn interpret_chat_color(status: u16, body: &str) -> Result<Option<Rgb>, HelixError> {
    if !(200..=299).contains(&status) {
        return Err(error_of(&Answer {
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
    ) -> Result<Answer, HelixError> {
        let sent = match body {
            Some(body) => request
                .header("Content-Type", "application/json")
                .send(body),
            None => request.send_empty(),
        };
        let response = sent.map_err(|error| HelixError::Transport {
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
    ) -> Result<Vec<(Login, UserId)>, HelixError> {
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
    ) -> Result<Subscribed, HelixError> {
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
    ) -> Result<Option<Rgb>, HelixError> {
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
    use crate::twitch::helix::SubscriptionLimit;

    type Ids = Vec<(Login, UserId)>;
    type Color = Option<Rgb>;

    #[test]
    fn users_answers_map_to_ids() {
        let cases: Vec<(u16, &str, Result<Ids, HelixError>)> = vec![
            (
                200,
                r#"{"data":[{"id":"1","login":"alice"},{"id":"2","login":"Bob"},{"login":"x"}]}"#,
                Ok(vec![
                    (Login::new("alice"), UserId::new("1")),
                    (Login::new("bob"), UserId::new("2")),
                ]),
            ),
            (200, r#"{"data":[]}"#, Ok(vec![])),
            (
                401,
                "",
                Err(HelixError::Unauthorized { message: "".into() }),
            ),
            (
                400,
                r#"{"message":"too many"}"#,
                Err(HelixError::Rejected {
                    message: "too many".into(),
                }),
            ),
            (
                200,
                "<html>",
                Err(HelixError::Transport {
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
        let cases: Vec<(u16, &str, Result<Subscribed, HelixError>)> = vec![
            (
                202,
                r#"{"data":[{"status":"enabled"}]}"#,
                Ok(Subscribed::Created),
            ),
            (409, "", Ok(Subscribed::AlreadyExists)),
            (
                401,
                "",
                Err(HelixError::Unauthorized { message: "".into() }),
            ),
            (
                403,
                r#"{"message":"subscription missing proper authorization"}"#,
                Err(HelixError::Forbidden {
                    message: "subscription missing proper authorization".into(),
                }),
            ),
            (429, "", Err(HelixError::RateLimited { rate_limit: limit })),
            (
                429,
                r#"{"error":"Too Many Requests","status":429,"message":"Too Many Requests"}"#,
                Err(HelixError::RateLimited { rate_limit: limit }),
            ),
            (
                429,
                r#"{"error":"Too Many Requests","status":429,"message":"number of websocket transports limit exceeded"}"#,
                Err(HelixError::LimitReached {
                    limit: SubscriptionLimit::Transports,
                    message: "number of websocket transports limit exceeded".into(),
                }),
            ),
            (
                429,
                r#"{"status":429,"message":"maximum subscriptions with type and condition exceeded"}"#,
                Err(HelixError::LimitReached {
                    limit: SubscriptionLimit::TypeAndCondition,
                    message: "maximum subscriptions with type and condition exceeded".into(),
                }),
            ),
            (
                429,
                r#"{"status":429,"message":"total cost exceeded"}"#,
                Err(HelixError::LimitReached {
                    limit: SubscriptionLimit::TotalCost,
                    message: "total cost exceeded".into(),
                }),
            ),
            (
                500,
                "oops",
                Err(HelixError::Status {
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
        let cases: Vec<(u16, &str, Result<Color, HelixError>)> = vec![
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
            (
                401,
                "",
                Err(HelixError::Unauthorized { message: "".into() }),
            ),
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
