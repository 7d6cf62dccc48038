//! End-to-end tests of the daemon core, run in-process against the fake Twitch: own
//! messages change colors through Helix, nothing else does, for several users at once.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::*;
use fake_twitch::{FakeTwitch, HttpRequest, NAMED_COLORS};

fn put_color(request: &HttpRequest) -> String {
    request.query_param("color").unwrap_or_default().to_string()
}

#[test]
fn an_own_message_sends_exactly_one_color_change_with_the_right_headers() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "#FF0000", true);
    let daemon = start_daemon(&twitch, vec![user_json(&alice, true, &[])]);
    assert!(
        twitch.wait_joined("alice", "alice", WAIT),
        "alice joined her own channel"
    );

    twitch.send_line("alice", &own_message(&alice, "alice", "hello chat"));
    let put = twitch
        .wait_request(is_color_put, WAIT)
        .expect("a color PUT");
    assert_eq!(put.header("authorization"), Some("Bearer at-alice"));
    assert_eq!(put.header("client-id"), Some("cid-alice"));
    assert_eq!(put.query_param("user_id"), Some("1001"));
    let color = put_color(&put);
    assert!(
        is_hex_color(&color),
        "hex color for a Turbo/Prime user: {color}"
    );
    assert_ne!(color, "#FF0000", "never the color the user had at login");
    assert!(
        put.raw_query.contains("color=%23"),
        "the # is percent-encoded: {}",
        put.raw_query
    );

    // Everything the chat thread was sent has been handled. Shutting down lets a change
    // under way finish but starts none (issue 19), so only a second PUT already started by
    // now would be recorded.
    sync_chat(&twitch, "alice", "after-hello");
    assert!(daemon.shutdown(WAIT));
    assert_eq!(
        twitch.color_puts().len(),
        1,
        "exactly one PUT per own message"
    );
}

#[test]
fn messages_of_other_people_never_change_the_color_even_with_our_display_name() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "", true);
    let daemon = start_daemon(&twitch, vec![user_json(&alice, true, &["alice", "bob"])]);
    assert!(twitch.wait_joined("alice", "bob", WAIT));

    let impostors = [
        FakeTwitch::privmsg_line("alice_", "2002", "alice", "bob", "I am alice"),
        FakeTwitch::privmsg_line("bob", "2003", "Alice", "bob", "me too"),
        FakeTwitch::privmsg_line("alice2", "2004", "alice ", "alice", "and me"),
        FakeTwitch::privmsg_line("nobody", "10011", "alice", "alice", "close id"),
    ];
    for line in &impostors {
        twitch.send_line("alice", line);
    }
    sync_chat(&twitch, "alice", "after-impostors");
    assert!(daemon.shutdown(WAIT));
    assert!(twitch.color_puts().is_empty(), "{:?}", twitch.color_puts());
}

#[test]
fn own_messages_count_in_every_joined_channel_and_in_multi_line_frames() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "", true);
    let daemon = start_daemon(
        &twitch,
        vec![user_json(&alice, true, &["#Bob", "carol", "BOB"])],
    );
    assert!(twitch.wait_joined("alice", "bob", WAIT));
    assert!(twitch.wait_joined("alice", "carol", WAIT));

    // One frame: a PING, someone else's message, and our message in another channel.
    let frame = format!(
        "PING :in-frame\r\n{}\r\n{}\r\n",
        FakeTwitch::privmsg_line("bob", "2002", "Bob", "bob", "hi"),
        own_message(&alice, "carol", "hi from carol's chat"),
    );
    twitch.send_frame("alice", &frame);
    assert!(twitch
        .wait_line_from("alice", |line| line == "PONG :in-frame", WAIT)
        .is_some());
    let put = twitch.wait_request(is_color_put, WAIT).expect("PUT");
    assert_eq!(put.query_param("user_id"), Some("1001"));

    // Channels were normalised: #Bob and BOB are one channel, joined once.
    let joins: Vec<String> = twitch
        .join_times("alice")
        .into_iter()
        .map(|(_, channel)| channel)
        .collect();
    assert_eq!(
        joins.iter().filter(|c| c.as_str() == "bob").count(),
        1,
        "{joins:?}"
    );
    assert!(!joins.contains(&"alice".to_string()), "{joins:?}");

    twitch.send_line("alice", &own_message(&alice, "bob", "and in bob's"));
    let second = twitch.wait_request(is_color_put, WAIT).expect("second PUT");
    assert_ne!(
        put_color(&second),
        put_color(&put),
        "never the same color twice in a row"
    );
    assert!(daemon.shutdown(WAIT));
}

