//! The status server (`--listen`) over real HTTP: the page, `/metrics` and `/healthz` of a
//! daemon running against the fake Twitch, no secrets anywhere, 404 for unknown paths, and
//! bad or slow clients that never keep others from being served.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::*;
use fake_twitch::FakeTwitch;

/// One request on a fresh connection; returns the status code and the whole response.
fn request(address: SocketAddr, raw: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.write_all(raw.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {response:?}"));
    (status, response)
}

fn get(address: SocketAddr, path: &str) -> (u16, String) {
    request(
        address,
        &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n"),
    )
}

#[test]
fn page_metrics_and_health_over_http() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "statusalice", "5101", "#00FF7F", true);
    let bob = account(&twitch, "statusbob", "5102", "", false);
    let daemon = start_daemon_with(
        &twitch,
        vec![
            user_json(&alice, true, &["statusalice", "friend"]),
            user_json(&bob, false, &[]),
        ],
        &[("TWITCH_HTTP_LISTEN", "127.0.0.1:0")],
    );
    let address = daemon.status_address().expect("the status server runs");
    assert!(address.ip().is_loopback());
    assert!(twitch.wait_joined("statusalice", "friend", WAIT));
    assert!(twitch.wait_joined("statusbob", "statusbob", WAIT));

    twitch.send_line("statusalice", &own_message(&alice, "friend", "hi"));
    let put = twitch.wait_request(is_color_put, WAIT).expect("a change");
    let color = put.query_param("color").unwrap().to_string();
    twitch.send_line("statusalice", &own_message(&alice, "friend", "again"));
    let second = twitch
        .wait_request(is_color_put, WAIT)
        .expect("a second change");
    let second_color = second.query_param("color").unwrap().to_string();
    // The worker records a change right after Helix answered it, and a user's next change
    // starts only after that: once the third change reached Twitch, the first two are on
    // the board.
    twitch.send_line("statusalice", &own_message(&alice, "friend", "third"));
    let third = twitch
        .wait_request(is_color_put, WAIT)
        .expect("a third change");
    let third_color = third.query_param("color").unwrap().to_string();

    let (status, page) = get(address, "/");
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Content-Type: text/html; charset=utf-8"),
        "{page}"
    );
    for expected in [
        "id=\"user-statusalice\"".to_string(),
        "id=\"user-statusbob\"".to_string(),
        "#statusalice, #friend".to_string(),
        "<dd>IRC</dd>".to_string(),
        "connected for".to_string(),
        "Last colors".to_string(),
        format!("{color} <time>"),
        format!("{second_color} <time>"),
    ] {
        assert!(page.contains(&expected), "{expected} missing: {page}");
    }
    assert!(
        [&second_color, &third_color]
            .iter()
            .any(|current| page.contains(&format!("<b style=\"color:{current}\">statusalice</b>"))),
        "the name is drawn in its current color: {page}"
    );
    for secret in [
        "at-statusalice",
        "rt-statusalice",
        "cs-statusalice",
        "at-statusbob",
    ] {
        assert!(!page.contains(secret), "{secret} on the page");
    }

    let (status, metrics) = get(address, "/metrics");
    assert_eq!(status, 200, "{metrics}");
    assert!(
        metrics
            .lines()
            .any(|line| line == "twitch_colorchanger_users{state=\"connected\"} 2"),
        "{metrics}"
    );
    let n_ok = metrics
        .lines()
        .find_map(|line| {
            line.strip_prefix(
                "twitch_colorchanger_color_changes_total{user=\"statusalice\",result=\"ok\"} ",
            )
        })
        .expect("alice's changes are counted");
    assert!((2..=3).contains(&n_ok.parse::<u64>().unwrap()), "{metrics}");
    let n_calls = metrics
        .lines()
        .find_map(|line| {
            line.strip_prefix("twitch_colorchanger_helix_request_duration_seconds_count ")
        })
        .expect("a latency count");
    assert!(n_calls.parse::<u64>().unwrap() >= 2, "{metrics}");
    for secret in ["at-statusalice", "rt-statusalice", "cs-statusalice"] {
        assert!(!metrics.contains(secret), "{secret} in metrics");
    }

    let (status, health) = get(address, "/healthz");
    assert_eq!(status, 200, "{health}");
    assert!(health.contains("healthy: 2 users connected"), "{health}");

    let (status, _) = get(address, "/nothing-here");
    assert_eq!(status, 404);
    let (status, _) = request(address, "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(status, 405);
    let (status, _) = request(address, "\u{16}\u{3}\u{1}binary junk\r\n\r\n");
    assert_eq!(status, 400);
    let huge = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(20_000));
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    // The server may close before reading all of it; only its answer matters.
    let _ = stream.write_all(huge.as_bytes());
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");

    // The daemon went on working through all of that.
    twitch.send_line(
        "statusalice",
        &own_message(&alice, "friend", "still there?"),
    );
    assert!(twitch.wait_request(is_color_put, WAIT).is_some());
    assert!(daemon.shutdown(WAIT));
    assert!(TcpStream::connect(address).is_err(), "the server stopped");
}

