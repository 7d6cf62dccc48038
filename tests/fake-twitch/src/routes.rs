//! The fake's default Helix and OAuth behaviour: maps a recorded request and the fake's state to
//! an answer, changing the state (colors, rotated tokens, device codes) on the way. No I/O
//! happens here; the HTTP server calls it under the state lock.

use serde_json::json;

use crate::eventsub::{self, EventSubSubscription, CHAT_MESSAGE_TYPE, READ_CHAT_SCOPE};
use crate::wire::{self, RequestedColor};
use crate::{DeviceCodeRecord, HttpRequest, ScriptedResponse, State};

/// Helix points per minute per user, as Twitch reports in `Ratelimit-Limit`.
pub(crate) const RATELIMIT_LIMIT: u32 = 800;

const DEVICE_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The answer Twitch would give to `request` when no scripted answer is queued.
pub(crate) fn default_response(
    state: &mut State,
    request: &HttpRequest,
    now_unix_seconds: u64,
) -> ScriptedResponse {
    let method = request.method.to_ascii_uppercase();
    match (method.as_str(), request.path.as_str()) {
        ("PUT", "/helix/chat/color") => update_chat_color(state, request, now_unix_seconds),
        ("GET", "/helix/chat/color") => get_chat_color(state, request, now_unix_seconds),
        ("GET", "/helix/users") => get_users(state, request, now_unix_seconds),
        ("POST", "/helix/eventsub/subscriptions") => {
            create_subscription(state, request, now_unix_seconds)
        }
        ("GET", "/oauth2/validate") => validate(state, request),
        ("POST", "/oauth2/token") => token(state, request),
        ("POST", "/oauth2/device") => device(state, request),
        _ => json_error(404, Some("Not Found"), ""),
    }
}

fn json_error(status: u16, error: Option<&str>, message: &str) -> ScriptedResponse {
    let body = match error {
        Some(error) => json!({"error": error, "status": status, "message": message}),
        None => json!({"status": status, "message": message}),
    };
    ScriptedResponse::json(status, &body.to_string())
}

fn helix_unauthorized() -> ScriptedResponse {
    json_error(401, Some("Unauthorized"), "Invalid OAuth token")
        .with_header("Ratelimit-Limit", &RATELIMIT_LIMIT.to_string())
}

fn helix_bad_request(message: &str) -> ScriptedResponse {
    json_error(400, Some("Bad Request"), message)
}

/// The login whose current access token is in `Authorization: Bearer` and whose client id is
/// in `Client-Id`.
fn helix_login(state: &State, request: &HttpRequest) -> Option<String> {
    let token = token_after_scheme(request.header("Authorization")?, &["Bearer"])?;
    let client_id = request.header("Client-Id")?;
    state
        .accounts
        .values()
        .find(|record| record.accepts_access_token(token) && record.account.client_id == client_id)
        .map(|record| record.account.login.clone())
}

fn token_after_scheme<'a>(authorization: &'a str, schemes: &[&str]) -> Option<&'a str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    schemes
        .iter()
        .any(|accepted| accepted.eq_ignore_ascii_case(scheme))
        .then(|| token.trim())
}

/// Takes one point from the user's bucket and adds the rate limit headers Helix always sends.
fn charge_ratelimit(
    state: &mut State,
    login: &str,
    now_unix_seconds: u64,
    response: ScriptedResponse,
) -> ScriptedResponse {
    let Some(record) = state.accounts.get_mut(login) else {
        return response;
    };
    if now_unix_seconds >= record.ratelimit_reset_unix_seconds {
        record.ratelimit_remaining = RATELIMIT_LIMIT;
        record.ratelimit_reset_unix_seconds = now_unix_seconds + 60;
    }
    record.ratelimit_remaining = record.ratelimit_remaining.saturating_sub(1);
    response
        .with_header("Ratelimit-Limit", &RATELIMIT_LIMIT.to_string())
        .with_header(
            "Ratelimit-Remaining",
            &record.ratelimit_remaining.to_string(),
        )
        .with_header(
            "Ratelimit-Reset",
            &record.ratelimit_reset_unix_seconds.to_string(),
        )
}