#[test]
fn three_users_in_one_process_each_get_their_own_changes() {
    let twitch = FakeTwitch::start();
    let accounts = [
        account(&twitch, "alice", "1001", "", true),
        account(&twitch, "bob", "1002", "", true),
        account(&twitch, "carol", "1003", "", false),
    ];
    let daemon = start_daemon(
        &twitch,
        accounts
            .iter()
            .map(|a| user_json(a, a.turbo, &[]))
            .collect(),
    );
    for account in &accounts {
        assert!(twitch.wait_joined(&account.login, &account.login, WAIT));
    }
    for account in &accounts {
        twitch.send_line(&account.login, &own_message(account, &account.login, "hi"));
    }
    let mut seen = HashSet::new();
    for _ in 0..accounts.len() {
        let put = twitch.wait_request(is_color_put, WAIT).expect("PUT");
        let user_id = put.query_param("user_id").unwrap().to_string();
        let account = accounts.iter().find(|a| a.user_id == user_id).unwrap();
        assert_eq!(
            put.header("authorization"),
            Some(format!("Bearer {}", account.access_token).as_str())
        );
        assert_eq!(put.header("client-id"), Some(account.client_id.as_str()));
        seen.insert(user_id);
    }
    assert_eq!(seen.len(), 3);
    assert!(daemon.shutdown(WAIT));
    assert_eq!(twitch.color_puts().len(), 3);
}

#[test]
fn users_without_turbo_or_prime_only_get_named_colors_never_repeating() {
    let twitch = FakeTwitch::start();
    // #FF0000 is what Twitch reports for the named color red.
    let carol = account(&twitch, "carol", "1003", "#FF0000", false);
    let daemon = start_daemon(&twitch, vec![user_json(&carol, false, &[])]);
    assert!(twitch.wait_joined("carol", "carol", WAIT));
    let mut previous = "red".to_string();
    for n in 0..12 {
        twitch.send_line(
            "carol",
            &own_message(&carol, "carol", &format!("message {n}")),
        );
        let put = twitch.wait_request(is_color_put, WAIT).expect("PUT");
        let color = put_color(&put);
        assert!(
            NAMED_COLORS.contains(&color.as_str()),
            "named color: {color}"
        );
        assert_ne!(color, previous, "message {n} repeated the color");
        previous = color;
    }
    assert!(daemon.shutdown(WAIT));
}

#[test]
fn odd_and_hostile_lines_do_not_stop_the_chat_thread() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "", true);
    let daemon = start_daemon(&twitch, vec![user_json(&alice, true, &[])]);
    assert!(twitch.wait_joined("alice", "alice", WAIT));

    let real_lines = include_str!("data/twitch-real-lines.txt");
    for line in real_lines.lines().filter(|line| !line.starts_with("# ")) {
        twitch.send_line("alice", line);
    }
    let hostile = [
        "",
        "@",
        ":",
        "@;;; :",
        "@user-id=1001 :x PRIVMSG",
        "@user-id=1001 :x PRIVMSG #",
        "@user-id=1001;display-name=\\ :x PRIVMSG #alice",
        "@user-id=1001\u{1}ACTION :x PRIVMSG #alice :\u{1}ACTION",
        "PING",
        "GLOBALUSERSTATE",
        ":tmi.twitch.tv NOTICE",
        "\u{0}\u{1}\u{2}",
        "💥 💥 💥 :💥 PRIVMSG #💥 :💥",
    ];
    for line in hostile {
        twitch.send_line("alice", line);
    }
    // Still logged in as the same connection and still changing colors.
    twitch.send_line("alice", &own_message(&alice, "alice", "still alive?"));
    assert!(twitch.wait_request(is_color_put, WAIT).is_some());
    assert_eq!(twitch.n_logins("alice"), 1, "no reconnect was needed");
    assert!(daemon.shutdown(WAIT));
}

#[test]
fn shutdown_wakes_every_thread_promptly() {
    let twitch = FakeTwitch::start();
    let accounts: Vec<_> = (0..20)
        .map(|n| {
            account(
                &twitch,
                &format!("user{n}"),
                &format!("{}", 5000 + n),
                "",
                true,
            )
        })
        .collect();
    let daemon = start_daemon(
        &twitch,
        accounts.iter().map(|a| user_json(a, true, &[])).collect(),
    );
    for account in &accounts {
        assert!(twitch.wait_joined(&account.login, &account.login, WAIT));
    }
    let started = Instant::now();
    let all_ended = daemon.shutdown(Duration::from_secs(5));
    eprintln!(
        "shutdown of 20 connected users took {:?}",
        started.elapsed()
    );
    assert!(all_ended, "every chat thread and worker ended");
}

#[test]
fn joins_beyond_twitchs_limit_wait_for_the_window() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "", true);
    let channels: Vec<String> = (0..25).map(|n| format!("channel{n}")).collect();
    let channel_refs: Vec<&str> = channels.iter().map(String::as_str).collect();
    let daemon = start_daemon(&twitch, vec![user_json(&alice, true, &channel_refs)]);
    for channel in &channels {
        assert!(
            twitch.wait_joined("alice", channel, std::time::Duration::from_secs(30)),
            "{channel} joined in the end"
        );
    }
    let joins = twitch.join_times("alice");
    assert_eq!(joins.len(), 25, "each channel joined once");
    // Twitch allows 20 JOINs per 10 s. The fake timestamps arrivals, not sends, so a
    // second of delivery skew is allowed for.
    let spacing = joins[20].0.duration_since(joins[0].0);
    assert!(
        spacing >= std::time::Duration::from_secs(9),
        "the 21st JOIN came {spacing:?} after the first"
    );
    assert!(daemon.shutdown(WAIT));
}
