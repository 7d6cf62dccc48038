//! Drives the fake's EventSub side over loopback with a raw tungstenite client and ureq: the
//! welcome, subscriptions and their checks, notifications, duplicates, reconnects, revocations,
//! keepalives and the close codes (does I/O).

use std::net::TcpStream;
use std::time::Duration;

use fake_twitch::{Account, ClientFrame, FakeTwitch, ScriptedResponse, READ_CHAT_SCOPE};
use serde_json::{json, Value};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

/// A safety net so a broken fake fails a test instead of hanging it; no test waits it out.
const TIMEOUT: Duration = Duration::from_secs(5);

fn connect(url: &str) -> WebSocket<TcpStream> {
    let address = url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let stream = TcpStream::connect(address).expect("connect to fake eventsub");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    let (websocket, _) = tungstenite::client(url, stream).expect("websocket handshake");
    websocket
}

/// The next JSON message, or the close frame's code.
fn read_message(websocket: &mut WebSocket<TcpStream>) -> Result<Value, Option<u16>> {
    loop {
        match websocket.read() {
            Ok(Message::Text(text)) => return Ok(serde_json::from_str(text.as_str()).unwrap()),
            Ok(Message::Close(frame)) => return Err(frame.map(|frame| u16::from(frame.code))),
            Ok(_) => {}
            Err(error) => panic!("read failed: {error}"),
        }
    }
}

fn message_type(message: &Value) -> &str {
    message["metadata"]["message_type"].as_str().unwrap_or("")
}

