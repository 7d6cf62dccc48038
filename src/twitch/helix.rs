//! Blocking HTTP calls to Twitch Helix (chat color) over one shared `ureq::Agent`. Does I/O;
//! the response interpretation (`interpret_color_response`) is pure.

use std::time::Duration;

use ureq::Agent;

use crate::base::backoff::{exponential_ceiling, upper_half_jitter};
use crate::base::ids::UserId;
use crate::base::secret::Secret;
use crate::color::Color;
use crate::twitch::http::{describe_transport_error, error_message};

/// What Helix told us about the caller's rate-limit bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateLimit {
    pub remaining: Option<u32>,
    /// Unix seconds at which the bucket is full again.
    pub reset_at_unix: Option<u64>,
}

/// Why a Helix call failed, for every call the daemon makes (the color change, and EventSub's
/// user lookups, subscriptions and color reads). Each is a normal outcome the caller acts on;
/// `Display` says what happened, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelixError {
    /// 401: the access token is invalid or expired, lacks the scope the call needs, or was
    /// made for another client id. `message`: what Twitch said (e.g. "Client ID and OAuth
    /// token do not match"), the one hint at which.
    Unauthorized { message: String },
    /// 400: Twitch refused the request; for a hex color this means the user has no
    /// Turbo/Prime.
    Rejected { message: String },
    /// 403: the token lacks a scope (for subscriptions: `user:read:chat`) or is not the
    /// user's.
    Forbidden { message: String },
    /// 429: the bucket is empty until `rate_limit.reset_at_unix`.
    RateLimited { rate_limit: RateLimit },
    /// 429 whose message names a limit, not the rate ("number of websocket transports limit
    /// exceeded", "maximum subscriptions with type and condition exceeded", the total cost;
    /// EventSub subscriptions): waiting for the bucket does not help.
    LimitReached {
        limit: SubscriptionLimit,
        message: String,
    },
    /// Any other status, 5xx included.
    Status { status: u16, message: String },
    /// The call did not complete (connect failure, timeout, broken connection), or its
    /// answer could not be read.
    Transport { message: String },
}

impl std::fmt::Display for HelixError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HelixError::Unauthorized { message } if message.is_empty() => {
                f.write_str("token rejected (401)")
            }
            HelixError::Unauthorized { message } => write!(f, "token rejected (401): {message}"),
            HelixError::Rejected { message } => write!(f, "refused (400): {message}"),
            HelixError::Forbidden { message } => write!(f, "forbidden (403): {message}"),
            HelixError::RateLimited { .. } => f.write_str("rate limited (429)"),
            HelixError::LimitReached { message, .. } => {
                write!(f, "limit reached (429): {message}")
            }
            HelixError::Status { status, message } => write!(f, "status {status}: {message}"),
            HelixError::Transport { message } => write!(f, "request failed: {message}"),
        }
    }
}

impl HelixError {
    /// True for failures that may pass if the same call is made again a little later.
    pub fn is_transient(&self) -> bool {
        match self {
            HelixError::Status { status, .. } => *status >= 500,
            HelixError::Transport { .. } | HelixError::RateLimited { .. } => true,
            HelixError::Unauthorized { .. }
            | HelixError::Rejected { .. }
            | HelixError::Forbidden { .. }
            | HelixError::LimitReached { .. } => false,
        }
    }
}

/// Attempts of one color change before it is given up, the first included.
pub const MAX_ATTEMPTS: u32 = 4;
/// The longest a worker waits for a user's rate-limit bucket to refill.
pub const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);
/// The first wait before retrying a 5xx or a failed call; doubles with each attempt.
pub const RETRY_BASE: Duration = Duration::from_millis(500);

/// How long to wait before attempt `attempt + 1` after `attempt` (1 for the first) failed
/// with `error`; `None` when the change should be given up. `now_unix` is the wall-clock
/// time in Unix seconds (Helix's reset times are Unix seconds) and `random_unit` is in
/// `0.0..1.0`.
pub fn retry_delay(
    error: &HelixError,
    attempt: u32,
    now_unix: u64,
    random_unit: f64,
) -> Option<Duration> {
    if attempt >= MAX_ATTEMPTS || !error.is_transient() {
        return None;
    }
    if let HelixError::RateLimited { rate_limit } = error {
        // Without a reset time, a second is what one token of an 800-a-minute bucket takes.
        return Some(
            bucket_wait(rate_limit.reset_at_unix, now_unix).unwrap_or(Duration::from_secs(1)),
        );
    }
    // Attempts are few (MAX_ATTEMPTS), so the ceiling never reaches its cap in practice.
    let ceiling = exponential_ceiling(RETRY_BASE, RETRY_BASE * 1024, attempt);
    Some(upper_half_jitter(ceiling, random_unit))
}

