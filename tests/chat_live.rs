//! Chat behaviour that must hold after days of running, against the live daemon and the fake
//! Twitch: a timer switched on by a config edit fires without a reconnect, a shared chat
//! message counts once, a suspend is noticed at once, and the first drop after an outage is
//! retried at once.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;
use fake_twitch::FakeTwitch;
use serde_json::json;
use twitch_colorchanger::base::backoff::BackoffPolicy;
use twitch_colorchanger::daemon::settings::Settings;
use twitch_colorchanger::daemon::Daemon;

/// Starts the daemon for `users` with `settings` as given.
fn start_with(users: Vec<serde_json::Value>, settings: &Settings) -> Daemon {
    Daemon::start(&users_from_json(users), settings, None).expect("daemon starts")
}

#[test]
fn a_timer_switched_on_by_an_edit_fires_without_a_reconnect() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "", true);
    let dir = tempfile::tempdir().unwrap();
    let config = json!({"users": [user_json(&alice, true, &["alice"])]});
    let running =
        start_daemon_on_file(&twitch, dir.path(), &config, &[("TWITCH_RELOAD_SECS", "1")]).run();
    assert!(twitch.wait_joined("alice", "alice", WAIT));

    // The timer was off (0) at login; the edit turns it on with the shortest interval.
    let mut entry = user_json(&alice, true, &["alice"]);
    entry["change_every_seconds"] = json!(10);
    running.edit(&json!({"users": [entry]}));
    let put = twitch
        .wait_request(is_color_put, Duration::from_secs(30))
        .expect("a timer change after the edit, with no message");
    assert!(is_hex_color(put.query_param("color").unwrap()));
    assert_eq!(twitch.n_logins("alice"), 1, "no reconnect for a timer edit");
    running.stop();
}

/// An own message of alice as Twitch delivers it in a shared chat session: each joined
/// channel of the session gets a copy with its own `id` and the original's `source-id`.
fn shared_copy(channel: &str, id: &str, source_id: &str) -> String {
    format!(
        "@badge-info=;badges=;color=#0000FF;display-name=alice;emotes=;flags=;id={id};mod=0;\
         room-id=2;source-badges=;source-id={source_id};source-room-id=1;subscriber=0;\
         tmi-sent-ts=1700000000000;turbo=0;user-id=1001;user-type= \
         :alice!alice@alice.tmi.twitch.tv PRIVMSG #{channel} :one message"
    )
}

#[test]
fn a_message_echoed_into_two_shared_channels_changes_the_color_once() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "", true);
    let daemon = start_daemon(&twitch, vec![user_json(&alice, true, &["alice", "bob"])]);
    assert!(twitch.wait_joined("alice", "bob", WAIT));

    twitch.send_line("alice", &shared_copy("alice", "m-1", "m-1"));
    assert_eq!(
        twitch.wait_color_puts(1, WAIT).len(),
        1,
        "the message changes"
    );
    twitch.send_line("alice", &shared_copy("bob", "m-1-in-bob", "m-1"));
    sync_chat(&twitch, "alice", "after-copy");
    // A command after the copy: its PUT comes after any change the copy could have asked for.
    twitch.send_line("alice", &own_message(&alice, "alice", "ccc red"));
    let puts = twitch.wait_color_puts(2, WAIT);
    assert_eq!(puts.len(), 2, "the copy and the command: {puts:?}");
    assert_eq!(puts[1].query_param("color"), Some("red"), "{puts:?}");
    assert!(daemon.shutdown(WAIT));
    assert_eq!(twitch.color_puts().len(), 2, "no change for the copy");
}

#[test]
fn after_the_machine_slept_chat_reconnects_at_once() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "", true);
    let mut settings = settings_with(&twitch, &[("TWITCH_RELOAD_SECS", "1")]);
    let (clock, ahead_secs) = movable_clock();
    settings.wall_clock = clock;
    let daemon = start_with(vec![user_json(&alice, true, &["alice"])], &settings);
    assert!(twitch.wait_joined("alice", "alice", WAIT));
    sync_chat(&twitch, "alice", "before-sleep");
    assert_eq!(twitch.n_logins("alice"), 1);

    // Ten minutes pass on the wall clock and none on the monotonic one. The keepalive
    // (six minutes by default) would not look at the link for minutes yet.
    ahead_secs.store(600, Ordering::SeqCst);
    assert!(
        twitch.wait_n_logins("alice", 2, WAIT),
        "chat reconnected after the sleep"
    );
    assert!(twitch.wait_n_joins("alice", "alice", 2, WAIT));
    twitch.send_line("alice", &own_message(&alice, "alice", "awake"));
    assert!(twitch.wait_request(is_color_put, WAIT).is_some());
    assert!(daemon.shutdown(WAIT));
}

