//! What the real Twitch does that a naive client gets wrong (issue 20), against the live
//! daemon and a fake Twitch taught each behaviour: a `reconnect_url` to another server,
//! subscription limits answered with 429, more channels than one session holds, a user banned
//! from a channel, chat notifications with null fields, and dead links. Every fact and its
//! source is in docs/twitch-behaviour.md.

mod common;

use std::time::Duration;

use common::eventsub::*;
use common::*;
use fake_twitch::FakeTwitch;
use serde_json::json;

#[test]
fn a_reconnect_url_to_another_server_is_not_followed() {
    let twitch = FakeTwitch::start();
    let alice = reader(&twitch, "alice", "1001", "");
    // Another server, as a man in the middle would run it: it knows alice too and would
    // hand her "own messages" of its choosing.
    let elsewhere = FakeTwitch::start();
    reader(&elsewhere, "alice", "1001", "");
    let daemon = start_daemon(&twitch, vec![entry(&alice, "eventsub", &["somechannel"])]);
    assert!(twitch.wait_eventsub_subscribed("alice", "somechannel", WAIT));

    assert_eq!(
        twitch.eventsub_reconnect_to("alice", &elsewhere.eventsub_url()),
        1
    );
    // A normal reconnect to the configured server instead, with a new subscription.
    assert!(twitch.wait_n_eventsub_connections(2, WAIT));
    assert!(twitch.wait_n_eventsub_subscriptions("alice", 2, WAIT));
    assert!(twitch.wait_eventsub_subscribed("alice", "somechannel", WAIT));
    assert_eq!(elsewhere.n_eventsub_connections(), 0, "never dialled");
    assert_eq!(twitch.say("alice", "somechannel", "still here"), 1);
    next_change_of(&twitch, "1001");
    assert!(daemon.shutdown(WAIT));
}

#[test]
fn a_subscription_limit_is_named_once_and_auto_falls_back_to_irc() {
    let twitch = FakeTwitch::start();
    let alice = reader(&twitch, "alice", "1001", "");
    // Three sessions Twitch still counts for alice: her own session's subscription is
    // refused with 429 "number of websocket transports limit exceeded".
    twitch.occupy_eventsub_transports("alice");
    let dir = tempfile::tempdir().unwrap();
    let config = json!({"users": [entry(&alice, "auto", &["somechannel"])]});
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
        .filter(|line| line.contains("websocket transports limit exceeded"))
        .collect();
    assert_eq!(errors.len(), 1, "one clear error: {output}");
    assert!(
        errors[0].contains("3 EventSub WebSocket sessions"),
        "{}",
        errors[0]
    );
    assert!(errors[0].contains("using IRC instead"), "{}", errors[0]);
    assert_eq!(subscription_posts(&twitch).len(), 1, "not retried");
}

#[test]
fn more_channels_than_one_eventsub_session_holds_go_over_irc_or_are_refused_at_check() {
    let twitch = FakeTwitch::start();
    let alice = reader(&twitch, "alice", "1001", "");
    let names: Vec<String> = (0..301).map(|n| format!("channel{n:03}")).collect();
    let channels: Vec<&str> = names.iter().map(String::as_str).collect();

    // Under eventsub the config check names the limit.
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        &json!({"users": [entry(&alice, "eventsub", &channels)]}),
    );
    let output = binary_for(dir.path(), &twitch)
        .arg("check")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("301 channels") && stderr.contains("300 subscriptions"),
        "{stderr}"
    );

    // Under auto the token's scope would choose EventSub, but channel 301 would not fit.
    let daemon = start_daemon(&twitch, vec![entry(&alice, "auto", &channels)]);
    assert!(twitch.wait_joined("alice", "channel000", WAIT), "IRC");
    twitch.send_line("alice", &own_message(&alice, "channel000", "hi"));
    next_change_of(&twitch, "1001");
    assert_eq!(twitch.n_eventsub_connections(), 0);
    assert!(subscription_posts(&twitch).is_empty());
    assert!(daemon.shutdown(WAIT));
}