#[test]
fn a_silent_client_does_not_hold_up_the_others() {
    let twitch = FakeTwitch::start();
    let carol = account(&twitch, "statuscarol", "5103", "", true);
    let daemon = start_daemon_with(
        &twitch,
        vec![user_json(&carol, true, &[])],
        &[("TWITCH_HTTP_LISTEN", "0")],
    );
    let address = daemon.status_address().unwrap();
    assert_eq!(
        address.ip().to_string(),
        "127.0.0.1",
        "a bare port is loopback"
    );
    // Clients that connect and send nothing, or half a request.
    let mut idle: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(address).unwrap())
        .collect();
    idle[0].write_all(b"GET / HT").unwrap();
    let started = Instant::now();
    let (status, _) = get(address, "/healthz");
    assert!(status == 200 || status == 503);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "served while others hang: {:?}",
        started.elapsed()
    );
    // The silent ones are answered 408 once their time is up.
    let mut answer = String::new();
    idle[0].set_read_timeout(Some(WAIT)).unwrap();
    idle[0].read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    // Shutdown does not wait for idle clients.
    let stopping = Instant::now();
    assert!(daemon.shutdown(WAIT));
    assert!(
        stopping.elapsed() < Duration::from_secs(3),
        "{:?}",
        stopping.elapsed()
    );
    drop(idle);
}

#[test]
fn a_port_in_use_fails_the_start_with_its_address() {
    let twitch = FakeTwitch::start();
    let dave = account(&twitch, "statusdave", "5104", "", true);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let users = users_from_json(vec![user_json(&dave, true, &[])]);
    let settings = settings_with(&twitch, &[("TWITCH_HTTP_LISTEN", &address)]);
    let error = match twitch_colorchanger::daemon::Daemon::start(&users, &settings, None) {
        Ok(_) => panic!("started on a port in use"),
        Err(error) => error.to_string(),
    };
    assert!(
        error.contains(&format!("cannot listen on {address}")),
        "{error}"
    );
    assert_eq!(twitch.n_logins("statusdave"), 0, "nothing started");
}

