//! Twitch's token quirks from issue 20, against the live daemon and the fake Twitch: a 401 on
//! a color change for a token that still validates (retried once, and a token that dies later
//! still refreshed), a token made for another app's client id (named, with its fix), and
//! device codes Twitch calls invalid while they are still pending (kept until approved).

mod common;

use std::time::{Duration, Instant};

use common::*;
use fake_twitch::{FakeTwitch, ScriptedResponse};

/// Twitch's answer to a Helix call with a token it does not take.
const HELIX_401: &str = r#"{"error":"Unauthorized","status":401,"message":"Invalid OAuth token"}"#;

fn is_token_call(request: &fake_twitch::HttpRequest) -> bool {
    request.path == "/oauth2/token"
}

/// Issue 20, point 1: the refused change is tried again at once with the token that
/// validates, and the refusal leaves no episode open: when Twitch invalidates the token
/// later, the next refused change is checked, the token refreshed and the change made.
#[test]
fn a_401_for_a_token_that_validates_retries_the_change_and_a_later_death_is_refreshed() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "", true);
    let dir = tempfile::tempdir().unwrap();
    let config = serde_json::json!({"users": [user_json(&alice, true, &[])]});
    let running = start_daemon_on_file(&twitch, dir.path(), &config, &[]);
    assert!(twitch.wait_joined("alice", "alice", WAIT));

    // One passing refusal: validation still says the token is good.
    twitch.push_response(
        "PUT",
        "/helix/chat/color",
        ScriptedResponse::json(401, HELIX_401),
    );
    twitch.send_line("alice", &own_message(&alice, "alice", "hi"));
    let puts = twitch.wait_color_puts(2, WAIT);
    assert_eq!(puts.len(), 2, "the refused change is tried again");
    assert_eq!(puts[1].query_param("color"), puts[0].query_param("color"));
    assert_eq!(puts[1].header("authorization"), puts[0].header("authorization"));
    assert!(
        !twitch.requests().iter().any(is_token_call),
        "a token that validates is not refreshed"
    );

    // Twitch invalidates the token early. The next change is refused; that is new evidence.
    twitch.expire_access_token("alice");
    let invalidated = Instant::now();
    twitch.send_line("alice", &own_message(&alice, "alice", "again"));
    let puts = twitch.wait_color_puts(4, WAIT);
    assert_eq!(puts.len(), 4, "the refused change is made with a new token");
    let recovered = invalidated.elapsed();
    assert!(recovered < Duration::from_secs(5), "took {recovered:?}");
    let new_access = twitch.access_token("alice");
    assert_ne!(new_access, alice.access_token);
    assert_eq!(
        puts[3].header("authorization"),
        Some(format!("Bearer {new_access}").as_str())
    );
    assert_eq!(puts[3].query_param("color"), puts[2].query_param("color"));
    sync_chat(&twitch, "alice", "done");
    assert!(running.daemon.shutdown(WAIT));
    assert_eq!(
        twitch.current_color("1001"),
        puts[3].query_param("color").unwrap()
    );
    assert_eq!(
        twitch.requests().iter().filter(|r| is_token_call(r)).count(),
        1,
        "one refresh"
    );
}