/// Helix's 401 for a token sent with a `Client-Id` it was not made for (Twitch's wording;
/// docs/twitch-behaviour.md).
fn helix_client_mismatch() -> ScriptedResponse {
    json_error(
        401,
        Some("Unauthorized"),
        "Client ID and OAuth token do not match",
    )
    .with_header("Ratelimit-Limit", &RATELIMIT_LIMIT.to_string())
}

/// True when the bearer token is some account's current one but `Client-Id` is not the
/// client id that token was made for.
fn is_client_mismatch(state: &State, request: &HttpRequest) -> bool {
    let Some(token) = request
        .header("Authorization")
        .and_then(|authorization| token_after_scheme(authorization, &["Bearer"]))
    else {
        return false;
    };
    let client_id = request.header("Client-Id").unwrap_or("");
    state
        .accounts
        .values()
        .any(|record| record.accepts_access_token(token) && record.account.client_id != client_id)
}

fn update_chat_color(
    state: &mut State,
    request: &HttpRequest,
    now_unix_seconds: u64,
) -> ScriptedResponse {
    let Some(login) = helix_login(state, request) else {
        if is_client_mismatch(state, request) {
            return helix_client_mismatch();
        }
        return helix_unauthorized();
    };
    let record = state
        .accounts
        .get_mut(&login)
        .expect("account of a valid token");
    if !record
        .account
        .scopes
        .iter()
        .any(|scope| scope == "user:manage:chat_color")
    {
        return json_error(
            401,
            Some("Unauthorized"),
            "Missing scope: user:manage:chat_color",
        );
    }
    let response = match (request.query_param("user_id"), request.query_param("color")) {
        (None, _) => helix_bad_request("Missing required parameter \"user_id\""),
        (Some(user_id), _) if user_id != record.account.user_id => helix_unauthorized(),
        (Some(_), None) => helix_bad_request("Missing required parameter \"color\""),
        (Some(_), Some(color)) => match wire::parse_requested_color(color) {
            None => helix_bad_request("invalid color"),
            Some(RequestedColor::Hex(_)) if !record.account.turbo => {
                helix_bad_request("invalid color")
            }
            Some(RequestedColor::Named(color) | RequestedColor::Hex(color)) => {
                record.current_color = color;
                ScriptedResponse::status(204)
            }
        },
    };
    charge_ratelimit(state, &login, now_unix_seconds, response)
}

fn get_chat_color(
    state: &mut State,
    request: &HttpRequest,
    now_unix_seconds: u64,
) -> ScriptedResponse {
    let Some(login) = helix_login(state, request) else {
        return helix_unauthorized();
    };
    let user_ids: Vec<&str> = request.query_params("user_id").collect();
    let response = if user_ids.is_empty() {
        helix_bad_request("Missing required parameter \"user_id\"")
    } else {
        let data: Vec<serde_json::Value> = user_ids
            .iter()
            .filter_map(|user_id| state.account_by_user_id(user_id))
            .map(|record| {
                json!({
                    "user_id": record.account.user_id,
                    "user_login": record.account.login,
                    "user_name": wire::display_name_for_login(&record.account.login),
                    "color": wire::color_as_shown(&record.current_color),
                })
            })
            .collect();
        ScriptedResponse::json(200, &json!({ "data": data }).to_string())
    };
    charge_ratelimit(state, &login, now_unix_seconds, response)
}

/// Users by `id` and `login` (at most 100 together, as Helix allows), or the token's user
/// when none is asked for. A login that is no registered account still resolves, with the
/// made-up id IRC uses for its room, so tests can name any channel.
fn get_users(state: &mut State, request: &HttpRequest, now_unix_seconds: u64) -> ScriptedResponse {
    let Some(login) = helix_login(state, request) else {
        return helix_unauthorized();
    };
    let asked_ids: Vec<&str> = request.query_params("id").collect();
    let asked_logins: Vec<String> = request
        .query_params("login")
        .map(str::to_lowercase)
        .collect();
    if asked_ids.len() + asked_logins.len() > 100 {
        let response = helix_bad_request(
            "The maximum number of values of the id and login parameters combined is 100",
        );
        return charge_ratelimit(state, &login, now_unix_seconds, response);
    }
    let user_json = |user_id: &str, user_login: &str| {
        json!({
            "id": user_id,
            "login": user_login,
            "display_name": wire::display_name_for_login(user_login),
            "type": "",
            "broadcaster_type": "",
            "description": "",
            "created_at": "2016-12-14T20:32:28Z",
        })
    };
    let mut data: Vec<serde_json::Value> = state
        .accounts
        .values()
        .filter(|record| {
            if asked_ids.is_empty() && asked_logins.is_empty() {
                record.account.login == login
            } else {
                asked_ids.contains(&record.account.user_id.as_str())
                    || asked_logins.contains(&record.account.login)
            }
        })
        .map(|record| user_json(&record.account.user_id, &record.account.login))
        .collect();
    for asked_login in &asked_logins {
        let valid = !asked_login.is_empty()
            && asked_login.len() <= 25
            && asked_login
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_');
        if valid && !state.accounts.contains_key(asked_login) {
            let user_id = eventsub::user_id_for_login(state, asked_login);
            data.push(user_json(&user_id, asked_login));
        }
    }
    let response = ScriptedResponse::json(200, &json!({ "data": data }).to_string());
    charge_ratelimit(state, &login, now_unix_seconds, response)
}