/// Subscription requests for `channel_id`.
fn posts_for_channel(twitch: &FakeTwitch, channel_id: &str) -> usize {
    let condition = format!(r#""broadcaster_user_id":"{channel_id}""#);
    subscription_posts(twitch)
        .iter()
        .filter(|post| post.body.contains(&condition))
        .count()
}

#[test]
fn a_user_banned_from_a_channel_does_not_resubscribe_to_it() {
    let twitch = FakeTwitch::start();
    let alice = reader(&twitch, "alice", "1001", "");
    let daemon = start_daemon(
        &twitch,
        vec![entry(&alice, "eventsub", &["strict", "friendly"])],
    );
    assert!(twitch.wait_eventsub_subscribed("alice", "strict", WAIT));
    assert!(twitch.wait_eventsub_subscribed("alice", "friendly", WAIT));
    let strict = twitch.channel_id("strict");

    assert_eq!(twitch.ban_from_chat("alice", "strict"), 1);
    // Everything sent before the pong has been read and acted on.
    assert!(twitch.sync_eventsub("alice", "after-ban", WAIT));
    assert!(twitch.sync_eventsub("alice", "after-ban-2", WAIT));
    assert_eq!(
        posts_for_channel(&twitch, &strict),
        1,
        "not subscribed again"
    );

    // Nor on the next session, while the other channel is.
    assert_eq!(twitch.eventsub_drop("alice"), 1);
    assert!(twitch.wait_n_eventsub_connections(2, WAIT));
    assert!(twitch.wait_eventsub_subscribed("alice", "friendly", WAIT));
    assert_eq!(
        posts_for_channel(&twitch, &strict),
        1,
        "not on a new session"
    );
    assert_eq!(twitch.say("alice", "friendly", "hi"), 1);
    next_change_of(&twitch, "1001");
    assert!(daemon.shutdown(WAIT));
}

#[test]
fn a_notification_with_null_fields_still_counts_when_the_decision_has_what_it_needs() {
    let twitch = FakeTwitch::start();
    let alice = reader(&twitch, "alice", "1001", "");
    let daemon = start_daemon(&twitch, vec![entry(&alice, "eventsub", &["somechannel"])]);
    assert!(twitch.wait_eventsub_subscribed("alice", "somechannel", WAIT));

    // Neither the channel's login nor the text is needed for an automatic change.
    let nulls = [
        "broadcaster_user_login",
        "broadcaster_user_id",
        "message.text",
    ];
    assert_eq!(
        twitch.say_with_null_fields("alice", "somechannel", "hi", &nulls),
        1
    );
    next_change_of(&twitch, "1001");
    // A command needs its text, not the channel's login.
    twitch.say_with_null_fields(
        "alice",
        "somechannel",
        "ccc hot_pink",
        &["broadcaster_user_login"],
    );
    let put = twitch
        .wait_request(
            |request| is_color_put(request) && request.query_param("color") == Some("hot_pink"),
            WAIT,
        )
        .expect("ccc obeyed");
    assert_eq!(put.query_param("user_id"), Some("1001"));
    assert!(daemon.shutdown(WAIT));
}

#[test]
fn with_default_settings_a_dead_link_is_replaced_within_a_minute_on_both_transports() {
    let twitch = FakeTwitch::start();
    let alice = reader(&twitch, "alice", "1001", "");
    let bob = account(&twitch, "bob", "1002", "", true);
    // No TWITCH_KEEPALIVE_SECS: the defaults.
    let daemon = start_daemon(
        &twitch,
        vec![
            entry(&alice, "eventsub", &["somechannel"]),
            // Another channel: what alice says there reaches her session only, whenever
            // bob's dead connection is gone at the fake.
            entry(&bob, "irc", &["bobchannel"]),
        ],
    );
    assert!(twitch.wait_eventsub_subscribed("alice", "somechannel", WAIT));
    assert!(twitch.wait_joined("bob", "bobchannel", WAIT));
    assert_eq!(twitch.n_eventsub_connections(), 1);
    assert_eq!(twitch.n_connections(), 1);

    // Both links go dead the way a router's reconnect leaves them: nothing arrives any
    // more, not even keepalives or PONGs (Twitch's own IRC PING would come in 5 minutes).
    let died = std::time::Instant::now();
    twitch.set_eventsub_silent("alice", true);
    twitch.set_silent("bob", true);
    let limit = Duration::from_secs(60);
    let left = || limit.saturating_sub(died.elapsed());
    assert!(
        twitch.wait_n_eventsub_connections(2, left()),
        "EventSub replaced within {limit:?}"
    );
    assert!(
        twitch.wait_n_connections(2, left()),
        "IRC replaced within {limit:?}"
    );
    assert!(died.elapsed() < limit, "{:?}", died.elapsed());

    twitch.set_eventsub_silent("alice", false);
    assert!(twitch.wait_eventsub_subscribed("alice", "somechannel", WAIT));
    assert_eq!(twitch.say("alice", "somechannel", "back"), 1);
    next_change_of(&twitch, "1001");
    twitch.set_silent("bob", false);
    assert!(daemon.shutdown(WAIT));
}
