//! Chat over EventSub against the live daemon and the fake Twitch: the transport chosen per
//! user, subscriptions and their errors (a rate-limited user holding up no other), duplicates,
//! reconnects, silence, revocations, the current color at connect, chat commands, and what
//! must work as over IRC: coalescing, the Turbo/Prime fallback, live reload, the timer,
//! health, and a config edit that switches transports.

mod common;

use std::time::Duration;

use common::eventsub::*;
use common::*;
use fake_twitch::{Account, ClientFrame, FakeTwitch, ScriptedResponse, READ_CHAT_SCOPE};
use serde_json::json;

/// Starts the daemon for alice (user 1001) reading #somechannel over EventSub and waits for
/// her subscription.
fn start_alice_on_eventsub(twitch: &FakeTwitch) -> twitch_colorchanger::daemon::Daemon {
    let alice = reader(twitch, "alice", "1001", "");
    let daemon = start_daemon(twitch, vec![entry(&alice, "eventsub", &["somechannel"])]);
    assert!(twitch.wait_eventsub_subscribed("alice", "somechannel", WAIT));
    daemon
}

/// Says `text` as alice in #somechannel, where only her session listens, and returns the
/// color it changed hers to.
fn alice_changes_color(twitch: &FakeTwitch, text: &str) -> String {
    assert_eq!(twitch.say("alice", "somechannel", text), 1);
    next_change_of(twitch, "1001")
}

#[test]
fn auto_reads_chat_over_eventsub_with_the_scope_and_over_irc_without_it() {
    let twitch = FakeTwitch::start();
    let alice = reader(&twitch, "alice", "1001", "");
    let bob = account(&twitch, "bob", "1002", "", true);
    let daemon = start_daemon(
        &twitch,
        vec![
            user_json(&alice, true, &["somechannel"]),
            user_json(&bob, true, &["somechannel"]),
        ],
    );
    assert!(twitch.wait_eventsub_subscribed("alice", "somechannel", WAIT));
    assert!(twitch.wait_joined("bob", "somechannel", WAIT));

    // Each message reaches both: alice's subscription and bob's IRC connection.
    assert_eq!(twitch.say("alice", "somechannel", "hello"), 2);
    next_change_of(&twitch, "1001");
    assert_eq!(twitch.say("bob", "somechannel", "hi"), 2);
    next_change_of(&twitch, "1002");

    assert_eq!(twitch.n_logins("alice"), 0, "alice never used IRC");
    let subscriptions = twitch.eventsub_subscriptions();
    assert_eq!(subscriptions.len(), 1, "{subscriptions:?}");
    assert_eq!(subscriptions[0].login, "alice");
    assert_eq!(subscriptions[0].user_id, "1001");
    assert!(daemon.shutdown(WAIT));
}

#[test]
fn session_reconnect_keeps_changes_flowing_without_a_second_subscription() {
    let twitch = FakeTwitch::start();
    let daemon = start_alice_on_eventsub(&twitch);

    assert_eq!(twitch.eventsub_reconnect("alice"), 1);
    assert!(twitch.wait_n_eventsub_connections(2, WAIT));
    // The daemon closes the old connection itself once the new one is welcomed.
    assert!(twitch
        .wait_eventsub_client_frame(|frame| matches!(frame, ClientFrame::Close(_)), WAIT)
        .is_some());
    assert!(twitch.wait_live_eventsub_connections(1, WAIT));

    alice_changes_color(&twitch, "still here");
    assert_eq!(
        subscription_posts(&twitch).len(),
        1,
        "no second subscription"
    );
    assert_eq!(twitch.eventsub_subscriptions().len(), 1);
    let frames = twitch.eventsub_client_frames();
    assert!(
        frames
            .iter()
            .all(|(_, frame)| matches!(frame, ClientFrame::Pong | ClientFrame::Close(_))),
        "the client sends nothing but pongs and close frames: {frames:?}"
    );
    assert!(daemon.shutdown(WAIT));
}