/// `POST /helix/eventsub/subscriptions` for `channel.chat.message` over a WebSocket session:
/// checks the token, the body, the session, the condition's user and the `user:read:chat`
/// scope, refuses duplicates with 409, and enables the subscription.
fn create_subscription(
    state: &mut State,
    request: &HttpRequest,
    now_unix_seconds: u64,
) -> ScriptedResponse {
    let Some(login) = helix_login(state, request) else {
        return helix_unauthorized();
    };
    let response = match subscription_from(state, request, &login) {
        Err(response) => response,
        Ok(subscription) => {
            let body = json!({
                "data": [eventsub::subscription_json(&subscription)],
                "total": state.eventsub.subscriptions.iter().filter(|s| s.is_enabled()).count() + 1,
                "total_cost": 0,
                "max_total_cost": 10,
            });
            let banned = state.eventsub.banned.contains(&(
                subscription.user_id.clone(),
                subscription.broadcaster_user_id.clone(),
            ));
            state.eventsub.subscriptions.push(subscription);
            if banned {
                let index = state.eventsub.subscriptions.len() - 1;
                state.eventsub.revoke(index, "chat_user_banned");
            }
            ScriptedResponse::json(202, &body.to_string())
        }
    };
    charge_ratelimit(state, &login, now_unix_seconds, response)
}

fn subscription_from(
    state: &State,
    request: &HttpRequest,
    login: &str,
) -> Result<EventSubSubscription, ScriptedResponse> {
    let body: serde_json::Value = serde_json::from_str(&request.body)
        .map_err(|_| helix_bad_request("Malformed request body"))?;
    let text = |value: &serde_json::Value| value.as_str().unwrap_or("").to_string();
    let subscription_type = text(&body["type"]);
    let version = text(&body["version"]);
    if subscription_type != CHAT_MESSAGE_TYPE || version != "1" {
        return Err(helix_bad_request(
            "unsupported subscription type or version",
        ));
    }
    if body["transport"]["method"] != "websocket" {
        return Err(helix_bad_request(
            "the fake serves only the websocket transport",
        ));
    }
    let session_id = text(&body["transport"]["session_id"]);
    if !state.eventsub.is_live(&session_id) {
        return Err(helix_bad_request(
            "websocket transport session does not exist or has already disconnected",
        ));
    }
    let broadcaster_user_id = text(&body["condition"]["broadcaster_user_id"]);
    let user_id = text(&body["condition"]["user_id"]);
    if broadcaster_user_id.is_empty() || user_id.is_empty() {
        return Err(helix_bad_request(
            "condition needs broadcaster_user_id and user_id",
        ));
    }
    let record = &state.accounts[login];
    if user_id != record.account.user_id
        || !record
            .account
            .scopes
            .iter()
            .any(|scope| scope == READ_CHAT_SCOPE)
    {
        return Err(json_error(
            403,
            Some("Forbidden"),
            "subscription missing proper authorization",
        ));
    }
    let same_session = |existing: &&EventSubSubscription| {
        existing.is_enabled() && existing.session_id == session_id
    };
    if state
        .eventsub
        .subscriptions
        .iter()
        .filter(same_session)
        .any(|existing| {
            existing.broadcaster_user_id == broadcaster_user_id && existing.user_id == user_id
        })
    {
        return Err(json_error(
            409,
            Some("Conflict"),
            "subscription already exists",
        ));
    }
    let mut other_sessions: Vec<&str> = state
        .eventsub
        .subscriptions
        .iter()
        .filter(|existing| {
            existing.is_enabled()
                && existing.user_id == user_id
                && existing.session_id != session_id
                && state.eventsub.is_live(&existing.session_id)
        })
        .map(|existing| existing.session_id.as_str())
        .collect();
    other_sessions.sort_unstable();
    other_sessions.dedup();
    if !state.eventsub.has_enabled_subscription(&session_id)
        && other_sessions.len() >= eventsub::MAX_SESSIONS_PER_USER
    {
        return Err(json_error(
            429,
            Some("Too Many Requests"),
            "number of websocket transports limit exceeded",
        ));
    }
    if state
        .eventsub
        .subscriptions
        .iter()
        .filter(same_session)
        .count()
        >= eventsub::MAX_SUBSCRIPTIONS_PER_SESSION
    {
        return Err(json_error(
            429,
            Some("Too Many Requests"),
            "number of websocket transports limit exceeded",
        ));
    }
    Ok(EventSubSubscription {
        id: wire::uuid_like(state.eventsub.subscriptions.len() as u64 + 1, 0x5ab5),
        login: login.to_string(),
        subscription_type,
        version,
        broadcaster_user_id,
        user_id,
        session_id,
        status: "enabled".to_string(),
    })
}

