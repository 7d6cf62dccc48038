//! Drives the fake Twitch over loopback with a raw tungstenite client and a raw HTTP client,
//! checking that it speaks the protocols and records what it receives (does I/O).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use fake_twitch::{Account, FakeTwitch, ScriptedResponse};
use tungstenite::{Message, WebSocket};

/// A safety net so a broken fake fails a test instead of hanging it; no test waits it out.
const TIMEOUT: Duration = Duration::from_secs(5);

fn connect_irc(twitch: &FakeTwitch) -> WebSocket<TcpStream> {
    let stream = TcpStream::connect(twitch.irc_address()).expect("connect to fake irc");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    // Without this, Nagle's algorithm holds a second small frame back until the fake's
    // delayed acknowledgement of the first.
    stream.set_nodelay(true).unwrap();
    let (websocket, _) =
        tungstenite::client(twitch.irc_url(), stream).expect("websocket handshake");
    websocket
}

fn send(websocket: &mut WebSocket<TcpStream>, frame: &str) {
    websocket.send(Message::text(frame)).expect("send frame");
}

fn read_text_frame(websocket: &mut WebSocket<TcpStream>) -> String {
    loop {
        match websocket.read().expect("read frame") {
            Message::Text(text) => return text.as_str().to_string(),
            Message::Close(_) => panic!("unexpected close frame"),
            _ => {}
        }
    }
}

/// Reads frames until `n_lines` lines arrived; returns them without `\r\n`.
fn read_lines(websocket: &mut WebSocket<TcpStream>, n_lines: usize) -> Vec<String> {
    let mut lines = Vec::new();
    while lines.len() < n_lines {
        let frame = read_text_frame(websocket);
        assert!(
            frame.ends_with("\r\n"),
            "frame {frame:?} must end with CRLF"
        );
        lines.extend(
            frame
                .split("\r\n")
                .filter(|line| !line.is_empty())
                .map(str::to_string),
        );
    }
    lines
}

/// Logs `login` in with its current token and reads the welcome up to GLOBALUSERSTATE.
fn log_in(twitch: &FakeTwitch, login: &str) -> WebSocket<TcpStream> {
    let mut websocket = connect_irc(twitch);
    send(&mut websocket, "CAP REQ :twitch.tv/tags twitch.tv/commands");
    send(
        &mut websocket,
        &format!("PASS oauth:{}", twitch.access_token(login)),
    );
    send(&mut websocket, &format!("NICK {login}"));
    let lines = read_lines(&mut websocket, 9);
    assert!(lines[8].ends_with("GLOBALUSERSTATE"), "{lines:?}");
    websocket
}

fn expect_connection_end(websocket: &mut WebSocket<TcpStream>) -> Vec<Message> {
    let mut messages = Vec::new();
    loop {
        match websocket.read() {
            Ok(message) => messages.push(message),
            Err(tungstenite::Error::Io(error))
                if error.kind() == std::io::ErrorKind::WouldBlock =>
            {
                panic!("connection did not end")
            }
            Err(_) => return messages,
        }
    }
}

#[test]
fn irc_login_acknowledges_caps_and_reports_the_user() {
    let twitch = FakeTwitch::start();
    let mut alice = Account::new("alice", "1001");
    alice.color = "#1e90ff".to_string();
    twitch.add_user(alice);
    let mut websocket = connect_irc(&twitch);
    // The whole login in one frame, as some clients send it.
    send(
        &mut websocket,
        "CAP REQ :twitch.tv/tags twitch.tv/commands\r\nPASS oauth:at-alice\r\nNICK alice\r\n",
    );
    let lines = read_lines(&mut websocket, 9);
    assert_eq!(
        lines[0],
        ":tmi.twitch.tv CAP * ACK :twitch.tv/tags twitch.tv/commands"
    );
    assert_eq!(lines[1], ":tmi.twitch.tv 001 alice :Welcome, GLHF!");
    let numerics: Vec<&str> = lines[1..8]
        .iter()
        .map(|l| l.split(' ').nth(1).unwrap())
        .collect();
    assert_eq!(numerics, ["001", "002", "003", "004", "375", "372", "376"]);
    assert_eq!(
        lines[8],
        "@badge-info=;badges=;color=#1E90FF;display-name=Alice;emote-sets=0,300374282;\
         user-id=1001;user-type= :tmi.twitch.tv GLOBALUSERSTATE"
    );
    assert!(twitch.wait_logged_in("alice", TIMEOUT));
    assert_eq!(twitch.n_logins("alice"), 1);
    assert_eq!(twitch.n_connections(), 1);
    // A line is recorded just after it is answered, so the client may see the answer first.
    assert!(twitch
        .wait_line_from("alice", |line| line == "NICK alice", TIMEOUT)
        .is_some());
    assert_eq!(
        twitch.lines_from("alice"),
        [
            "CAP REQ :twitch.tv/tags twitch.tv/commands",
            "PASS oauth:at-alice",
            "NICK alice"
        ]
    );
}