/// Connects and returns the socket with its session id.
fn welcomed(url: &str) -> (WebSocket<TcpStream>, String) {
    let mut websocket = connect(url);
    let welcome = read_message(&mut websocket).expect("welcome");
    assert_eq!(message_type(&welcome), "session_welcome");
    let session_id = welcome["payload"]["session"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    (websocket, session_id)
}

fn reader(login: &str, user_id: &str) -> Account {
    let mut account = Account::new(login, user_id);
    account.scopes.push(READ_CHAT_SCOPE.to_string());
    account
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// POSTs a chat subscription for `account` in `channel_id`; returns status and body.
fn subscribe(
    twitch: &FakeTwitch,
    account: &Account,
    channel_id: &str,
    session_id: &str,
) -> (u16, Value) {
    let body = json!({
        "type": "channel.chat.message",
        "version": "1",
        "condition": {"broadcaster_user_id": channel_id, "user_id": account.user_id},
        "transport": {"method": "websocket", "session_id": session_id},
    });
    let mut response = agent()
        .post(format!("{}/eventsub/subscriptions", twitch.api_url()))
        .header("Authorization", format!("Bearer {}", account.access_token))
        .header("Client-Id", &account.client_id)
        .header("Content-Type", "application/json")
        .send(body.to_string())
        .unwrap();
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn channel_id(twitch: &FakeTwitch, account: &Account, channel: &str) -> String {
    let mut response = agent()
        .get(format!("{}/users?login={channel}", twitch.api_url()))
        .header("Authorization", format!("Bearer {}", account.access_token))
        .header("Client-Id", &account.client_id)
        .call()
        .unwrap();
    let users: Value =
        serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
    users["data"][0]["id"].as_str().unwrap().to_string()
}

#[test]
fn a_subscribed_session_gets_notifications_once_and_duplicates_on_request() {
    let twitch = FakeTwitch::start();
    let alice = reader("alice", "1001");
    twitch.add_user(alice.clone());
    let (mut websocket, session_id) = welcomed(&twitch.eventsub_url());
    let channel = channel_id(&twitch, &alice, "somechannel");
    let (status, body) = subscribe(&twitch, &alice, &channel, &session_id);
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["data"][0]["status"], "enabled");
    assert!(twitch.wait_eventsub_subscribed("alice", "somechannel", TIMEOUT));

    let (status, body) = subscribe(&twitch, &alice, &channel, &session_id);
    assert_eq!(status, 409, "{body}");

    assert_eq!(twitch.say("alice", "somechannel", "hello"), 1);
    let notification = read_message(&mut websocket).unwrap();
    assert_eq!(message_type(&notification), "notification");
    let event = &notification["payload"]["event"];
    assert_eq!(event["chatter_user_id"], "1001");
    assert_eq!(event["broadcaster_user_id"], channel.as_str());
    assert_eq!(event["message"]["text"], "hello");
    assert!(twitch
        .wait_frame_sent("alice", |frame| frame.contains("hello"), TIMEOUT)
        .is_some());

    assert_eq!(twitch.redeliver_last("alice"), 1);
    let again = read_message(&mut websocket).unwrap();
    assert_eq!(
        again["metadata"]["message_id"],
        notification["metadata"]["message_id"]
    );
}

#[test]
fn subscriptions_need_the_scope_the_own_user_and_a_live_session() {
    let twitch = FakeTwitch::start();
    let plain = Account::new("plain", "2001");
    let alice = reader("alice", "1001");
    twitch.add_user(plain.clone());
    twitch.add_user(alice.clone());
    let (_websocket, session_id) = welcomed(&twitch.eventsub_url());
    assert_eq!(subscribe(&twitch, &plain, "1", &session_id).0, 403);
    let mut impostor = alice.clone();
    impostor.user_id = "2001".to_string();
    assert_eq!(subscribe(&twitch, &impostor, "1", &session_id).0, 403);
    assert_eq!(subscribe(&twitch, &alice, "1", "no-such-session").0, 400);
    let mut expired = alice.clone();
    expired.access_token = "wrong".to_string();
    assert_eq!(subscribe(&twitch, &expired, "1", &session_id).0, 401);

    twitch.push_response(
        "POST",
        "/helix/eventsub/subscriptions",
        ScriptedResponse::json(429, "{}").with_header("Ratelimit-Reset", "1700000000"),
    );
    assert_eq!(subscribe(&twitch, &alice, "1", &session_id).0, 429);
    assert_eq!(subscribe(&twitch, &alice, "1", &session_id).0, 202);
}

#[test]
fn users_resolve_up_to_a_hundred_logins() {
    let twitch = FakeTwitch::start();
    let alice = reader("alice", "1001");
    twitch.add_user(alice.clone());
    let query = |n: usize| {
        (0..n)
            .map(|index| format!("login=channel{index}"))
            .collect::<Vec<_>>()
            .join("&")
    };
    for (n_logins, expected_status, expected_len) in [(100, 200, 100), (101, 400, 0)] {
        let mut response = agent()
            .get(format!("{}/users?{}", twitch.api_url(), query(n_logins)))
            .header("Authorization", format!("Bearer {}", alice.access_token))
            .header("Client-Id", &alice.client_id)
            .call()
            .unwrap();
        assert_eq!(response.status().as_u16(), expected_status);
        let body: Value =
            serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
        assert_eq!(body["data"].as_array().map_or(0, Vec::len), expected_len);
    }
    assert_eq!(channel_id(&twitch, &alice, "alice"), "1001");
}

#[test]
fn reconnect_carries_the_session_and_supersedes_the_old_connection() {
    let twitch = FakeTwitch::start();
    twitch.set_eventsub_reconnect_grace(Duration::from_millis(100));
    let alice = reader("alice", "1001");
    twitch.add_user(alice.clone());
    let channel = channel_id(&twitch, &alice, "somechannel");
    let (mut old, session_id) = welcomed(&twitch.eventsub_url());
    assert_eq!(subscribe(&twitch, &alice, &channel, &session_id).0, 202);
    assert_eq!(twitch.eventsub_reconnect("alice"), 1);
    let reconnect = read_message(&mut old).unwrap();
    assert_eq!(message_type(&reconnect), "session_reconnect");
    let url = reconnect["payload"]["session"]["reconnect_url"]
        .as_str()
        .unwrap()
        .to_string();
    let (mut new, new_session_id) = welcomed(&url);
    assert_eq!(new_session_id, session_id);
    // The subscription moved along: a second one on the same session is a duplicate.
    assert_eq!(subscribe(&twitch, &alice, &channel, &session_id).0, 409);
    assert_eq!(read_message(&mut old), Err(Some(4004)));
    assert_eq!(twitch.say("bob", "somechannel", "after the move"), 1);
    let notification = read_message(&mut new).unwrap();
    assert_eq!(
        notification["payload"]["event"]["message"]["text"],
        "after the move"
    );

    assert_eq!(twitch.eventsub_revoke("alice", "authorization_revoked"), 1);
    let revocation = read_message(&mut new).unwrap();
    assert_eq!(message_type(&revocation), "revocation");
    assert_eq!(
        revocation["payload"]["subscription"]["status"],
        "authorization_revoked"
    );
}

#[test]
fn keepalives_fill_silence_and_unused_sessions_are_closed() {
    let twitch = FakeTwitch::start();
    twitch.set_eventsub_keepalive_seconds(Some(1));
    let (mut websocket, _) = welcomed(&twitch.eventsub_url());
    // Nothing subscribed within the window: 4003, with or without a keepalive first.
    loop {
        match read_message(&mut websocket) {
            Ok(message) => assert_eq!(message_type(&message), "session_keepalive"),
            Err(code) => {
                assert_eq!(code, Some(4003));
                break;
            }
        }
    }
}

#[test]
fn client_data_frames_are_closed_with_4001_and_recorded() {
    let twitch = FakeTwitch::start();
    let (mut websocket, _) = welcomed(&twitch.eventsub_url());
    websocket.send(Message::Pong(Vec::new().into())).unwrap();
    websocket.send(Message::text("hello?")).unwrap();
    assert_eq!(read_message(&mut websocket), Err(Some(4001)));
    let frames: Vec<ClientFrame> = twitch
        .eventsub_client_frames()
        .into_iter()
        .map(|(_, frame)| frame)
        .collect();
    assert_eq!(
        frames,
        vec![ClientFrame::Pong, ClientFrame::Text("hello?".to_string())]
    );
}

#[test]
fn tests_can_close_a_users_connections_with_a_code() {
    let twitch = FakeTwitch::start();
    let alice = reader("alice", "1001");
    twitch.add_user(alice.clone());
    let (mut websocket, session_id) = welcomed(&twitch.eventsub_url());
    assert_eq!(subscribe(&twitch, &alice, "5", &session_id).0, 202);
    assert_eq!(
        twitch.eventsub_close("alice", 4000, "internal server error"),
        1
    );
    assert_eq!(read_message(&mut websocket), Err(Some(4000)));
    let _ = websocket.close(Some(tungstenite::protocol::CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }));
    assert!(twitch.wait_live_eventsub_connections(0, TIMEOUT));
    let subscriptions = twitch.eventsub_subscriptions();
    assert_eq!(subscriptions[0].status, "websocket_disconnected");
}
