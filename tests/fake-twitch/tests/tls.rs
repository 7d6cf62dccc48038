//! The fake's TLS mode over loopback: a client that trusts the generated CA speaks IRC over
//! `wss://` and HTTP over `https://`, one that does not is refused; frames ordered by the test
//! are timestamped when they go out (does I/O).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use fake_twitch::{Account, FakeTwitch};
use native_tls::{Certificate, TlsConnector, TlsStream};
use tungstenite::{Message, WebSocket};

/// A safety net so a broken fake fails a test instead of hanging it; no test waits it out.
const TIMEOUT: Duration = Duration::from_secs(5);

/// A TLS client that trusts only the fake's CA.
fn trusting_connector(twitch: &FakeTwitch) -> TlsConnector {
    let ca = Certificate::from_pem(twitch.ca_cert_pem().as_bytes()).expect("ca pem");
    TlsConnector::builder()
        .add_root_certificate(ca)
        .disable_built_in_roots(true)
        .build()
        .expect("tls connector")
}

fn tls_connect(
    connector: &TlsConnector,
    address: std::net::SocketAddr,
) -> Result<TlsStream<TcpStream>, String> {
    let stream = TcpStream::connect(address).expect("connect to the fake");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    connector
        .connect("127.0.0.1", stream)
        .map_err(|error| error.to_string())
}

fn read_lines(websocket: &mut WebSocket<TlsStream<TcpStream>>, n_lines: usize) -> Vec<String> {
    let mut lines = Vec::new();
    while lines.len() < n_lines {
        match websocket.read().expect("read frame") {
            Message::Text(text) => lines.extend(
                text.as_str()
                    .split("\r\n")
                    .filter(|line| !line.is_empty())
                    .map(str::to_string),
            ),
            Message::Close(_) => panic!("unexpected close frame"),
            _ => {}
        }
    }
    lines
}

#[test]
fn urls_name_the_secure_schemes() {
    let twitch = FakeTwitch::start_tls();
    assert!(twitch.is_tls());
    assert!(twitch.irc_url().starts_with("wss://127.0.0.1:"));
    assert!(twitch.api_url().starts_with("https://127.0.0.1:"));
    assert!(twitch.api_url().ends_with("/helix"));
    assert!(twitch.auth_url().starts_with("https://127.0.0.1:"));
    assert!(twitch
        .ca_cert_pem()
        .starts_with("-----BEGIN CERTIFICATE-----"));
    let plain = FakeTwitch::start();
    assert!(!plain.is_tls());
    assert!(plain.irc_url().starts_with("ws://"));
}

#[test]
fn irc_over_wss_logs_in_and_timestamps_ordered_frames() {
    let twitch = FakeTwitch::start_tls();
    twitch.add_user(Account::new("alice", "1001"));
    let connector = trusting_connector(&twitch);
    let stream = tls_connect(&connector, twitch.irc_address()).expect("tls handshake");
    let (mut websocket, _) =
        tungstenite::client(twitch.irc_url(), stream).expect("websocket handshake");
    // The whole login in one frame, then a JOIN in a second one.
    websocket
        .send(Message::text(
            "CAP REQ :twitch.tv/tags twitch.tv/commands\r\nPASS oauth:at-alice\r\nNICK alice\r\n",
        ))
        .unwrap();
    let lines = read_lines(&mut websocket, 9);
    assert!(lines[8].ends_with("GLOBALUSERSTATE"), "{lines:?}");
    websocket.send(Message::text("JOIN #alice")).unwrap();
    assert!(twitch.wait_joined("alice", "alice", TIMEOUT));

    let line = FakeTwitch::privmsg_line("alice", "1001", "Alice", "alice", "over tls");
    let before = Instant::now();
    assert_eq!(twitch.send_line("alice", &line), 1);
    let sent_at = twitch
        .wait_frame_sent("alice", |frame| frame.contains("over tls"), TIMEOUT)
        .expect("the frame went out");
    assert!(sent_at >= before);
    // The JOIN answers come first, then the ordered line.
    let received = loop {
        let lines = read_lines(&mut websocket, 1);
        if let Some(found) = lines.iter().find(|line| line.contains("over tls")) {
            break found.clone();
        }
    };
    assert_eq!(received, line);
    let frames = twitch.frames_sent("alice");
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0], (sent_at, format!("{line}\r\n")));
    assert!(twitch
        .wait_frame_sent(
            "alice",
            |frame| frame.contains("never sent"),
            Duration::ZERO
        )
        .is_none());
}

#[test]
fn https_serves_helix_with_keep_alive() {
    let twitch = FakeTwitch::start_tls();
    twitch.add_user(Account::new("alice", "1001"));
    let connector = trusting_connector(&twitch);
    let stream = tls_connect(&connector, twitch.http_address()).expect("tls handshake");
    let mut reader = BufReader::new(stream);
    for color in ["red", "blue"] {
        let request = format!(
            "PUT /helix/chat/color?user_id=1001&color={color} HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Authorization: Bearer at-alice\r\nClient-Id: cid-alice\r\nContent-Length: 0\r\n\r\n"
        );
        reader.get_mut().write_all(request.as_bytes()).unwrap();
        let mut status_line = String::new();
        reader.read_line(&mut status_line).unwrap();
        assert_eq!(status_line, "HTTP/1.1 204 No Content\r\n");
        let mut content_length = None;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).unwrap();
            if header == "\r\n" {
                break;
            }
            if let Some(value) = header.strip_prefix("Content-Length: ") {
                content_length = Some(value.trim().parse::<usize>().unwrap());
            }
        }
        let mut body = vec![0; content_length.expect("content length")];
        reader.read_exact(&mut body).unwrap();
    }
    let puts = twitch.wait_color_puts(2, TIMEOUT);
    assert_eq!(puts.len(), 2);
    assert_eq!(
        puts[0].connection, puts[1].connection,
        "one kept-alive connection"
    );
    assert_eq!(twitch.current_color("1001"), "blue");
}

#[test]
fn a_client_that_does_not_trust_the_ca_is_refused() {
    let twitch = FakeTwitch::start_tls();
    let stranger = FakeTwitch::start_tls();
    let connector = trusting_connector(&stranger);
    for address in [twitch.irc_address(), twitch.http_address()] {
        let error = tls_connect(&connector, address).expect_err("untrusted certificate");
        assert!(error.contains("certificate"), "{error}");
    }
}