fn validate(state: &mut State, request: &HttpRequest) -> ScriptedResponse {
    let Some(authorization) = request.header("Authorization") else {
        return json_error(401, None, "missing authorization token");
    };
    let token = token_after_scheme(authorization, &["OAuth", "Bearer"]).unwrap_or("");
    let Some(record) = state
        .accounts
        .values()
        .find(|record| record.accepts_access_token(token))
    else {
        return json_error(401, None, "invalid access token");
    };
    let body = json!({
        "client_id": record.account.client_id,
        "login": record.account.login,
        "scopes": record.account.scopes,
        "user_id": record.account.user_id,
        "expires_in": record.account.expires_in,
    });
    ScriptedResponse::json(200, &body.to_string())
}

fn token(state: &mut State, request: &HttpRequest) -> ScriptedResponse {
    match request.form_param("grant_type") {
        Some("refresh_token") => refresh(state, request),
        Some(DEVICE_GRANT_TYPE) => redeem_device_code(state, request),
        _ => json_error(400, None, "unsupported grant type"),
    }
}

fn refresh(state: &mut State, request: &HttpRequest) -> ScriptedResponse {
    let refresh_token = request.form_param("refresh_token").unwrap_or("");
    let client_id = request.form_param("client_id").unwrap_or("");
    let client_secret = request.form_param("client_secret").unwrap_or("");
    let record = state.accounts.values_mut().find(|record| {
        record.accepts_refresh_token(refresh_token)
            && record.account.client_id == client_id
            && (record.account.client_secret.is_empty()
                || record.account.client_secret == client_secret)
    });
    let Some(record) = record else {
        let login = state
            .accounts
            .values()
            .find(|record| record.account.client_id == client_id)
            .map(|record| record.account.login.clone());
        state.refreshes.push(crate::RefreshOutcome {
            login,
            refresh_token: refresh_token.to_string(),
            accepted: false,
            forgiven: false,
            at: std::time::Instant::now(),
        });
        return json_error(400, None, "Invalid refresh token");
    };
    let forgiven = record.account.refresh_token != refresh_token;
    record.rotate_tokens();
    let answer = token_answer(&record.account, &record.account.scopes);
    let login = Some(record.account.login.clone());
    state.refreshes.push(crate::RefreshOutcome {
        login,
        refresh_token: refresh_token.to_string(),
        accepted: true,
        forgiven,
        at: std::time::Instant::now(),
    });
    answer
}

