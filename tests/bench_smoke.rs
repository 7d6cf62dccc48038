//! Keeps the benchmark from rotting: runs examples/bench tiny (3 users, 20 messages, a 1 s idle
//! window, plain and TLS) against the debug binary and checks that every step completes and
//! every message got its color change. Timings are printed, never asserted. Does I/O (loopback,
//! a child process, /proc).

// The benchmark's modules are compiled into this test as they are into the example.
#[allow(dead_code)]
#[path = "../examples/bench/harness.rs"]
mod harness;
#[allow(dead_code)]
#[path = "../examples/bench/measure.rs"]
mod measure;

use std::path::PathBuf;
use std::time::Duration;

use measure::{Chat, Options, Transport};

#[test]
fn a_tiny_benchmark_completes_over_plain_and_tls() {
    let options = Options {
        user_counts: vec![3],
        n_messages: 20,
        transports: vec![Transport::Plain, Transport::Tls],
        idle: Duration::from_secs(1),
        n_after_idle: 2,
        binary: Some(PathBuf::from(env!("CARGO_BIN_EXE_twitch-colorchanger"))),
        ..Options::default()
    };
    let reports = harness::run_all(&options).expect("the benchmark runs");
    assert_eq!(reports.len(), 2);
    for report in &reports {
        let transport = report.transport;
        assert_eq!(report.n_users, 3, "{transport:?}");
        assert_eq!(report.n_sent, 20, "{transport:?}");
        assert_eq!(
            report.latencies.len(),
            20,
            "{transport:?}: every message got its PUT"
        );
        assert_eq!(report.after_idle.len(), 2, "{transport:?}");
        assert!(report.after_join.vm_rss_kib > 0, "{transport:?}");
        assert!(report.after_join.threads >= 4, "{transport:?}");
        assert_eq!(
            report.exit_code,
            Some(0),
            "{transport:?}: clean exit on SIGTERM"
        );
        assert_eq!(report.n_log_errors, 0, "{transport:?}");
    }
}

#[test]
fn a_tiny_benchmark_completes_over_eventsub() {
    let options = Options {
        user_counts: vec![3],
        n_messages: 20,
        transports: vec![Transport::Tls],
        chats: vec![Chat::EventSub],
        idle: Duration::from_secs(1),
        n_after_idle: 2,
        binary: Some(PathBuf::from(env!("CARGO_BIN_EXE_twitch-colorchanger"))),
        ..Options::default()
    };
    let reports = harness::run_all(&options).expect("the benchmark runs");
    assert_eq!(reports.len(), 1);
    let report = &reports[0];
    assert_eq!(report.chat, Chat::EventSub);
    assert_eq!(report.latencies.len(), 20, "every message got its PUT");
    assert_eq!(report.after_idle.len(), 2);
    assert_eq!(report.exit_code, Some(0), "clean exit on SIGTERM");
    assert_eq!(report.n_log_errors, 0);
}