/// How long until a bucket that resets at `reset_at_unix` is full again, at least a second
/// (reset times are whole seconds) and at most [`MAX_RATE_LIMIT_WAIT`].
pub fn bucket_wait(reset_at_unix: Option<u64>, now_unix: u64) -> Option<Duration> {
    let reset_at = reset_at_unix?;
    let seconds = reset_at.saturating_sub(now_unix).max(1);
    Some(Duration::from_secs(seconds).min(MAX_RATE_LIMIT_WAIT))
}

/// The Helix API at one base URL (`https://api.twitch.tv/helix` or a test server).
pub struct Helix {
    agent: Agent,
    api_url: String,
}

impl Helix {
    pub fn new(agent: Agent, api_url: &str) -> Helix {
        Helix {
            agent,
            api_url: api_url.trim_end_matches('/').to_string(),
        }
    }

    /// The shared agent, for the chat calls in `helix_chat`.
    pub(crate) fn agent(&self) -> &Agent {
        &self.agent
    }

    /// The base URL without a trailing `/`.
    pub(crate) fn api_url(&self) -> &str {
        &self.api_url
    }

    /// `PUT /chat/color`: sets the chat color of the token's user.
    pub fn put_color(
        &self,
        user_id: &UserId,
        client_id: &str,
        token: &Secret,
        color: &Color,
    ) -> Result<RateLimit, HelixError> {
        // `color` is `blue_violet` or `#AABBCC`; ureq percent-encodes the `#`.
        let response = self
            .agent
            .put(format!("{}/chat/color", self.api_url))
            .query("user_id", user_id.as_str())
            .query("color", color.to_string())
            .header("Authorization", format!("Bearer {}", token.expose()))
            .header("Client-Id", client_id)
            .send_empty()
            .map_err(|error| HelixError::Transport {
                message: describe_transport_error(&error),
            })?;
        let answer = read_answer(response, 64 * 1024);
        interpret_color_response(answer.status, &answer.body, answer.rate_limit)
    }
}

/// A Helix answer as the pure interpreters see it: status, body and the rate-limit
/// headers Helix sends with every response.
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub rate_limit: RateLimit,
}

/// Reads `response` to its end, at most `limit` bytes of body (reading it whole lets the
/// agent reuse the connection).
pub fn read_answer(mut response: ureq::http::Response<ureq::Body>, limit: u64) -> Answer {
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string)
    };
    let rate_limit = parse_rate_limit(
        header("ratelimit-remaining").as_deref(),
        header("ratelimit-reset").as_deref(),
    );
    let body = response
        .body_mut()
        .with_config()
        .limit(limit)
        .read_to_string()
        .unwrap_or_default();
    Answer {
        status,
        body,
        rate_limit,
    }
}