fn redeem_device_code(state: &mut State, request: &HttpRequest) -> ScriptedResponse {
    let device_code = request.form_param("device_code").unwrap_or("");
    let Some(device) = state
        .device_codes
        .iter_mut()
        .find(|device| device.device_code == device_code && !device.redeemed)
    else {
        return json_error(400, None, "invalid device code");
    };
    if request.form_param("client_id") != Some(device.client_id.as_str()) {
        return json_error(400, None, "invalid client");
    }
    let Some(login) = device.approved_login.clone() else {
        if state.n_invalid_pending_polls > 0 {
            // Twitch's answer to polls of some codes that were still pending and could
            // still be approved (twitchdev/issues#971).
            state.n_invalid_pending_polls -= 1;
            return json_error(400, None, "invalid device code");
        }
        return json_error(400, None, "authorization_pending");
    };
    device.redeemed = true;
    let scopes = if device.scopes.is_empty() {
        wire::GRANTED_SCOPES.map(str::to_string).to_vec()
    } else {
        device.scopes.clone()
    };
    let client_id = device.client_id.clone();
    let Some(record) = state.accounts.get_mut(&login) else {
        return json_error(400, None, "invalid device code");
    };
    // The new tokens belong to the application that asked for them, so Helix and refresh
    // expect its client id from now on, and carry the scopes that were asked for.
    record.account.client_id = client_id;
    record.account.scopes.clone_from(&scopes);
    record.rotate_tokens();
    token_answer(&record.account, &scopes)
}

fn token_answer(account: &crate::Account, scopes: &[String]) -> ScriptedResponse {
    let body = json!({
        "access_token": account.access_token,
        "refresh_token": account.refresh_token,
        "expires_in": account.expires_in,
        "scope": scopes,
        "token_type": "bearer",
    });
    ScriptedResponse::json(200, &body.to_string())
}