#[test]
fn irc_login_with_a_bad_or_expired_token_gets_a_notice_and_a_close_frame() {
    let twitch = FakeTwitch::start();
    twitch.add_user(Account::new("alice", "1001"));
    twitch.expire_access_token("alice");
    for pass in ["PASS oauth:wrong", "PASS oauth:at-alice", "PASS at-alice"] {
        let mut websocket = connect_irc(&twitch);
        send(&mut websocket, pass);
        send(&mut websocket, "NICK alice");
        let expected_notice = if pass.contains("oauth:") {
            ":tmi.twitch.tv NOTICE * :Login authentication failed\r\n"
        } else {
            ":tmi.twitch.tv NOTICE * :Improperly formatted auth\r\n"
        };
        assert_eq!(read_text_frame(&mut websocket), expected_notice);
        let rest = expect_connection_end(&mut websocket);
        assert!(
            matches!(rest.as_slice(), [Message::Close(_)]),
            "{pass}: {rest:?}"
        );
    }
    assert!(twitch.wait_live_connections("alice", 0, TIMEOUT));
    assert_eq!(twitch.n_logins("alice"), 0);
    assert_eq!(twitch.n_connections(), 3);
}

#[test]
fn join_is_answered_per_channel_and_recorded_with_its_time() {
    let twitch = FakeTwitch::start();
    twitch.add_user(Account::new("alice", "1001"));
    let mut websocket = log_in(&twitch, "alice");
    let before_join = Instant::now();
    send(&mut websocket, "JOIN #first,#Second");
    let lines = read_lines(&mut websocket, 10);
    let room_line = &lines[4];
    assert_eq!(lines[0], ":alice!alice@alice.tmi.twitch.tv JOIN #first");
    assert_eq!(lines[1], ":alice.tmi.twitch.tv 353 alice = #first :alice");
    assert_eq!(
        lines[2],
        ":alice.tmi.twitch.tv 366 alice #first :End of /NAMES list"
    );
    assert!(
        lines[3].ends_with(":tmi.twitch.tv USERSTATE #first"),
        "{}",
        lines[3]
    );
    assert!(
        room_line.starts_with("@emote-only=0;followers-only=-1;r9k=0;room-id="),
        "{room_line}"
    );
    assert!(
        room_line.ends_with(":tmi.twitch.tv ROOMSTATE #first"),
        "{room_line}"
    );
    assert_eq!(lines[5], ":alice!alice@alice.tmi.twitch.tv JOIN #second");
    assert!(twitch.wait_joined("alice", "#second", TIMEOUT));
    assert!(twitch.wait_joined("alice", "first", TIMEOUT));
    let joins = twitch.join_times("alice");
    let channels: Vec<&str> = joins.iter().map(|(_, channel)| channel.as_str()).collect();
    assert_eq!(channels, ["first", "second"]);
    assert!(joins.iter().all(|(at, _)| *at >= before_join));
}

#[test]
fn ping_is_answered_for_each_line_of_a_multi_line_frame() {
    let twitch = FakeTwitch::start();
    twitch.add_user(Account::new("alice", "1001"));
    let mut websocket = log_in(&twitch, "alice");
    send(
        &mut websocket,
        "PING :one\r\n\r\nPING :two\r\nPRIVMSG #first :not echoed\r\n",
    );
    let lines = read_lines(&mut websocket, 2);
    assert_eq!(
        lines,
        [
            ":tmi.twitch.tv PONG tmi.twitch.tv :one",
            ":tmi.twitch.tv PONG tmi.twitch.tv :two"
        ]
    );
    let privmsg = twitch.wait_line_from("alice", |line| line.starts_with("PRIVMSG"), TIMEOUT);
    assert_eq!(privmsg.as_deref(), Some("PRIVMSG #first :not echoed"));
    // Nothing else was queued: the next frame is the answer to this PING.
    send(&mut websocket, "PING :three");
    assert_eq!(
        read_lines(&mut websocket, 1),
        [":tmi.twitch.tv PONG tmi.twitch.tv :three"]
    );
}