#[test]
fn the_first_drop_after_an_outage_is_retried_at_once() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "", true);
    let mut settings = settings_for(&twitch);
    // The default policy scaled down 50 times, so that an outage long enough to raise the
    // delay to seconds takes a second of test time. A connection is stable after 60 s as
    // by default: the drop below comes well before.
    settings.chat_backoff = BackoffPolicy {
        base: Duration::from_millis(20),
        cap: Duration::from_secs(120),
        min_gap: Duration::from_millis(20),
        stable_after: Duration::from_secs(60),
        refusal_cap: Duration::from_secs(12),
    };
    // An outage: eight refused attempts, whose delays grow to a ceiling of 2.56 s.
    twitch.refuse_connections(8);
    let daemon = start_with(vec![user_json(&alice, true, &["alice"])], &settings);
    assert!(twitch.wait_joined("alice", "alice", Duration::from_secs(30)));
    assert_eq!(twitch.n_connections(), 9);

    // Recovered, then dropped again soon after: the retry does not inherit the outage's
    // delay (it would be up to 5.1 s now), it comes within the first delay (20 ms).
    let dropped_at = Instant::now();
    assert_eq!(twitch.drop_connections("alice"), 1);
    assert!(twitch.wait_n_connections(10, WAIT));
    let retry_after = dropped_at.elapsed();
    assert!(
        retry_after < Duration::from_secs(1),
        "retried after {retry_after:?}"
    );
    assert!(twitch.wait_n_joins("alice", "alice", 2, WAIT));
    assert!(daemon.shutdown(WAIT));
}

/// Refresh calls the fake's OAuth server received so far.
fn n_refreshes(twitch: &FakeTwitch) -> usize {
    twitch
        .requests()
        .iter()
        .filter(|request| {
            request.method == "POST"
                && request.path == "/oauth2/token"
                && request.form_param("grant_type") == Some("refresh_token")
        })
        .count()
}

#[test]
fn chat_refusing_a_valid_token_costs_one_refresh_and_backs_off() {
    for notice in ["Login unsuccessful", "Login authentication failed"] {
        let twitch = FakeTwitch::start();
        let alice = account(&twitch, "alice", "1001", "", true);
        // The token validates, but chat refuses it (a Twitch-side incident, an account
        // state): refreshing cannot help.
        twitch.refuse_chat_logins("alice", Some(notice));
        let mut settings = settings_for(&twitch);
        // The default reconnect timing scaled down 50 times: the 10-minute ceiling of
        // refusals becomes 12 s, and a minute of refusals takes 1.2 s.
        settings.chat_backoff = BackoffPolicy {
            base: Duration::from_millis(20),
            cap: Duration::from_millis(2_400),
            min_gap: Duration::from_millis(20),
            stable_after: Duration::from_millis(1_200),
            refusal_cap: Duration::from_secs(12),
        };
        let started = Instant::now();
        let daemon = start_with(vec![user_json(&alice, true, &["alice"])], &settings);
        // Eight refusals: the first is reported and answered by a new token, the other
        // seven back off in the upper half of a ceiling doubling from 20 ms, so the eighth
        // comes 0.63 to 1.26 s after the second: about a scaled minute. Reconnecting at
        // every refusal, and refreshing for each, as before, would have cost eight.
        assert!(
            twitch.wait_n_refused_logins("alice", 8, Duration::from_secs(30)),
            "{notice}: refusals went on"
        );
        let elapsed = started.elapsed();
        assert!(
            elapsed >= Duration::from_millis(630),
            "{notice}: eight refusals came within {elapsed:?}: no backoff"
        );
        let refreshes = n_refreshes(&twitch);
        assert!(
            refreshes <= 3,
            "{notice}: {refreshes} refreshes for one refusal episode"
        );
        // Chat lets the user in again: the next attempt succeeds and joins.
        twitch.refuse_chat_logins("alice", None);
        assert!(
            twitch.wait_joined("alice", "alice", Duration::from_secs(30)),
            "{notice}: recovered"
        );
        assert!(daemon.shutdown(WAIT));
    }
}
