//! Chat connections failing, one fault per test, against the live daemon and the fake
//! Twitch: every kind of loss ends in a reconnect that rejoins and changes colors again.

mod common;

use std::time::{Duration, Instant};

use common::*;
use fake_twitch::{Account, FakeTwitch};
use twitch_colorchanger::daemon::Daemon;

fn start_alice(twitch: &FakeTwitch, extra: &[(&str, &str)]) -> (Account, Daemon) {
    let alice = account(twitch, "alice", "1001", "", true);
    let daemon = start_daemon_with(
        twitch,
        vec![user_json(&alice, true, &["alice", "bob"])],
        extra,
    );
    assert!(twitch.wait_joined("alice", "bob", WAIT));
    (alice, daemon)
}

/// After a reconnect: both channels joined again and own messages change colors.
fn assert_back_in_business(twitch: &FakeTwitch, alice: &Account, n_logins: usize) {
    assert!(
        twitch.wait_n_logins("alice", n_logins, WAIT),
        "logged in again"
    );
    assert!(
        twitch.wait_n_joins("alice", "alice", n_logins, WAIT),
        "rejoined #alice"
    );
    assert!(
        twitch.wait_n_joins("alice", "bob", n_logins, WAIT),
        "rejoined #bob"
    );
    let before = twitch.color_puts().len();
    twitch.send_line("alice", &own_message(alice, "bob", "back?"));
    assert!(twitch.wait_request(is_color_put, WAIT).is_some());
    assert_eq!(twitch.color_puts().len(), before + 1);
}

#[test]
fn a_tcp_drop_without_close_frame_reconnects() {
    let twitch = FakeTwitch::start();
    let (alice, daemon) = start_alice(&twitch, &[]);
    assert_eq!(twitch.drop_connections("alice"), 1);
    assert_back_in_business(&twitch, &alice, 2);
    assert!(daemon.shutdown(WAIT));
}

#[test]
fn a_close_frame_reconnects() {
    let twitch = FakeTwitch::start();
    let (alice, daemon) = start_alice(&twitch, &[]);
    assert_eq!(twitch.close_connections("alice"), 1);
    assert_back_in_business(&twitch, &alice, 2);
    assert!(daemon.shutdown(WAIT));
}

#[test]
fn reconnect_from_the_server_reconnects_promptly() {
    let twitch = FakeTwitch::start();
    let (alice, daemon) = start_alice(&twitch, &[]);
    let asked = Instant::now();
    twitch.send_line("alice", ":tmi.twitch.tv RECONNECT");
    assert!(twitch.wait_n_logins("alice", 2, WAIT));
    eprintln!("new login {:?} after RECONNECT", asked.elapsed());
    assert_back_in_business(&twitch, &alice, 2);
    assert!(daemon.shutdown(WAIT));
}

#[test]
fn refused_connects_are_retried_at_a_bounded_rate_then_recover() {
    let twitch = FakeTwitch::start();
    twitch.refuse_connections(2);
    let started = Instant::now();
    let (alice, daemon) = start_alice(&twitch, &[]);
    let elapsed = started.elapsed();
    // Two refusals, then success: three attempts at least a second apart.
    assert_eq!(
        twitch.n_connections(),
        3,
        "one attempt per refusal, no more"
    );
    assert!(
        elapsed >= Duration::from_secs(2),
        "attempts were spaced: {elapsed:?}"
    );
    assert_back_in_business(&twitch, &alice, 1);
    assert!(daemon.shutdown(WAIT));
}

#[test]
fn a_silent_connection_is_detected_by_ping_and_replaced() {
    let twitch = FakeTwitch::start();
    let (alice, daemon) = start_alice(&twitch, &[("TWITCH_KEEPALIVE_SECS", "1")]);
    twitch.set_silent("alice", true);
    let ping = twitch
        .wait_line_from("alice", |line| line.starts_with("PING"), WAIT)
        .expect("a PING after a second of silence");
    assert!(ping.starts_with("PING "), "{ping}");
    // The server stays silent for this connection; the next one answers again.
    twitch.set_silent("alice", false);
    assert_back_in_business(&twitch, &alice, 2);
    assert!(daemon.shutdown(WAIT));
}

#[test]
fn a_busy_connection_never_sends_keepalive_pings() {
    let twitch = FakeTwitch::start();
    let (_alice, daemon) = start_alice(&twitch, &[("TWITCH_KEEPALIVE_SECS", "2")]);
    // Server traffic keeps flowing for two and a half keepalive periods, so the allowance
    // never runs out and the daemon has no reason to check the connection.
    let until = Instant::now() + Duration::from_secs(5);
    let mut n = 0;
    while Instant::now() < until {
        n += 1;
        sync_chat(&twitch, "alice", &format!("traffic-{n}"));
    }
    assert!(
        !twitch
            .lines_from("alice")
            .iter()
            .any(|l| l.starts_with("PING")),
        "no keepalive PING while traffic flows"
    );
    assert_eq!(twitch.n_logins("alice"), 1);
    assert!(daemon.shutdown(WAIT));
}

#[test]
fn a_burst_of_ten_messages_coalesces_into_at_most_three_changes() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "#123456", true);
    let daemon = start_daemon(&twitch, vec![user_json(&alice, true, &[])]);
    assert!(twitch.wait_joined("alice", "alice", WAIT));
    send_burst_during_a_slow_change(&twitch, |text| {
        twitch.send_line("alice", &own_message(&alice, "alice", text));
    });
    sync_chat(&twitch, "alice", "after-burst");
    assert!(daemon.shutdown(WAIT));
    assert_burst_coalesced(&twitch, "#123456");
}

/// A handshake that never completes (the server accepts TCP and then says nothing) holds
/// one dialer, not the others: the other user logs in and changes colors while it hangs
/// (the hanging one gives up only after the 10 s connect timeout); and a shutdown does not
/// wait for it, since stopping a user shuts its half-open socket.
#[test]
fn a_hanging_handshake_holds_up_neither_other_users_nor_shutdown() {
    let twitch = FakeTwitch::start();
    twitch.stall_handshakes(1);
    let alice = account(&twitch, "alice", "1001", "", true);
    let bob = account(&twitch, "bob", "1002", "", true);
    let daemon = start_daemon(
        &twitch,
        vec![
            user_json(&alice, true, &["alice"]),
            user_json(&bob, true, &["bob"]),
        ],
    );
    assert!(twitch.wait_n_stalled_open(1, WAIT), "one handshake hangs");
    assert!(
        twitch.wait_n_users_logged_in(1, WAIT),
        "the other user logs in"
    );
    assert_eq!(twitch.n_stalled_open(), 1, "while the first still hangs");
    let (other, channel) = if twitch.n_logins("alice") > 0 {
        (&alice, "alice")
    } else {
        (&bob, "bob")
    };
    assert!(twitch.wait_joined(&other.login, channel, WAIT));
    twitch.send_line(&other.login, &own_message(other, channel, "hi"));
    assert!(twitch.wait_request(is_color_put, WAIT).is_some());
    assert_eq!(
        twitch.n_stalled_open(),
        1,
        "the change did not wait for it either"
    );

    assert!(daemon.shutdown(WAIT), "every thread ended in time");
    assert!(
        twitch.wait_n_stalled_open(0, WAIT),
        "the hanging connection was closed"
    );
}