/// Maps a `PUT /chat/color` answer to its outcome.
pub fn interpret_color_response(
    status: u16,
    body: &str,
    rate_limit: RateLimit,
) -> Result<RateLimit, HelixError> {
    match status {
        200..=299 => Ok(rate_limit),
        _ => Err(error_for(status, body, rate_limit)),
    }
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

/// What a Helix answer that is no success says, for every call.
pub fn error_for(status: u16, body: &str, rate_limit: RateLimit) -> HelixError {
    match status {
        401 => HelixError::Unauthorized {
            message: error_message(body),
        },
        400 => HelixError::Rejected {
            message: error_message(body),
        },
        403 => HelixError::Forbidden {
            message: error_message(body),
        },
        429 => match SubscriptionLimit::named_in(&error_message(body)) {
            Some(limit) => HelixError::LimitReached {
                limit,
                message: error_message(body),
            },
            None => HelixError::RateLimited { rate_limit },
        },
        status => HelixError::Status {
            status,
            message: error_message(body),
        },
    }
}

/// Reads the rate-limit headers Helix sends with every response.
pub fn parse_rate_limit(remaining: Option<&str>, reset: Option<&str>) -> RateLimit {
    RateLimit {
        remaining: remaining.and_then(|value| value.trim().parse().ok()),
        reset_at_unix: reset.and_then(|value| value.trim().parse().ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn color_responses_map_to_outcomes() {
        let limit = RateLimit {
            remaining: Some(799),
            reset_at_unix: Some(1_700_000_000),
        };
        let cases: Vec<(u16, &str, Result<RateLimit, HelixError>)> = vec![
            (204, "", Ok(limit)),
            (
                401,
                r#"{"message":"Invalid OAuth token"}"#,
                Err(HelixError::Unauthorized {
                    message: "Invalid OAuth token".into(),
                }),
            ),
            (
                400,
                r#"{"error":"Bad Request","status":400,"message":"invalid color"}"#,
                Err(HelixError::Rejected {
                    message: "invalid color".into(),
                }),
            ),
            (429, "", Err(HelixError::RateLimited { rate_limit: limit })),
            (
                503,
                "upstream down",
                Err(HelixError::Status {
                    status: 503,
                    message: "upstream down".into(),
                }),
            ),
        ];
        for (status, body, expected) in cases {
            assert_eq!(
                interpret_color_response(status, body, limit),
                expected,
                "{status}"
            );
        }
    }

    #[test]
    fn transient_errors_are_the_retryable_ones() {
        let cases = [
            (
                HelixError::Unauthorized {
                    message: String::new(),
                },
                false,
            ),
            (
                HelixError::Rejected {
                    message: String::new(),
                },
                false,
            ),
            (
                HelixError::RateLimited {
                    rate_limit: RateLimit::default(),
                },
                true,
            ),
            (
                HelixError::Status {
                    status: 500,
                    message: String::new(),
                },
                true,
            ),
            (
                HelixError::Status {
                    status: 404,
                    message: String::new(),
                },
                false,
            ),
            (
                HelixError::Transport {
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
    fn retry_delays_follow_the_error_and_the_attempt() {
        let server_error = HelixError::Status {
            status: 500,
            message: String::new(),
        };
        let transport = HelixError::Transport {
            message: String::new(),
        };
        let limited = |reset| HelixError::RateLimited {
            rate_limit: RateLimit {
                remaining: Some(0),
                reset_at_unix: reset,
            },
        };
        let now = 1_000;
        let cases: Vec<(HelixError, u32, f64, Option<u64>)> = vec![
            (server_error.clone(), 1, 1.0, Some(500)),
            (server_error.clone(), 1, 0.0, Some(250)),
            (server_error.clone(), 2, 1.0, Some(1_000)),
            (server_error.clone(), 3, 1.0, Some(2_000)),
            (server_error.clone(), MAX_ATTEMPTS, 1.0, None),
            (transport.clone(), 1, 1.0, Some(500)),
            (limited(Some(1_005)), 1, 0.3, Some(5_000)),
            (limited(Some(999)), 1, 0.3, Some(1_000)),
            (limited(Some(9_999)), 1, 0.3, Some(60_000)),
            (limited(None), 1, 0.3, Some(1_000)),
            (limited(Some(1_005)), MAX_ATTEMPTS, 0.3, None),
            (
                HelixError::Unauthorized {
                    message: String::new(),
                },
                1,
                1.0,
                None,
            ),
            (
                HelixError::Rejected {
                    message: String::new(),
                },
                1,
                1.0,
                None,
            ),
        ];
        for (error, attempt, unit, expected_ms) in cases {
            assert_eq!(
                retry_delay(&error, attempt, now, unit),
                expected_ms.map(Duration::from_millis),
                "{error:?} attempt {attempt}"
            );
        }
    }

    #[test]
    fn rate_limit_headers_parse_leniently() {
        let cases = [
            (
                Some("799"),
                Some("1700000000"),
                Some(799),
                Some(1_700_000_000),
            ),
            (Some(" 0 "), None, Some(0), None),
            (Some("x"), Some(""), None, None),
            (None, None, None, None),
        ];
        for (remaining, reset, expected_remaining, expected_reset) in cases {
            let parsed = parse_rate_limit(remaining, reset);
            assert_eq!(parsed.remaining, expected_remaining);
            assert_eq!(parsed.reset_at_unix, expected_reset);
        }
    }
}