fn device(state: &mut State, request: &HttpRequest) -> ScriptedResponse {
    let Some(client_id) = request.form_param("client_id").filter(|id| !id.is_empty()) else {
        return json_error(400, None, "missing client_id");
    };
    let counter = state.device_codes.len() as u64 + 1;
    let user_code = wire::user_code_for(counter);
    let device_code = format!("dc-{}", wire::uuid_like(counter, 0x5eed).replace('-', ""));
    let scopes = request
        .form_param("scopes")
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    state.device_codes.push(DeviceCodeRecord {
        device_code: device_code.clone(),
        user_code: user_code.clone(),
        client_id: client_id.to_string(),
        scopes,
        approved_login: None,
        redeemed: false,
    });
    let body = json!({
        "device_code": device_code,
        "user_code": user_code,
        "verification_uri":
            format!("https://www.twitch.tv/activate?public=true&device-code={user_code}"),
        "expires_in": 1800,
        "interval": state.device_interval_seconds,
    });
    ScriptedResponse::json(200, &body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Account, AccountRecord};
    use std::time::Instant;

    const NOW: u64 = 1_700_000_000;

    fn state_with(accounts: Vec<Account>) -> State {
        let mut state = State {
            device_interval_seconds: 5,
            ..State::default()
        };
        for account in accounts {
            state
                .accounts
                .insert(account.login.clone(), AccountRecord::new(account));
        }
        state
    }

    fn request(method: &str, target: &str, headers: &[(&str, &str)], form: &str) -> HttpRequest {
        let (path, raw_query) = target.split_once('?').unwrap_or((target, ""));
        HttpRequest {
            method: method.to_string(),
            path: path.to_string(),
            raw_query: raw_query.to_string(),
            query: wire::parse_urlencoded(raw_query),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: form.to_string(),
            form: wire::parse_urlencoded(form),
            at: Instant::now(),
            connection: 1,
        }
    }

    fn helix_headers(token: &str, client_id: &str) -> Vec<(String, String)> {
        vec![
            ("Authorization".to_string(), format!("Bearer {token}")),
            ("Client-Id".to_string(), client_id.to_string()),
        ]
    }

    fn message_of(response: &ScriptedResponse) -> String {
        let body: serde_json::Value = serde_json::from_str(&response.body).expect("json body");
        body["message"].as_str().unwrap_or_default().to_string()
    }

    #[test]
    fn color_put_outcomes() {
        let mut plain = Account::new("plain", "2");
        plain.turbo = false;
        // (account login, token, client id, query, expected status, expected message, color after)
        let cases = [
            (
                "alice",
                "at-alice",
                "cid-alice",
                "user_id=1&color=%23aabbcc",
                204,
                "",
                "#AABBCC",
            ),
            (
                "alice",
                "at-alice",
                "cid-alice",
                "user_id=1&color=Hot_Pink",
                204,
                "",
                "hot_pink",
            ),
            (
                "alice",
                "at-alice",
                "cid-alice",
                "user_id=1&color=purple",
                400,
                "invalid color",
                "",
            ),
            // What arrives when a client forgets to encode `#`: it starts the URL fragment.
            (
                "alice",
                "at-alice",
                "cid-alice",
                "user_id=1&color=",
                400,
                "invalid color",
                "",
            ),
            (
                "alice",
                "at-alice",
                "cid-alice",
                "user_id=1",
                400,
                "Missing required parameter \"color\"",
                "",
            ),
            (
                "alice",
                "wrong",
                "cid-alice",
                "user_id=1&color=red",
                401,
                "Invalid OAuth token",
                "",
            ),
            (
                "alice",
                "at-alice",
                "cid-other",
                "user_id=1&color=red",
                401,
                "Client ID and OAuth token do not match",
                "",
            ),
            (
                "alice",
                "at-alice",
                "cid-alice",
                "user_id=2&color=red",
                401,
                "Invalid OAuth token",
                "",
            ),
            (
                "plain",
                "at-plain",
                "cid-plain",
                "user_id=2&color=%23AABBCC",
                400,
                "invalid color",
                "",
            ),
            (
                "plain",
                "at-plain",
                "cid-plain",
                "user_id=2&color=green",
                204,
                "",
                "green",
            ),
        ];
        for (login, token, client_id, query, status, message, color_after) in cases {
            let mut state = state_with(vec![Account::new("alice", "1"), plain.clone()]);
            let mut put = request("PUT", &format!("/helix/chat/color?{query}"), &[], "");
            put.headers = helix_headers(token, client_id);
            let response = default_response(&mut state, &put, NOW);
            assert_eq!(response.status, status, "query {query}");
            if status == 204 {
                assert!(response.body.is_empty());
                let remaining = response
                    .headers
                    .iter()
                    .find(|(n, _)| n == "Ratelimit-Remaining");
                assert_eq!(remaining.map(|(_, v)| v.as_str()), Some("799"));
            } else {
                assert_eq!(message_of(&response), message, "query {query}");
            }
            assert_eq!(
                state.accounts[login].current_color, color_after,
                "query {query}"
            );
        }
    }

    #[test]
    fn a_forgiven_replaced_refresh_token_is_accepted_once_and_recorded() {
        let mut state = state_with(vec![Account::new("alice", "1")]);
        let form = |token: &str| {
            format!(
                "grant_type=refresh_token&refresh_token={token}&client_id=cid-alice&client_secret=cs-alice"
            )
        };
        let refresh = |state: &mut State, token: &str| {
            default_response(
                state,
                &request("POST", "/oauth2/token", &[], &form(token)),
                NOW,
            )
            .status
        };
        assert_eq!(refresh(&mut state, "rt-alice"), 200);
        assert_eq!(refresh(&mut state, "rt-alice"), 400, "replaced");
        state
            .accounts
            .get_mut("alice")
            .unwrap()
            .replaced_refresh_token_forgiven = true;
        assert_eq!(refresh(&mut state, "rt-alice"), 200, "forgiven once");
        assert_eq!(refresh(&mut state, "rt-alice"), 400, "and only once");
        let verdicts: Vec<(bool, bool)> = state
            .refreshes
            .iter()
            .map(|outcome| (outcome.accepted, outcome.forgiven))
            .collect();
        assert_eq!(
            verdicts,
            [(true, false), (false, false), (true, true), (false, false)]
        );
        assert_eq!(state.refreshes[1].login.as_deref(), Some("alice"));
    }

    #[test]
    fn refresh_rotates_tokens_and_rejects_old_ones() {
        let mut state = state_with(vec![Account::new("alice", "1")]);
        let form = "grant_type=refresh_token&refresh_token=rt-alice&client_id=cid-alice&client_secret=cs-alice";
        let answer = default_response(
            &mut state,
            &request("POST", "/oauth2/token", &[], form),
            NOW,
        );
        assert_eq!(answer.status, 200);
        let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(body["access_token"], "at-alice-2");
        assert_eq!(body["refresh_token"], "rt-alice-2");
        assert_eq!(body["token_type"], "bearer");

        let again = default_response(
            &mut state,
            &request("POST", "/oauth2/token", &[], form),
            NOW,
        );
        assert_eq!(
            (again.status, message_of(&again)),
            (400, "Invalid refresh token".to_string())
        );

        let old = request(
            "GET",
            "/oauth2/validate",
            &[("Authorization", "OAuth at-alice")],
            "",
        );
        assert_eq!(default_response(&mut state, &old, NOW).status, 401);
        let new = request(
            "GET",
            "/oauth2/validate",
            &[("Authorization", "OAuth at-alice-2")],
            "",
        );
        assert_eq!(default_response(&mut state, &new, NOW).status, 200);
    }

    #[test]
    fn refresh_needs_matching_client_credentials() {
        let cases = [
            (
                "refresh_token=rt-alice&client_id=cid-alice&client_secret=cs-alice",
                200,
            ),
            (
                "refresh_token=rt-alice&client_id=cid-alice&client_secret=nope",
                400,
            ),
            (
                "refresh_token=rt-alice&client_id=nope&client_secret=cs-alice",
                400,
            ),
            (
                "refresh_token=nope&client_id=cid-alice&client_secret=cs-alice",
                400,
            ),
        ];
        for (form, status) in cases {
            let mut state = state_with(vec![Account::new("alice", "1")]);
            let form = format!("grant_type=refresh_token&{form}");
            let answer = default_response(
                &mut state,
                &request("POST", "/oauth2/token", &[], &form),
                NOW,
            );
            assert_eq!(answer.status, status, "form {form}");
        }
    }

    #[test]
    fn device_flow_goes_from_pending_to_tokens_once() {
        let mut state = state_with(vec![Account::new("alice", "1")]);
        let started = default_response(
            &mut state,
            &request(
                "POST",
                "/oauth2/device",
                &[],
                "client_id=app&scopes=chat%3Aread+user%3Amanage%3Achat_color",
            ),
            NOW,
        );
        assert_eq!(started.status, 200);
        let body: serde_json::Value = serde_json::from_str(&started.body).unwrap();
        let device_code = body["device_code"].as_str().unwrap().to_string();
        let user_code = body["user_code"].as_str().unwrap().to_string();
        assert_eq!(body["interval"], 5);
        assert!(body["verification_uri"]
            .as_str()
            .unwrap()
            .ends_with(&user_code));

        let poll_form = format!(
            "client_id=app&device_code={device_code}&scopes=chat%3Aread&grant_type={}",
            DEVICE_GRANT_TYPE.replace(':', "%3A")
        );
        let poll = request("POST", "/oauth2/token", &[], &poll_form);
        let pending = default_response(&mut state, &poll, NOW);
        assert_eq!(
            (pending.status, message_of(&pending)),
            (400, "authorization_pending".to_string())
        );

        state.device_codes[0].approved_login = Some("alice".to_string());
        let granted = default_response(&mut state, &poll, NOW);
        assert_eq!(granted.status, 200);
        let tokens: serde_json::Value = serde_json::from_str(&granted.body).unwrap();
        assert_eq!(tokens["access_token"], "at-alice-2");
        assert_eq!(
            tokens["scope"],
            json!(["chat:read", "user:manage:chat_color"])
        );
        assert_eq!(state.accounts["alice"].account.client_id, "app");

        let reused = default_response(&mut state, &poll, NOW);
        assert_eq!(
            (reused.status, message_of(&reused)),
            (400, "invalid device code".to_string())
        );
    }

    #[test]
    fn reads_answer_with_the_tokens_user() {
        let mut alice = Account::new("alice", "1");
        alice.color = "blue".to_string();
        let mut state = state_with(vec![alice]);
        let mut get_color = request("GET", "/helix/chat/color?user_id=1", &[], "");
        get_color.headers = helix_headers("at-alice", "cid-alice");
        let colors: serde_json::Value =
            serde_json::from_str(&default_response(&mut state, &get_color, NOW).body).unwrap();
        assert_eq!(colors["data"][0]["color"], "#0000FF");
        assert_eq!(colors["data"][0]["user_login"], "alice");

        let mut users = request("GET", "/helix/users", &[], "");
        users.headers = helix_headers("at-alice", "cid-alice");
        let users: serde_json::Value =
            serde_json::from_str(&default_response(&mut state, &users, NOW).body).unwrap();
        assert_eq!(users["data"][0]["id"], "1");

        let unknown = request("GET", "/helix/nothing", &[], "");
        assert_eq!(default_response(&mut state, &unknown, NOW).status, 404);
    }
}