#[test]
fn send_line_and_send_frame_reach_every_logged_in_connection() {
    let twitch = FakeTwitch::start();
    twitch.add_user(Account::new("alice", "1001"));
    let mut first = log_in(&twitch, "alice");
    let mut second = log_in(&twitch, "alice");
    assert!(twitch.wait_n_logins("alice", 2, TIMEOUT));
    let privmsg = FakeTwitch::privmsg_line("alice", "1001", "Alice Smith", "#chan", "hello there");
    assert!(
        privmsg.contains(";display-name=Alice\\sSmith;"),
        "{privmsg}"
    );
    assert!(privmsg.contains(";user-id=1001;"), "{privmsg}");
    assert!(privmsg.ends_with(" :alice!alice@alice.tmi.twitch.tv PRIVMSG #chan :hello there"));
    assert_eq!(twitch.send_line("alice", &privmsg), 2);
    assert_eq!(
        twitch.send_frame(
            "alice",
            ":tmi.twitch.tv PING\r\n:tmi.twitch.tv RECONNECT\r\n"
        ),
        2
    );
    for websocket in [&mut first, &mut second] {
        assert_eq!(read_text_frame(websocket), format!("{privmsg}\r\n"));
        assert_eq!(
            read_text_frame(websocket),
            ":tmi.twitch.tv PING\r\n:tmi.twitch.tv RECONNECT\r\n"
        );
    }
    assert_eq!(twitch.send_line("nobody", "PING"), 0);
}

#[test]
fn drop_connections_ends_without_close_frame_and_close_connections_with_one() {
    let twitch = FakeTwitch::start();
    twitch.add_user(Account::new("alice", "1001"));
    let mut dropped = log_in(&twitch, "alice");
    assert_eq!(twitch.drop_connections("alice"), 1);
    let after_drop = expect_connection_end(&mut dropped);
    assert!(after_drop.is_empty(), "{after_drop:?}");
    assert!(twitch.wait_live_connections("alice", 0, TIMEOUT));

    let mut closed = log_in(&twitch, "alice");
    assert_eq!(twitch.close_connections("alice"), 1);
    let after_close = expect_connection_end(&mut closed);
    assert!(
        matches!(after_close.as_slice(), [Message::Close(_)]),
        "{after_close:?}"
    );
    assert!(twitch.wait_live_connections("alice", 0, TIMEOUT));
    assert_eq!(twitch.n_logins("alice"), 2);
}

#[test]
fn silent_connections_record_but_do_not_answer() {
    let twitch = FakeTwitch::start();
    twitch.add_user(Account::new("alice", "1001"));
    let mut websocket = log_in(&twitch, "alice");
    twitch.set_silent("alice", true);
    send(&mut websocket, "PING :unanswered");
    send(&mut websocket, "JOIN #quiet");
    assert!(twitch.wait_joined("alice", "quiet", TIMEOUT));
    twitch.set_silent("alice", false);
    send(&mut websocket, "PING :answered");
    assert_eq!(
        read_lines(&mut websocket, 1),
        [":tmi.twitch.tv PONG tmi.twitch.tv :answered"]
    );
    assert!(twitch
        .lines_from("alice")
        .contains(&"PING :unanswered".to_string()));
}

#[test]
fn refused_connections_close_before_the_handshake() {
    let twitch = FakeTwitch::start();
    twitch.add_user(Account::new("alice", "1001"));
    twitch.refuse_connections(1);
    let stream = TcpStream::connect(twitch.irc_address()).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    assert!(tungstenite::client(twitch.irc_url(), stream).is_err());
    let _websocket = log_in(&twitch, "alice");
    assert_eq!(twitch.n_connections(), 2);
    // A login is counted just after its welcome is sent, so the client may see it first.
    assert!(twitch.wait_n_logins("alice", 1, TIMEOUT));
    assert_eq!(twitch.n_logins("alice"), 1);
}

