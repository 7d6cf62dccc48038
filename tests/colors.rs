//! Colors people want and control from chat, against the live daemon and the fake Twitch:
//! Turbo/Prime detection, `ccd`/`cce`/`ccc`, rainbow and palette modes, the timer.

mod common;

use common::*;
use fake_twitch::{FakeTwitch, NAMED_COLORS};
use serde_json::json;
use twitch_colorchanger::color::{parse_rgb, rgb_to_hsl};

fn put_colors(twitch: &FakeTwitch) -> Vec<String> {
    twitch
        .color_puts()
        .iter()
        .map(|put| put.query_param("color").unwrap_or_default().to_string())
        .collect()
}

fn next_put_color(twitch: &FakeTwitch) -> String {
    let put = twitch
        .wait_request(is_color_put, WAIT)
        .expect("a color PUT");
    put.query_param("color").unwrap_or_default().to_string()
}

#[test]
fn hex_refused_twice_switches_to_named_colors_and_saves_it() {
    let twitch = FakeTwitch::start();
    // The config claims Turbo/Prime; the account has neither, so Twitch refuses hex.
    let alice = account(&twitch, "alice", "1001", "", false);
    let dir = tempfile::tempdir().unwrap();
    let config = json!({"users": [user_json(&alice, true, &[])]});
    let running = start_daemon_on_file(&twitch, dir.path(), &config, &[]);
    assert!(twitch.wait_joined("alice", "alice", WAIT));

    for n in 0..2 {
        twitch.send_line("alice", &own_message(&alice, "alice", &format!("msg {n}")));
        let refused = next_put_color(&twitch);
        assert!(is_hex_color(&refused), "tries hex first: {refused}");
        let fallback = next_put_color(&twitch);
        assert!(
            NAMED_COLORS.contains(&fallback.as_str()),
            "the same message still changes, to a named color: {fallback}"
        );
    }
    let saved = running.saved_config();
    assert_eq!(user_entry(&saved, "alice")["is_prime_or_turbo"], false);

    twitch.send_line("alice", &own_message(&alice, "alice", "msg 3"));
    let third = next_put_color(&twitch);
    assert!(
        NAMED_COLORS.contains(&third.as_str()),
        "named from now on: {third}"
    );
    sync_chat(&twitch, "alice", "done");
    assert!(running.daemon.shutdown(WAIT));
    assert_eq!(twitch.color_puts().len(), 5);
}

#[test]
fn ccd_stops_automatic_changes_and_cce_resumes_them_both_saved() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "", true);
    let dir = tempfile::tempdir().unwrap();
    let config = json!({"users": [user_json(&alice, true, &[])]});
    let running = start_daemon_on_file(&twitch, dir.path(), &config, &[]);
    assert!(twitch.wait_joined("alice", "alice", WAIT));

    twitch.send_line("alice", &own_message(&alice, "alice", "ccd"));
    for n in 0..3 {
        twitch.send_line(
            "alice",
            &own_message(&alice, "alice", &format!("quiet {n}")),
        );
    }
    sync_chat(&twitch, "alice", "after-ccd");
    assert_eq!(
        user_entry(&running.saved_config(), "alice")["enabled"],
        false
    );
    assert!(twitch.color_puts().is_empty(), "no changes while disabled");

    // ccc works even while disabled.
    twitch.send_line("alice", &own_message(&alice, "alice", "ccc blue"));
    assert_eq!(next_put_color(&twitch), "blue");

    twitch.send_line("alice", &own_message(&alice, "alice", "CCE"));
    sync_chat(&twitch, "alice", "after-cce");
    assert_eq!(
        user_entry(&running.saved_config(), "alice")["enabled"],
        true
    );
    twitch.send_line("alice", &own_message(&alice, "alice", "back"));
    assert!(is_hex_color(&next_put_color(&twitch)));
    sync_chat(&twitch, "alice", "done");
    assert!(running.daemon.shutdown(WAIT));
    assert_eq!(
        twitch.color_puts().len(),
        2,
        "commands never also trigger a change"
    );
}