#[test]
fn rate_limit_waits_and_failed_changes_show_in_metrics_and_on_the_page() {
    use fake_twitch::ScriptedResponse;
    let twitch = FakeTwitch::start();
    let erin = account(&twitch, "statuserin", "5105", "", true);
    let daemon = start_daemon_with(
        &twitch,
        vec![user_json(&erin, true, &[])],
        &[("TWITCH_HTTP_LISTEN", "127.0.0.1:0")],
    );
    let address = daemon.status_address().unwrap();
    assert!(twitch.wait_joined("statuserin", "statuserin", WAIT));
    twitch.push_response(
        "PUT",
        "/helix/chat/color",
        rate_limited_until(unix_seconds() + 1),
    );
    // Then Twitch refuses the hex color, and the named one tried instead: a failed change.
    for _ in 0..2 {
        twitch.push_response(
            "PUT",
            "/helix/chat/color",
            ScriptedResponse::json(
                400,
                r#"{"error":"Bad Request","status":400,"message":"nope"}"#,
            ),
        );
    }
    twitch.send_line("statuserin", &own_message(&erin, "statuserin", "one"));
    let limited = twitch
        .wait_request(is_color_put, WAIT)
        .expect("the limited PUT");
    let refused = twitch
        .wait_request(is_color_put, WAIT)
        .expect("the retried PUT");
    assert_eq!(limited.query_param("color"), refused.query_param("color"));
    let named = twitch
        .wait_request(is_color_put, WAIT)
        .expect("the named PUT");
    // The next change starts only once the refused one is recorded.
    twitch.send_line("statuserin", &own_message(&erin, "statuserin", "two"));
    assert!(twitch.wait_request(is_color_put, WAIT).is_some());

    let (_, metrics) = get(address, "/metrics");
    let value = |prefix: &str| -> f64 {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("{prefix} missing: {metrics}"))
            .parse()
            .unwrap()
    };
    assert!(
        value("twitch_colorchanger_rate_limit_waits_total ") >= 1.0,
        "{metrics}"
    );
    assert!(
        value("twitch_colorchanger_rate_limit_wait_seconds_total ") > 0.0,
        "{metrics}"
    );
    for result in ["hex_refused", "failed"] {
        let line = format!(
            "twitch_colorchanger_color_changes_total{{user=\"statuserin\",result=\"{result}\"}} "
        );
        assert_eq!(value(&line), 1.0, "{metrics}");
    }
    let (_, page) = get(address, "/");
    let color = named.query_param("color").unwrap();
    assert!(
        page.contains(&format!("color change to {color} failed")),
        "the last error: {page}"
    );
    assert!(daemon.shutdown(WAIT));
}

/// Issue 20: connections that send nothing must not turn `/healthz` into 503 (a health check
/// on the page would then have the daemon restarted by anyone who can reach the port). With
/// twice as many idle connections as the server serves at once, a probe is still answered
/// 200 within a second; a head that ends in bare LF is read, not timed out; any other method
/// than GET and HEAD is 405, `OPTIONS *` included.
#[test]
fn idle_connections_never_starve_health_probes() {
    let twitch = FakeTwitch::start();
    let dave = account(&twitch, "statusdave", "5104", "", true);
    let daemon = start_daemon_with(
        &twitch,
        vec![user_json(&dave, true, &[])],
        &[("TWITCH_HTTP_LISTEN", "127.0.0.1:0")],
    );
    let address = daemon.status_address().unwrap();
    assert!(twitch.wait_joined("statusdave", "statusdave", WAIT));
    let mut idle = Vec::new();
    for index in 0..32 {
        let mut stream = TcpStream::connect(address).unwrap();
        if index % 2 == 0 {
            stream.write_all(b"GET /healthz HT").unwrap();
        }
        idle.push(stream);
    }
    for _ in 0..3 {
        let started = Instant::now();
        let (status, response) = get(address, "/healthz");
        assert_eq!(status, 200, "{response}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "answered after {:?}",
            started.elapsed()
        );
        // More idle clients keep arriving.
        idle.push(TcpStream::connect(address).unwrap());
    }
    let started = Instant::now();
    let (status, _) = request(address, "GET /healthz HTTP/1.1\nHost: localhost\n\n");
    assert_eq!(status, 200, "a head ending in bare LF is read");
    assert!(started.elapsed() < Duration::from_secs(1));
    for raw in ["OPTIONS * HTTP/1.1\r\n\r\n", "OPTIONS / HTTP/1.1\r\n\r\n"] {
        assert_eq!(request(address, raw).0, 405, "{raw:?}");
    }
    assert!(daemon.shutdown(WAIT));
    drop(idle);
}