/// A minimal HTTP/1.1 client over one TCP connection.
struct HttpClient {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

#[derive(Debug)]
struct RawResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        let found = self
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name));
        found.map(|(_, value)| value.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("json body")
    }
}

impl HttpClient {
    fn connect(twitch: &FakeTwitch) -> HttpClient {
        let writer = TcpStream::connect(twitch.http_address()).expect("connect to fake http");
        writer.set_read_timeout(Some(TIMEOUT)).unwrap();
        writer.set_nodelay(true).unwrap();
        HttpClient {
            reader: BufReader::new(writer.try_clone().unwrap()),
            writer,
        }
    }

    fn request(&mut self, head: &str, body: &str) -> RawResponse {
        let request = format!(
            "{head}\r\nHost: test\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.writer.write_all(request.as_bytes()).unwrap();
        let mut status_line = String::new();
        self.reader.read_line(&mut status_line).unwrap();
        let status = status_line
            .split(' ')
            .nth(1)
            .expect("status")
            .parse()
            .unwrap();
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap();
            headers.push((name.to_string(), value.trim().to_string()));
        }
        let response = RawResponse {
            status,
            headers,
            body: String::new(),
        };
        let length: usize = response
            .header("Content-Length")
            .expect("content length")
            .parse()
            .unwrap();
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).unwrap();
        RawResponse {
            body: String::from_utf8(body).unwrap(),
            ..response
        }
    }
}

fn form_head(path: &str) -> String {
    format!("POST {path} HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded")
}

#[test]
fn http_keep_alive_serves_several_requests_on_one_connection() {
    let twitch = FakeTwitch::start();
    twitch.add_user(Account::new("alice", "1001"));
    let mut client = HttpClient::connect(&twitch);
    let head = "PUT /helix/chat/color?user_id=1001&color=%23aabbcc HTTP/1.1\r\n\
                Authorization: Bearer at-alice\r\nClient-Id: cid-alice";
    let first = client.request(head, "");
    assert_eq!(first.status, 204);
    assert_eq!(first.header("Content-Length"), Some("0"));
    assert_eq!(first.header("Ratelimit-Limit"), Some("800"));
    assert_eq!(first.header("Ratelimit-Remaining"), Some("799"));
    assert!(first.header("Ratelimit-Reset").is_some());
    assert_eq!(twitch.current_color("1001"), "#AABBCC");
    let second = client.request(
        "GET /oauth2/validate HTTP/1.1\r\nAuthorization: OAuth at-alice",
        "",
    );
    assert_eq!(second.status, 200);
    assert_eq!(second.json()["login"], "alice");
    assert_eq!(second.json()["user_id"], "1001");

    let put = twitch.next_request(TIMEOUT).expect("first request");
    assert_eq!(
        (put.method.as_str(), put.path.as_str()),
        ("PUT", "/helix/chat/color")
    );
    assert_eq!(put.raw_query, "user_id=1001&color=%23aabbcc");
    assert_eq!(put.query_param("color"), Some("#aabbcc"));
    assert_eq!(put.header("authorization"), Some("Bearer at-alice"));
    let validate = twitch.next_request(TIMEOUT).expect("second request");
    assert_eq!(validate.path, "/oauth2/validate");
    assert!(twitch.next_request(Duration::ZERO).is_none());
    assert_eq!(twitch.requests().len(), 2);
    assert_eq!(twitch.color_puts().len(), 1);
}

#[test]
fn connection_close_is_honoured() {
    let twitch = FakeTwitch::start();
    let mut client = HttpClient::connect(&twitch);
    let response = client.request("GET /oauth2/validate HTTP/1.1\r\nConnection: close", "");
    assert_eq!(response.status, 401);
    assert_eq!(response.json()["message"], "missing authorization token");
    assert_eq!(response.header("Connection"), Some("close"));
    let mut rest = Vec::new();
    assert_eq!(client.reader.read_to_end(&mut rest).unwrap(), 0);
}