#[test]
fn ccc_sets_exactly_the_color_asked_for() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "", true);
    let daemon = start_daemon(&twitch, vec![user_json(&alice, true, &[])]);
    assert!(twitch.wait_joined("alice", "alice", WAIT));
    let cases = [
        ("ccc red", "red"),
        ("ccc Sea_Green", "sea_green"),
        ("ccc #a1b2c3", "#A1B2C3"),
        ("ccc ABC", "#AABBCC"),
        ("  CCC   hot_pink ", "hot_pink"),
    ];
    for (command, expected) in cases {
        twitch.send_line("alice", &own_message(&alice, "alice", command));
        let put = twitch.wait_request(is_color_put, WAIT).expect("PUT");
        assert_eq!(put.query_param("color"), Some(expected), "{command}");
        if expected.starts_with('#') {
            assert!(put.raw_query.contains("color=%23"), "{}", put.raw_query);
        }
    }
    sync_chat(&twitch, "alice", "done");
    assert!(daemon.shutdown(WAIT));
    assert_eq!(twitch.color_puts().len(), cases.len());
}

#[test]
fn ccc_hex_from_a_user_without_turbo_and_ccc_nonsense_change_nothing() {
    let twitch = FakeTwitch::start();
    let carol = account(&twitch, "carol", "1003", "", false);
    let daemon = start_daemon(&twitch, vec![user_json(&carol, false, &[])]);
    assert!(twitch.wait_joined("carol", "carol", WAIT));
    for command in ["ccc #abcdef", "ccc ABC", "ccc nonsense", "ccc"] {
        twitch.send_line("carol", &own_message(&carol, "carol", command));
    }
    sync_chat(&twitch, "carol", "done");
    assert!(daemon.shutdown(WAIT));
    assert!(twitch.color_puts().is_empty(), "{:?}", put_colors(&twitch));
}

#[test]
fn rainbow_mode_steps_the_hue_from_the_current_color() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "#FF0000", true);
    let mut entry = user_json(&alice, true, &[]);
    entry["color_mode"] = json!("rainbow");
    entry["rainbow_step"] = json!(40);
    let daemon = start_daemon(&twitch, vec![entry]);
    assert!(twitch.wait_joined("alice", "alice", WAIT));
    let mut hues = Vec::new();
    for n in 0..4 {
        twitch.send_line("alice", &own_message(&alice, "alice", &format!("msg {n}")));
        let color = next_put_color(&twitch);
        let (hue, _, _) = rgb_to_hsl(parse_rgb(&color).expect("hex"));
        hues.push(hue);
    }
    assert!(daemon.shutdown(WAIT));
    for (n, hue) in hues.iter().enumerate() {
        let expected = 40.0 * (n as f64 + 1.0);
        assert!(
            (hue - expected).abs() < 2.0,
            "step {n}: hue {hue}, expected {expected}: {hues:?}"
        );
    }
}

#[test]
fn palette_mode_cycles_through_the_list_in_order() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "", true);
    let mut entry = user_json(&alice, true, &[]);
    entry["color_mode"] = json!("palette");
    entry["palette"] = json!(["Red", "#00ff00", "dodger_blue"]);
    let daemon = start_daemon(&twitch, vec![entry]);
    assert!(twitch.wait_joined("alice", "alice", WAIT));
    let mut colors = Vec::new();
    for n in 0..5 {
        twitch.send_line("alice", &own_message(&alice, "alice", &format!("msg {n}")));
        colors.push(next_put_color(&twitch));
    }
    assert!(daemon.shutdown(WAIT));
    assert_eq!(colors, ["red", "#00FF00", "dodger_blue", "red", "#00FF00"]);
}

#[test]
fn the_timer_changes_the_color_without_any_message() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "", true);
    let mut entry = user_json(&alice, true, &[]);
    entry["change_every_seconds"] = json!(10);
    let daemon = start_daemon(&twitch, vec![entry]);
    assert!(twitch.wait_joined("alice", "alice", WAIT));
    let put = twitch
        .wait_request(is_color_put, std::time::Duration::from_secs(30))
        .expect("a timer change");
    assert!(is_hex_color(put.query_param("color").unwrap()));
    assert!(daemon.shutdown(WAIT));
}
