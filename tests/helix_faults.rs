//! Helix misbehaving, one fault per test, against the live daemon and the fake Twitch:
//! rate limits, server errors and a stalled response never lose a change or a thread.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use fake_twitch::{FakeTwitch, ScriptedResponse};

const COLOR_PATH: &str = "/helix/chat/color";

fn started_alice(
    twitch: &FakeTwitch,
    extra: &[(&str, &str)],
) -> (fake_twitch::Account, twitch_colorchanger::daemon::Daemon) {
    let alice = account(twitch, "alice", "1001", "", true);
    let daemon = start_daemon_with(twitch, vec![user_json(&alice, true, &[])], extra);
    assert!(twitch.wait_joined("alice", "alice", WAIT));
    (alice, daemon)
}

#[test]
fn a_429_waits_for_the_bucket_reset_then_succeeds() {
    let twitch = FakeTwitch::start();
    let (alice, daemon) = started_alice(&twitch, &[]);
    let reset = unix_seconds() + 2;
    twitch.push_response("PUT", COLOR_PATH, rate_limited_until(reset));
    twitch.send_line("alice", &own_message(&alice, "alice", "hi"));
    let refused = twitch.wait_request(is_color_put, WAIT).expect("first PUT");
    let retried = twitch
        .wait_request(is_color_put, WAIT)
        .expect("retried PUT");
    assert_eq!(
        retried.query_param("color"),
        refused.query_param("color"),
        "the same change"
    );
    let retried_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        retried_at >= reset as f64 - 1.0,
        "retried before the bucket could refill ({retried_at} vs reset {reset})"
    );
    sync_chat(&twitch, "alice", "done");
    assert!(daemon.shutdown(WAIT));
    assert_eq!(
        twitch.current_color("1001"),
        retried.query_param("color").unwrap(),
        "the change landed"
    );
}

#[test]
fn three_server_errors_then_success_still_changes_the_color() {
    let twitch = FakeTwitch::start();
    let (alice, daemon) = started_alice(&twitch, &[]);
    for _ in 0..3 {
        twitch.push_response(
            "PUT",
            COLOR_PATH,
            ScriptedResponse::json(500, r#"{"message":"oops"}"#),
        );
    }
    twitch.send_line("alice", &own_message(&alice, "alice", "hi"));
    let mut colors = Vec::new();
    for _ in 0..4 {
        let put = twitch
            .wait_request(is_color_put, WAIT)
            .expect("PUT attempt");
        colors.push(put.query_param("color").unwrap().to_string());
    }
    assert!(
        colors.windows(2).all(|pair| pair[0] == pair[1]),
        "one change retried: {colors:?}"
    );
    sync_chat(&twitch, "alice", "done");
    assert!(daemon.shutdown(WAIT));
    assert_eq!(twitch.color_puts().len(), 4);
    assert_eq!(twitch.current_color("1001"), colors[3]);
}

#[test]
fn server_errors_that_never_end_are_given_up_and_the_next_change_works() {
    let twitch = FakeTwitch::start();
    let (alice, daemon) = started_alice(&twitch, &[]);
    for _ in 0..twitch_colorchanger::twitch::helix::MAX_ATTEMPTS {
        twitch.push_response("PUT", COLOR_PATH, ScriptedResponse::status(503));
    }
    twitch.send_line("alice", &own_message(&alice, "alice", "first"));
    for _ in 0..twitch_colorchanger::twitch::helix::MAX_ATTEMPTS {
        twitch
            .wait_request(is_color_put, WAIT)
            .expect("PUT attempt");
    }
    twitch.send_line("alice", &own_message(&alice, "alice", "second"));
    let put = twitch
        .wait_request(is_color_put, WAIT)
        .expect("next change");
    sync_chat(&twitch, "alice", "done");
    assert!(daemon.shutdown(WAIT));
    assert_eq!(
        twitch.current_color("1001"),
        put.query_param("color").unwrap()
    );
}

#[test]
fn a_stalled_response_times_out_and_the_change_still_lands() {
    let twitch = FakeTwitch::start();
    let (alice, daemon) = started_alice(&twitch, &[("TWITCH_HTTP_TIMEOUT_SECS", "1")]);
    twitch.push_response(
        "PUT",
        COLOR_PATH,
        ScriptedResponse::status(204).delayed(Duration::from_secs(30)),
    );
    twitch.send_line("alice", &own_message(&alice, "alice", "hi"));
    let stalled = twitch
        .wait_request(is_color_put, WAIT)
        .expect("stalled PUT");
    let retried = twitch
        .wait_request(is_color_put, WAIT)
        .expect("PUT after the timeout");
    assert_eq!(retried.query_param("color"), stalled.query_param("color"));
    sync_chat(&twitch, "alice", "first");

    twitch.send_line("alice", &own_message(&alice, "alice", "again"));
    let next = twitch
        .wait_request(is_color_put, WAIT)
        .expect("next change");
    sync_chat(&twitch, "alice", "second");
    assert!(daemon.shutdown(WAIT));
    assert_eq!(
        twitch.current_color("1001"),
        next.query_param("color").unwrap()
    );
}