#[test]
fn scripted_responses_come_first_in_fifo_order_per_method_and_path() {
    let twitch = FakeTwitch::start();
    twitch.add_user(Account::new("alice", "1001"));
    twitch.push_response(
        "PUT",
        "/helix/chat/color",
        ScriptedResponse::json(429, "{\"a\":1}"),
    );
    twitch.push_response(
        "PUT",
        "/helix/chat/color",
        ScriptedResponse::status(500).with_header("Ratelimit-Reset", "42"),
    );
    let mut client = HttpClient::connect(&twitch);
    let head = "PUT /helix/chat/color?user_id=1001&color=red HTTP/1.1\r\n\
                Authorization: Bearer at-alice\r\nClient-Id: cid-alice";
    let validate = client.request(
        "GET /oauth2/validate HTTP/1.1\r\nAuthorization: OAuth at-alice",
        "",
    );
    assert_eq!(validate.status, 200);
    let first = client.request(head, "");
    assert_eq!((first.status, first.body.as_str()), (429, "{\"a\":1}"));
    let second = client.request(head, "");
    assert_eq!(
        (second.status, second.header("Ratelimit-Reset")),
        (500, Some("42"))
    );
    assert_eq!(twitch.current_color("1001"), "");
    let third = client.request(head, "");
    assert_eq!(third.status, 204);
    assert_eq!(twitch.current_color("1001"), "red");
    let put = twitch
        .wait_request(|request| request.method == "PUT", TIMEOUT)
        .expect("a put");
    assert_eq!(put.query_param("color"), Some("red"));
    assert_eq!(twitch.color_puts().len(), 3);
}

#[test]
fn refresh_rotates_both_tokens_everywhere() {
    let twitch = FakeTwitch::start();
    twitch.add_user(Account::new("alice", "1001"));
    twitch.expire_access_token("alice");
    let mut client = HttpClient::connect(&twitch);
    let expired = client.request(
        "GET /oauth2/validate HTTP/1.1\r\nAuthorization: OAuth at-alice",
        "",
    );
    assert_eq!(
        (expired.status, expired.json()["message"].clone()),
        (401, "invalid access token".into())
    );
    let form = "grant_type=refresh_token&refresh_token=rt-alice&client_id=cid-alice&client_secret=cs-alice";
    let refreshed = client.request(&form_head("/oauth2/token"), form);
    assert_eq!(refreshed.status, 200);
    let tokens = refreshed.json();
    assert_eq!(tokens["access_token"], "at-alice-2");
    assert_eq!(tokens["refresh_token"], "rt-alice-2");
    assert_eq!(tokens["expires_in"], 14400);
    assert_eq!(twitch.access_token("alice"), "at-alice-2");
    assert_eq!(twitch.refresh_token("alice"), "rt-alice-2");
    let request = twitch
        .wait_request(|r| r.path == "/oauth2/token", TIMEOUT)
        .expect("refresh");
    assert_eq!(request.form_param("client_secret"), Some("cs-alice"));

    let reused = client.request(&form_head("/oauth2/token"), form);
    assert_eq!(
        (reused.status, reused.json()["message"].clone()),
        (400, "Invalid refresh token".into())
    );
    let valid = client.request(
        "GET /oauth2/validate HTTP/1.1\r\nAuthorization: OAuth at-alice-2",
        "",
    );
    assert_eq!(valid.status, 200);
    let _websocket = log_in(&twitch, "alice");

    twitch.revoke_refresh_token("alice");
    let form = "grant_type=refresh_token&refresh_token=rt-alice-2&client_id=cid-alice&client_secret=cs-alice";
    assert_eq!(
        client.request(&form_head("/oauth2/token"), form).status,
        400
    );
}

#[test]
fn device_code_flow_is_pending_until_approved() {
    let twitch = FakeTwitch::start();
    twitch.add_user(Account::new("alice", "1001"));
    twitch.set_device_interval(0);
    let mut client = HttpClient::connect(&twitch);
    let started = client.request(
        &form_head("/oauth2/device"),
        "client_id=app&scopes=chat%3Aread%20user%3Amanage%3Achat_color",
    );
    assert_eq!(started.status, 200);
    let device = started.json();
    assert_eq!(device["interval"], 0);
    assert_eq!(device["expires_in"], 1800);
    let user_code = twitch.wait_device_user_code(TIMEOUT).expect("a user code");
    assert_eq!(device["user_code"], user_code.as_str());
    assert_eq!(twitch.device_user_codes(), std::slice::from_ref(&user_code));
    let poll = format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code={}&\
         client_id=app&scopes=chat%3Aread",
        device["device_code"].as_str().unwrap()
    );
    let pending = client.request(&form_head("/oauth2/token"), &poll);
    assert_eq!(
        (pending.status, pending.json()["message"].clone()),
        (400, "authorization_pending".into())
    );
    twitch.approve_device(&user_code, "alice");
    let granted = client.request(&form_head("/oauth2/token"), &poll);
    assert_eq!(granted.status, 200);
    assert_eq!(
        granted.json()["access_token"],
        twitch.access_token("alice").as_str()
    );
    assert_eq!(twitch.account("alice").client_id, "app");
    let unknown = client.request(
        &form_head("/oauth2/token"),
        &poll.replace("device_code=dc", "device_code=xx"),
    );
    assert_eq!(unknown.json()["message"], "invalid device code");
}