#[test]
fn silence_past_the_keepalive_window_reconnects_and_subscribes_again() {
    let twitch = FakeTwitch::start();
    twitch.set_eventsub_keepalive_seconds(Some(1));
    let alice = reader(&twitch, "alice", "1001", "");
    let daemon = start_daemon(&twitch, vec![entry(&alice, "auto", &["somechannel"])]);
    assert!(twitch.wait_eventsub_subscribed("alice", "somechannel", WAIT));

    twitch.set_eventsub_silent("alice", true);
    assert!(twitch.wait_n_eventsub_connections(2, WAIT), "a reconnect");
    assert!(twitch.wait_n_eventsub_subscriptions("alice", 2, WAIT));
    twitch.set_eventsub_silent("alice", false);
    assert!(twitch.wait_eventsub_subscribed("alice", "somechannel", WAIT));
    alice_changes_color(&twitch, "back");
    assert!(daemon.shutdown(WAIT));
}

#[test]
fn a_409_counts_as_subscribed_and_a_429_waits_for_the_reset() {
    let twitch = FakeTwitch::start();
    let alice = reader(&twitch, "alice", "1001", "");
    twitch.push_response(
        "POST",
        SUBSCRIPTIONS,
        ScriptedResponse::json(
            409,
            r#"{"status":409,"message":"subscription already exists"}"#,
        ),
    );
    twitch.push_response(
        "POST",
        SUBSCRIPTIONS,
        rate_limited_until(unix_seconds() + 1),
    );
    let daemon = start_daemon(
        &twitch,
        vec![entry(&alice, "eventsub", &["first", "second"])],
    );
    assert!(twitch.wait_eventsub_subscribed("alice", "second", WAIT));

    let posts = subscription_posts(&twitch);
    assert_eq!(posts.len(), 3, "409, 429, then the retry");
    assert_eq!(
        posts[1].body, posts[2].body,
        "the rate-limited subscription was retried"
    );
    assert!(
        posts[2].at.duration_since(posts[1].at) >= Duration::from_millis(900),
        "the retry waited for Ratelimit-Reset"
    );
    assert_eq!(twitch.say("alice", "second", "hi"), 1);
    next_change_of(&twitch, "1001");
    assert_eq!(twitch.n_eventsub_connections(), 1, "no reconnect");
    assert!(daemon.shutdown(WAIT));
}

