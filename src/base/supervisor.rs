//! Restarts a thread's work after a panic, with backoff, so that one user's failure never
//! takes the others down; `spawn_supervised` starts a named thread doing so. Waits on the
//! stop signal; no I/O of its own.

use std::panic::{self, AssertUnwindSafe};
use std::thread::{self, JoinHandle, ThreadId};
use std::time::Instant;

use crossbeam_channel::Sender;
use log::{error, info};
use rand::RngExt;

use crate::base::backoff::BackoffPolicy;
use crate::base::stop::StopSignal;

/// How a supervised thread is started.
#[derive(Clone, Debug)]
pub struct ThreadSpec {
    /// The thread's name (`chat-alice`), shown by `top -H` and in panic messages.
    pub name: String,
    /// What the work is called in log lines (`alice: chat`).
    pub what: String,
    pub stack_size: usize,
    /// The delay before a restart after a panic.
    pub policy: BackoffPolicy,
}

/// Starts a named thread that runs `work` under [`supervise`] until it returns or `stop`
/// fires. Its last act is to send its id on `ended`, so that its owner joins it at once
/// instead of keeping a finished thread's stack until shutdown.
pub fn spawn_supervised(
    spec: ThreadSpec,
    stop: StopSignal,
    ended: Sender<ThreadId>,
    mut work: impl FnMut() + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name(spec.name)
        .stack_size(spec.stack_size)
        .spawn(move || {
            supervise(&spec.what, &stop, &spec.policy, &mut work);
            // The owner may be gone already (shutdown); then nobody needs to know.
            let _ = ended.send(thread::current().id());
        })
}

/// Runs `work` until it returns normally or `stop` fires; after a panic, logs it and runs
/// `work` again after a backoff delay. `what` names the work in log lines (`alice: chat`).
/// Returns the number of panics survived.
pub fn supervise(
    what: &str,
    stop: &StopSignal,
    policy: &BackoffPolicy,
    mut work: impl FnMut(),
) -> u32 {
    let mut rng = rand::rng();
    let mut n_panics = 0u32;
    let mut n_failures = 0u32;
    loop {
        let started = Instant::now();
        let outcome = panic::catch_unwind(AssertUnwindSafe(&mut work));
        let Err(payload) = outcome else {
            return n_panics;
        };
        n_panics += 1;
        if stop.is_stopped() {
            return n_panics;
        }
        let now = Instant::now();
        n_failures = policy.failures_after(n_failures, now - started);
        let restart_at = policy.next_attempt_at(started, now, n_failures, rng.random());
        error!(
            "{what} failed unexpectedly ({}); restarting in {:.1} s",
            panic_message(payload.as_ref()),
            restart_at.saturating_duration_since(now).as_secs_f64()
        );
        if stop.wait_until(restart_at) {
            return n_panics;
        }
        info!("{what} restarting");
    }
}

/// The text of a panic payload, for the log line.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "panic".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn quick_policy() -> BackoffPolicy {
        BackoffPolicy {
            base: Duration::from_millis(1),
            cap: Duration::from_millis(2),
            min_gap: Duration::from_millis(1),
            stable_after: Duration::from_secs(60),
            ..BackoffPolicy::default()
        }
    }

    #[test]
    fn work_that_panics_is_restarted_until_it_returns() {
        let stop = StopSignal::new();
        let mut n_runs = 0;
        let n_panics = supervise("test: work", &stop, &quick_policy(), || {
            n_runs += 1;
            if n_runs < 3 {
                panic!("boom {n_runs}");
            }
        });
        assert_eq!(n_panics, 2);
        assert_eq!(n_runs, 3);
    }

    #[test]
    fn a_stopped_signal_ends_supervision_after_a_panic() {
        let stop = StopSignal::new();
        let mut n_runs = 0;
        let n_panics = supervise("test: work", &stop, &quick_policy(), || {
            n_runs += 1;
            stop.stop();
            panic!("boom");
        });
        assert_eq!((n_panics, n_runs), (1, 1));
    }

    #[test]
    fn a_supervised_thread_reports_its_end_with_its_id() {
        let (ended_sender, ended) = crossbeam_channel::unbounded();
        let spec = ThreadSpec {
            name: "test-supervised".to_string(),
            what: "test: supervised".to_string(),
            stack_size: 64 * 1024,
            policy: quick_policy(),
        };
        let mut n_runs = 0;
        let handle = spawn_supervised(spec, StopSignal::new(), ended_sender, move || {
            n_runs += 1;
            if n_runs == 1 {
                panic!("first run fails");
            }
        })
        .unwrap();
        let id = ended.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(id, handle.thread().id());
        assert_eq!(handle.thread().name(), Some("test-supervised"));
        handle.join().unwrap();
    }

    #[test]
    fn panic_messages_are_read_from_both_payload_kinds() {
        let cases: Vec<(Box<dyn std::any::Any + Send>, &str)> = vec![
            (Box::new("static"), "static"),
            (Box::new(String::from("owned")), "owned"),
            (Box::new(42u8), "panic"),
        ];
        for (payload, expected) in cases {
            assert_eq!(panic_message(payload.as_ref()), expected);
        }
    }
}