#[test]
fn a_stalled_answer_ends_when_the_fake_is_dropped() {
    let twitch = FakeTwitch::start();
    twitch.push_response(
        "GET",
        "/helix/users",
        ScriptedResponse::json(200, "{}").delayed(Duration::from_secs(3600)),
    );
    let mut client = HttpClient::connect(&twitch);
    client
        .writer
        .write_all(b"GET /helix/users HTTP/1.1\r\nHost: test\r\n\r\n")
        .unwrap();
    assert!(twitch
        .wait_request(|r| r.path == "/helix/users", TIMEOUT)
        .is_some());
    let _idle_irc = connect_irc(&twitch);
    assert!(twitch.wait_n_connections(1, TIMEOUT));
    let dropped_at = Instant::now();
    drop(twitch);
    assert!(dropped_at.elapsed() < TIMEOUT);
    let mut rest = Vec::new();
    assert_eq!(client.reader.read_to_end(&mut rest).unwrap(), 0);
}

#[test]
fn ureq_reuses_one_connection_for_helix_and_oauth_calls() {
    let twitch = FakeTwitch::start();
    let mut alice = Account::new("alice", "1001");
    alice.turbo = false;
    twitch.add_user(alice);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(TIMEOUT))
        .build()
        .into();
    let color_url = format!("{}/chat/color", twitch.api_url());
    let put = |color: &str| {
        let response = agent
            .put(&color_url)
            .query("user_id", "1001")
            .query("color", color)
            .header(
                "Authorization",
                &format!("Bearer {}", twitch.access_token("alice")),
            )
            .header("Client-Id", "cid-alice")
            .send_empty()
            .expect("color put");
        // ureq reuses a connection only once the body was read to its end.
        let mut response = response;
        let body = response
            .body_mut()
            .read_to_string()
            .expect("color put body");
        (response.status().as_u16(), body)
    };
    let refused = put("#AABBCC");
    assert_eq!(refused.0, 400);
    assert!(refused.1.contains("invalid color"), "{}", refused.1);
    assert_eq!(put("coral"), (204, String::new()));
    assert_eq!(twitch.current_color("1001"), "coral");

    let mut refreshed = agent
        .post(&format!("{}/token", twitch.auth_url()))
        .send_form([
            ("grant_type", "refresh_token"),
            ("refresh_token", "rt-alice"),
            ("client_id", "cid-alice"),
            ("client_secret", "cs-alice"),
        ])
        .expect("refresh");
    assert_eq!(refreshed.status(), 200);
    let tokens: serde_json::Value =
        serde_json::from_str(&refreshed.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(tokens["access_token"], "at-alice-2");

    let mut validated = agent
        .get(&format!("{}/validate", twitch.auth_url()))
        .header("Authorization", "OAuth at-alice-2")
        .call()
        .expect("validate");
    assert_eq!(validated.status(), 200);
    assert!(validated
        .body_mut()
        .read_to_string()
        .unwrap()
        .contains("\"login\":\"alice\""));
    assert_eq!(put("red").0, 204);

    let requests = twitch.requests();
    assert_eq!(requests.len(), 5);
    assert_eq!(requests[0].query_param("color"), Some("#AABBCC"));
    assert_eq!(requests[2].form_param("grant_type"), Some("refresh_token"));
    let connections: Vec<u64> = requests.iter().map(|request| request.connection).collect();
    assert!(
        connections.iter().all(|id| *id == connections[0]),
        "{connections:?} {requests:#?}"
    );
}
