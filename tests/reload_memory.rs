//! Issue 12, item 4: adding and removing a user by editing the config, again and again,
//! must not leave the old threads' stacks behind. Alone in its own test binary, so that no
//! other test allocates in this process while it measures.

mod common;

use std::time::Duration;

use common::*;
use fake_twitch::FakeTwitch;
use serde_json::json;
use twitch_colorchanger::config::writer::ConfigWriter;
use twitch_colorchanger::daemon::Daemon;

/// `VmRSS` in KiB and the number of memory mappings of this process.
fn memory() -> (u64, usize) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let rss_kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status");
    let n_mappings = std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count();
    (rss_kib, n_mappings)
}

#[test]
fn a_hundred_add_and_remove_edits_leave_no_threads_behind() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "", true);
    let bob = account(&twitch, "bob", "1002", "", true);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("twitch_colorchanger.conf");
    let alone = json!({"users": [user_json(&alice, true, &[])]});
    let with_bob = json!({"users": [user_json(&alice, true, &[]), user_json(&bob, true, &[])]});
    // The daemon takes the text it started with for its own; the edits are written compact.
    std::fs::write(&path, serde_json::to_string_pretty(&alone).unwrap()).unwrap();
    let write = |config: &serde_json::Value| {
        std::fs::write(&path, config.to_string()).unwrap();
    };
    let (mut loaded, document) = twitch_colorchanger::config::file::load(&path).unwrap();
    let (writer, _writer_thread) =
        ConfigWriter::spawn(path.clone(), document, &mut loaded.users).unwrap();
    let mut settings = settings_for(&twitch);
    settings.config_path = path.clone();
    // Edits are noticed within 20 ms, so that a hundred of them take seconds.
    settings.reload_interval = Duration::from_millis(20);
    let daemon = Daemon::start(&loaded.users, &settings, Some(writer)).unwrap();
    let stop = daemon.stop_signal();
    let main_loop = std::thread::spawn(move || daemon.run_until_stopped(WAIT));
    assert!(twitch.wait_joined("alice", "alice", WAIT));

    let mut n_cycles = 0;
    let mut cycle = || {
        n_cycles += 1;
        write(&with_bob);
        assert!(
            twitch.wait_n_logins("bob", n_cycles, WAIT),
            "bob added in cycle {n_cycles}"
        );
        write(&alone);
        assert!(twitch.wait_live_connections("bob", 0, WAIT), "bob removed");
        // The fake's own records would grow a few KiB per cycle in this process.
        twitch.forget_history();
    };
    // Warm up: the allocator's arenas and the thread-stack cache reach their steady size
    // (measured: after 10 cycles they still grew by up to 1 MiB, after 50 no more).
    for _ in 0..50 {
        cycle();
    }
    let (rss_before, mappings_before) = memory();
    for _ in 0..100 {
        cycle();
    }
    let (rss_after, mappings_after) = memory();
    eprintln!(
        "after 100 add/remove edits: VmRSS {rss_before} → {rss_after} KiB, \
         mappings {mappings_before} → {mappings_after}"
    );
    // Each leaked thread kept two mappings (stack and guard page); the last removed user's
    // two threads may still be ending.
    assert!(
        mappings_after <= mappings_before + 8,
        "mappings grew from {mappings_before} to {mappings_after}"
    );
    assert!(
        rss_after <= rss_before + 1024,
        "VmRSS grew from {rss_before} to {rss_after} KiB"
    );
    stop.stop();
    assert!(main_loop.join().unwrap(), "every thread ended");
}