/// A 429 for the subscriptions of the user with `user_id`, with a reset an hour away.
fn rate_limit_for(twitch: &FakeTwitch, user_id: &str) {
    twitch.push_response(
        "POST",
        SUBSCRIPTIONS,
        rate_limited_until(unix_seconds() + 3600)
            .when_body_contains(&format!(r#""user_id":"{user_id}""#)),
    );
}

fn subscription_posts_of(twitch: &FakeTwitch, user_id: &str) -> usize {
    let condition = format!(r#""user_id":"{user_id}""#);
    subscription_posts(twitch)
        .iter()
        .filter(|post| post.body.contains(&condition))
        .count()
}

#[test]
fn rate_limited_users_wait_on_their_own_threads_and_others_set_up_meanwhile() {
    let twitch = FakeTwitch::start();
    let alice = reader(&twitch, "alice", "1001", "");
    let bob = reader(&twitch, "bob", "1002", "");
    let carol = reader(&twitch, "carol", "1003", "");
    // More rate-limited users than setup threads: were their waits held on those threads,
    // bob's setup would wait behind them for a minute.
    rate_limit_for(&twitch, "1001");
    rate_limit_for(&twitch, "1003");
    let dir = tempfile::tempdir().unwrap();
    let config = json!({"users": [
        entry(&alice, "eventsub", &["somechannel"]),
        entry(&carol, "eventsub", &["somechannel"]),
    ]});
    // A 10 s keepalive window: a new session waits that long for its first subscription,
    // far less than the rate limit (at most a minute is waited).
    let extra = [("TWITCH_RELOAD_SECS", "1"), ("TWITCH_KEEPALIVE_SECS", "10")];
    let running = start_daemon_on_file(&twitch, dir.path(), &config, &extra).run();
    let rate_limited_post = |request: &fake_twitch::HttpRequest| {
        is_subscription_post(request)
            && ["1001", "1003"]
                .iter()
                .any(|id| request.body.contains(&format!(r#""user_id":"{id}""#)))
    };
    let first = twitch
        .wait_request(rate_limited_post, WAIT)
        .expect("a post");
    let second = twitch
        .wait_request(rate_limited_post, WAIT)
        .expect("another");
    assert_ne!(
        first.body, second.body,
        "alice and carol asked to subscribe"
    );
    // The rate-limited sessions cannot live until the reset: the daemon closes them itself.
    assert!(twitch
        .wait_eventsub_client_frame(|frame| matches!(frame, ClientFrame::Close(_)), WAIT)
        .is_some());

    let edited = json!({"users": [
        entry(&alice, "eventsub", &["somechannel"]),
        entry(&carol, "eventsub", &["somechannel"]),
        entry(&bob, "eventsub", &["somechannel"]),
    ]});
    running.edit(&edited);
    assert!(twitch.wait_eventsub_subscribed("bob", "somechannel", 3 * WAIT));
    assert_eq!(twitch.say("bob", "somechannel", "hi"), 1);
    next_change_of(&twitch, "1002");

    assert_eq!(
        subscription_posts_of(&twitch, "1001"),
        1,
        "no retry before the reset"
    );
    assert_eq!(
        subscription_posts_of(&twitch, "1003"),
        1,
        "no retry before the reset"
    );
    // Stopping does not wait for the reset either.
    running.stop();
}

#[test]
fn a_rate_limit_longer_than_a_new_session_may_wait_reconnects_once_the_reset_is_due() {
    let twitch = FakeTwitch::start();
    // Sessions close as unused one second after the welcome.
    twitch.set_eventsub_keepalive_seconds(Some(1));
    let alice = reader(&twitch, "alice", "1001", "");
    twitch.push_response(
        "POST",
        SUBSCRIPTIONS,
        rate_limited_until(unix_seconds() + 5),
    );
    let daemon = start_daemon(&twitch, vec![entry(&alice, "eventsub", &["somechannel"])]);
    // The daemon closes the session itself (a close frame without a code, not the echo of
    // Twitch's 4003 "connection unused").
    assert_eq!(
        twitch.wait_eventsub_client_frame(|frame| matches!(frame, ClientFrame::Close(_)), WAIT),
        Some(ClientFrame::Close(None))
    );
    assert!(twitch.wait_eventsub_subscribed("alice", "somechannel", 2 * WAIT));
    let posts = subscription_posts(&twitch);
    assert_eq!(posts.len(), 2, "the 429, then one on the new session");
    // At least four seconds were left until the reset; a reconnect that ignored it would
    // have come within two (the first retry's backoff).
    assert!(
        posts[1].at.duration_since(posts[0].at) >= Duration::from_millis(3500),
        "waited for the reset: {:?}",
        posts[1].at.duration_since(posts[0].at)
    );
    assert_eq!(twitch.n_eventsub_connections(), 2);
    alice_changes_color(&twitch, "hi");
    assert!(daemon.shutdown(WAIT));
}

#[test]
fn a_401_on_subscribing_refreshes_the_token_and_subscribes_with_the_new_one() {
    let twitch = FakeTwitch::start();
    let daemon = start_alice_on_eventsub(&twitch);

    // The token dies at Twitch; the next connection's subscription is refused with 401.
    twitch.expire_access_token("alice");
    assert_eq!(twitch.eventsub_drop("alice"), 1);
    assert!(twitch.wait_n_eventsub_subscriptions("alice", 2, WAIT));
    assert!(twitch.wait_eventsub_subscribed("alice", "somechannel", WAIT));
    let refreshes = twitch
        .requests()
        .into_iter()
        .filter(|request| request.path == "/oauth2/token")
        .count();
    assert_eq!(refreshes, 1, "refreshed once");
    let posts = subscription_posts(&twitch);
    let authorizations: Vec<Option<&str>> = posts
        .iter()
        .map(|post| post.header("Authorization"))
        .collect();
    let new_token = format!("Bearer {}", twitch.access_token("alice"));
    assert_eq!(authorizations.last(), Some(&Some(new_token.as_str())));
    alice_changes_color(&twitch, "hi");
    assert!(daemon.shutdown(WAIT));
}

#[test]
fn revocations_resubscribe_or_take_the_token_path() {
    let twitch = FakeTwitch::start();
    let daemon = start_alice_on_eventsub(&twitch);

    // A reason that allows it: the same connection subscribes again.
    assert_eq!(
        twitch.eventsub_revoke("alice", "notification_failures_exceeded"),
        1
    );
    assert!(twitch.wait_n_eventsub_subscriptions("alice", 2, WAIT));
    assert!(twitch.wait_eventsub_subscribed("alice", "somechannel", WAIT));
    assert_eq!(twitch.n_eventsub_connections(), 1);

    // The user withdrew the authorization (which also ends the token): the token path
    // refreshes it and chat starts over.
    let first_token = twitch.access_token("alice");
    twitch.expire_access_token("alice");
    assert_eq!(twitch.eventsub_revoke("alice", "authorization_revoked"), 1);
    assert!(twitch.wait_n_eventsub_subscriptions("alice", 3, WAIT));
    assert!(twitch.wait_eventsub_subscribed("alice", "somechannel", WAIT));
    assert_ne!(twitch.access_token("alice"), first_token, "refreshed");
    alice_changes_color(&twitch, "hi");
    assert!(daemon.shutdown(WAIT));
}

#[test]
fn the_current_color_at_connect_comes_from_helix() {
    let twitch = FakeTwitch::start();
    let alice = reader(&twitch, "alice", "1001", "red");
    let mut alice_entry = entry(&alice, "eventsub", &["somechannel"]);
    alice_entry["color_mode"] = json!("preset");
    let daemon = start_daemon(&twitch, vec![alice_entry]);
    assert!(twitch.wait_eventsub_subscribed("alice", "somechannel", WAIT));
    let get = twitch
        .wait_request(
            |request| request.method == "GET" && request.path == "/helix/chat/color",
            WAIT,
        )
        .expect("the current color is asked for at connect");
    assert_eq!(get.query_param("user_id"), Some("1001"));
    let color = alice_changes_color(&twitch, "hi");
    assert_ne!(color, "red", "never the color the user already has");
    assert!(daemon.shutdown(WAIT));
}

#[test]
fn chat_commands_work_over_eventsub() {
    let twitch = FakeTwitch::start();
    let alice = reader(&twitch, "alice", "1001", "");
    let dir = tempfile::tempdir().unwrap();
    let config = json!({"users": [entry(&alice, "eventsub", &["somechannel"])]});
    let running = start_daemon_on_file(&twitch, dir.path(), &config, &[]);
    assert!(twitch.wait_eventsub_subscribed("alice", "somechannel", WAIT));

    twitch.say("alice", "somechannel", "ccc hot_pink");
    assert_eq!(next_change_of(&twitch, "1001"), "hot_pink");
    twitch.say("alice", "somechannel", "ccd");
    twitch.say("alice", "somechannel", "ccc #00FF00");
    assert_eq!(next_change_of(&twitch, "1001"), "#00FF00");
    assert_eq!(
        user_entry(&running.saved_config(), "alice")["enabled"],
        false
    );
    assert!(running.daemon.shutdown(WAIT));
}

#[test]
fn switching_chat_transport_by_a_config_edit_reconnects_that_user_only() {
    let twitch = FakeTwitch::start();
    let alice = reader(&twitch, "alice", "1001", "");
    let bob = reader(&twitch, "bob", "1002", "");
    let dir = tempfile::tempdir().unwrap();
    let config = json!({"users": [
        entry(&alice, "irc", &["somechannel"]),
        entry(&bob, "irc", &["somechannel"]),
    ]});
    let running =
        start_daemon_on_file(&twitch, dir.path(), &config, &[("TWITCH_RELOAD_SECS", "1")]).run();
    assert!(twitch.wait_joined("alice", "somechannel", WAIT));
    assert!(twitch.wait_joined("bob", "somechannel", WAIT));
    assert_eq!(twitch.n_eventsub_connections(), 0, "irc as configured");

    let edited = json!({"users": [
        entry(&alice, "eventsub", &["somechannel"]),
        entry(&bob, "irc", &["somechannel"]),
    ]});
    running.edit(&edited);

    // Noticing the edit, stopping alice's threads and starting new ones takes several
    // hand-overs between threads: a generous wait, only reached when the test fails.
    assert!(twitch.wait_eventsub_subscribed("alice", "somechannel", 3 * WAIT));
    assert!(
        twitch.wait_live_connections("alice", 0, WAIT),
        "alice left IRC"
    );
    assert_eq!(twitch.n_logins("bob"), 1, "bob was not touched");
    assert_eq!(twitch.n_live_connections("bob"), 1);
    // To alice over EventSub and to bob's IRC connection in the same channel.
    assert_eq!(twitch.say("alice", "somechannel", "over eventsub"), 2);
    next_change_of(&twitch, "1001");
    running.stop();
}

#[test]
fn binary_says_which_transport_acts_once_per_message_and_names_close_codes() {
    let twitch = FakeTwitch::start();
    let alice = reader(&twitch, "alice", "1001", "");
    let dir = tempfile::tempdir().unwrap();
    let config = json!({"users": [user_json(&alice, true, &["somechannel"])]});
    let process = spawn_binary(&twitch, dir.path(), &config);
    assert!(process
        .wait_line(
            |line| line.contains("alice: chat over EventSub (the token has user:read:chat)"),
            WAIT
        )
        .is_some());
    assert!(twitch.wait_eventsub_subscribed("alice", "somechannel", WAIT));
    // Health reads the same status file for both transports.
    assert!(process
        .wait_line(
            |line| line.contains("status file written: alice connected"),
            WAIT
        )
        .is_some());
    let (code, text) = health(dir.path(), &twitch);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("1 user connected"), "{text}");

    // Delivered twice, acted on once: the marker after it is the second own message.
    let own = |line: &str| line.contains("alice: own message in #somechannel");
    twitch.say("alice", "somechannel", "once");
    assert!(process.wait_line(own, WAIT).is_some());
    assert_eq!(twitch.redeliver_last("alice"), 1);
    twitch.say("alice", "somechannel", "ccc red");
    assert!(process.wait_line(own, WAIT).is_some());
    assert!(twitch
        .wait_request(
            |request| is_color_put(request) && request.query_param("color") == Some("red"),
            WAIT
        )
        .is_some());

    assert_eq!(
        twitch.eventsub_close("alice", 4000, "internal server error"),
        1
    );
    assert!(process
        .wait_line(|line| line.contains("4000 internal server error"), WAIT)
        .is_some());
    assert!(
        twitch.wait_n_eventsub_subscriptions("alice", 2, WAIT),
        "back after the close"
    );

    let (status, _, output) = process.terminate();
    assert_eq!(status.code(), Some(0), "{output}");
    assert_eq!(
        output.lines().filter(|line| own(line)).count(),
        2,
        "the duplicate was not acted on: {output}"
    );
}

#[test]
fn binary_falls_back_to_irc_with_one_clear_error_when_the_subscription_is_refused() {
    let twitch = FakeTwitch::start();
    let alice = reader(&twitch, "alice", "1001", "");
    twitch.push_response(
        "POST",
        SUBSCRIPTIONS,
        ScriptedResponse::json(
            403,
            r#"{"error":"Forbidden","status":403,"message":"subscription missing proper authorization"}"#,
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let config = json!({"users": [user_json(&alice, true, &["somechannel"])]});
    let process = spawn_binary(&twitch, dir.path(), &config);
    assert!(
        twitch.wait_joined("alice", "somechannel", WAIT),
        "IRC instead"
    );
    twitch.send_line("alice", &own_message(&alice, "somechannel", "hi"));
    next_change_of(&twitch, "1001");

    let (status, _, output) = process.terminate();
    assert_eq!(status.code(), Some(0), "{output}");
    let errors: Vec<&str> = output
        .lines()
        .filter(|line| line.contains(READ_CHAT_SCOPE) && line.contains("using IRC until then"))
        .collect();
    assert_eq!(errors.len(), 1, "one clear error: {output}");
    assert!(
        errors[0].contains("twitch-colorchanger auth"),
        "{}",
        errors[0]
    );
    assert_eq!(subscription_posts(&twitch).len(), 1);
}

#[test]
fn the_color_timer_runs_over_eventsub_too() {
    let twitch = FakeTwitch::start();
    let alice = reader(&twitch, "alice", "1001", "");
    let mut alice_entry = entry(&alice, "eventsub", &["somechannel"]);
    alice_entry["change_every_seconds"] = json!(10);
    let daemon = start_daemon(&twitch, vec![alice_entry]);
    assert!(twitch.wait_eventsub_subscribed("alice", "somechannel", WAIT));
    let put = twitch
        .wait_request(is_color_put, Duration::from_secs(30))
        .expect("a timer change without any message");
    assert!(is_hex_color(put.query_param("color").unwrap()));
    assert!(daemon.shutdown(WAIT));
}

#[test]
fn a_burst_of_own_messages_coalesces_over_eventsub_too() {
    let twitch = FakeTwitch::start();
    let alice = reader(&twitch, "alice", "1001", "#123456");
    let daemon = start_daemon(&twitch, vec![entry(&alice, "eventsub", &["alice"])]);
    assert!(twitch.wait_eventsub_subscribed("alice", "alice", WAIT));
    send_burst_during_a_slow_change(&twitch, |text| {
        assert_eq!(twitch.say("alice", "alice", text), 1);
    });
    assert!(twitch.sync_eventsub("alice", "after-burst", WAIT));
    assert!(daemon.shutdown(WAIT));
    assert_burst_coalesced(&twitch, "#123456");
}

#[test]
fn hex_refused_twice_switches_to_named_colors_over_eventsub_too() {
    let twitch = FakeTwitch::start();
    let mut alice = Account::new("alice", "1001");
    alice.scopes.push(READ_CHAT_SCOPE.to_string());
    // The config claims Turbo/Prime; the account has neither, so Twitch refuses hex.
    alice.turbo = false;
    twitch.add_user(alice.clone());
    let dir = tempfile::tempdir().unwrap();
    let config = json!({"users": [entry(&alice, "eventsub", &["alice"])]});
    let running = start_daemon_on_file(&twitch, dir.path(), &config, &[]);
    assert!(twitch.wait_eventsub_subscribed("alice", "alice", WAIT));

    for n in 0..2 {
        twitch.say("alice", "alice", &format!("msg {n}"));
        let refused = next_change_of(&twitch, "1001");
        assert!(is_hex_color(&refused), "tries hex first: {refused}");
        let fallback = next_change_of(&twitch, "1001");
        assert!(
            fake_twitch::NAMED_COLORS.contains(&fallback.as_str()),
            "the same message still changes, to a named color: {fallback}"
        );
    }
    let saved = running.saved_config();
    assert_eq!(user_entry(&saved, "alice")["is_prime_or_turbo"], false);

    twitch.say("alice", "alice", "msg 3");
    let third = next_change_of(&twitch, "1001");
    assert!(
        fake_twitch::NAMED_COLORS.contains(&third.as_str()),
        "named from now on: {third}"
    );
    assert!(twitch.sync_eventsub("alice", "done", WAIT));
    assert!(running.daemon.shutdown(WAIT));
    assert_eq!(twitch.color_puts().len(), 5);
}

#[test]
fn edits_start_stop_and_resubscribe_eventsub_users_and_change_settings_in_place() {
    let twitch = FakeTwitch::start();
    let alice = reader(&twitch, "alice", "1001", "");
    let bob = reader(&twitch, "bob", "1002", "");
    let carol = reader(&twitch, "carol", "1003", "");
    let dir = tempfile::tempdir().unwrap();
    let config = json!({"users": [
        entry(&alice, "eventsub", &["somechannel"]),
        entry(&bob, "eventsub", &["somechannel"]),
    ]});
    let running =
        start_daemon_on_file(&twitch, dir.path(), &config, &[("TWITCH_RELOAD_SECS", "1")]).run();
    assert!(twitch.wait_eventsub_subscribed("alice", "somechannel", WAIT));
    assert!(twitch.wait_eventsub_subscribed("bob", "somechannel", WAIT));

    // Carol is added, Bob removed, Alice gets another channel.
    let edited = json!({"users": [
        entry(&alice, "eventsub", &["somechannel", "elsewhere"]),
        entry(&carol, "eventsub", &["somechannel"]),
    ]});
    running.edit(&edited);
    assert!(
        twitch.wait_eventsub_subscribed("carol", "somechannel", 3 * WAIT),
        "added user started"
    );
    assert!(
        twitch.wait_eventsub_subscribed("alice", "elsewhere", WAIT),
        "changed user subscribed again"
    );
    assert!(
        twitch.wait_live_eventsub_connections(2, WAIT),
        "removed user stopped, changed user reconnected"
    );
    let n_connections = twitch.n_eventsub_connections();
    assert_eq!(n_connections, 4, "alice twice, bob and carol once");
    // To alice and carol; bob no longer reads chat.
    assert_eq!(twitch.say("carol", "somechannel", "hi"), 2);
    next_change_of(&twitch, "1003");

    // Disabling Carol changes a setting in place: no reconnect, and no changes any more. The
    // same edit gives Alice a third channel, which shows when the edit has been applied.
    let mut carol_disabled = entry(&carol, "eventsub", &["somechannel"]);
    carol_disabled["enabled"] = json!(false);
    let disabled = json!({"users": [
        entry(&alice, "eventsub", &["somechannel", "elsewhere", "third"]),
        carol_disabled,
    ]});
    running.edit(&disabled);
    assert!(twitch.wait_eventsub_subscribed("alice", "third", 3 * WAIT));
    assert_eq!(twitch.say("carol", "somechannel", "ignored"), 2);
    assert!(twitch.sync_eventsub("carol", "after-disabled", WAIT));
    assert_eq!(
        twitch
            .color_puts()
            .iter()
            .filter(|put| put.query_param("user_id") == Some("1003"))
            .count(),
        1,
        "no change for a disabled user"
    );
    running.stop();
    assert_eq!(
        twitch.n_eventsub_connections(),
        n_connections + 1,
        "alice reconnected, carol did not"
    );
}

/// Issue 19: after SIGTERM no Helix call starts. A session being set up with three channels,
/// the first subscription answered slowly, SIGTERM while it is under way: that call is
/// answered, and the two channels after it are not subscribed any more.
#[test]
fn sigterm_starts_no_subscription_after_the_signal() {
    let twitch = FakeTwitch::start();
    let alice = reader(&twitch, "alice", "1001", "");
    for (login, id) in [
        ("chanone", "2001"),
        ("chantwo", "2002"),
        ("chanthree", "2003"),
    ] {
        twitch.add_user(Account::new(login, id));
    }
    twitch.delay_next("POST", SUBSCRIPTIONS, Duration::from_millis(700));
    let dir = tempfile::tempdir().unwrap();
    let process = spawn_binary(
        &twitch,
        dir.path(),
        &json!({ "users": [entry(&alice, "eventsub", &["chanone", "chantwo", "chanthree"])] }),
    );
    twitch
        .wait_request(is_subscription_post, WAIT)
        .expect("the first subscription");
    let (status, _, output) = process.terminate();
    assert_eq!(status.code(), Some(0), "{output}");
    assert_eq!(
        subscription_posts(&twitch).len(),
        1,
        "the subscription under way was answered, none started after the signal\n{output}"
    );
}
