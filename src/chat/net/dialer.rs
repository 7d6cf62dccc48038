//! Opens every user's chat connections (TCP, TLS, WebSocket handshake) on a pool of dialer
//! threads (`base::pool`: one resident, more while connections wait) and hands the open
//! socket to the user's chat thread, which only reads and writes. Does I/O.
//!
//! Why not on the chat threads: a handshake is the deepest and the most allocating thing a
//! chat connection does. On the chat thread its stack pages (OpenSSL's handshake and
//! tungstenite's HTTP upgrade, about 12 KiB) stay resident for the thread's whole life, and a
//! thousand users starting together ran a thousand handshakes at once, each holding tens of
//! KiB of heap while it ran; the allocator kept that peak for good (measured with
//! examples/bench). A few dialers reuse the same stack and the same freed memory, and they
//! also keep a start or a reconnect after an outage from opening every user's connection at
//! the same instant. The pool grows to `MAX_DIALERS` while connections wait, because against
//! Twitch a handshake is mostly three round trips of waiting: 1,000 users through 4 dialers
//! at 100 ms per round trip would take 75 s to connect, through 16 about 19 s.

use std::time::Duration;

use crossbeam_channel::{select, Receiver, Sender};

use crate::base::pool::{run_pool, PoolSpec};
use crate::base::stop::StopSignal;
use crate::chat::net::socket::{FrameSocket, SocketError};
use crate::twitch::tls::TlsContext;

/// At most this many dialers run at once; one stays, the others end after a quiet minute.
pub const MAX_DIALERS: usize = 16;
/// A dialer beyond the first ends after this long without a connection to open.
const DIALER_IDLE_END: Duration = Duration::from_secs(60);
/// A dialer's stack: OpenSSL's handshake and tungstenite's HTTP upgrade run on it.
const DIALER_STACK_SIZE: usize = 256 * 1024;

/// One connection to open, and where the socket goes.
struct DialJob {
    url: String,
    /// The user's stop signal: the socket is registered with it, so that stopping the user
    /// also aborts a handshake in progress.
    stop: StopSignal,
    reply: Sender<Result<FrameSocket, SocketError>>,
}

/// The chat threads' end: asks a dialer for a connection.
#[derive(Clone)]
pub struct Dialer {
    jobs: Sender<DialJob>,
}

/// The dialer pool's end of the queue.
#[derive(Clone)]
pub struct DialJobs {
    jobs: Receiver<DialJob>,
    /// The one TLS context every `wss://` connection uses (building one parses the whole
    /// CA bundle); `None` when no chat endpoint is `wss://`.
    tls: Option<TlsContext>,
}

impl Dialer {
    /// The queue and its two ends; `run_dialers` serves `DialJobs`.
    pub fn new(tls: Option<TlsContext>) -> (Dialer, DialJobs) {
        let (jobs, receiver) = crossbeam_channel::unbounded();
        (
            Dialer { jobs },
            DialJobs {
                jobs: receiver,
                tls,
            },
        )
    }

    /// Opens a connection to `url` on a dialer thread and waits for it. Returns an error
    /// for the log when it fails, when `stop` fires first or when no dialer runs.
    pub fn dial(&self, url: &str, stop: &StopSignal) -> Result<FrameSocket, SocketError> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        let job = DialJob {
            url: url.to_string(),
            stop: stop.clone(),
            reply,
        };
        if self.jobs.send(job).is_err() {
            return Err(SocketError::NoDialer("no dialer runs (shutting down)"));
        }
        select! {
            recv(answer) -> result => {
                result.unwrap_or_else(|_| Err(SocketError::NoDialer("the dialer ended before connecting")))
            }
            // The dialer sees the stop too: the socket is registered with it and shut down.
            recv(stop.receiver()) -> _ => Err(SocketError::NoDialer("stopping")),
        }
    }
}

/// The dialer pool: opens connections until `stop` (the process's) fires or every `Dialer`
/// is gone.
pub fn run_dialers(jobs: DialJobs, stop: &StopSignal) {
    let spec = PoolSpec {
        name: "chat-dialer",
        max_threads: MAX_DIALERS,
        idle_end: DIALER_IDLE_END,
        stack_size: DIALER_STACK_SIZE,
        end_on_stop: true,
    };
    let tls = jobs.tls;
    run_pool(jobs.jobs, &spec, stop, move |job| {
        dial_one(job, tls.as_ref())
    });
}

fn dial_one(job: DialJob, tls: Option<&TlsContext>) {
    // A user stopped while its job waited in the queue needs no connection.
    if job.stop.is_stopped() {
        return;
    }
    let result = FrameSocket::connect(&job.url, tls, &job.stop);
    // The chat thread may have stopped waiting; the socket then closes here.
    let _ = job.reply.send(result);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A stopped user's dial returns at once, without a dialer having to answer.
    #[test]
    fn a_stopped_user_does_not_wait_for_a_dialer() {
        let (dialer, _jobs) = Dialer::new(None);
        let stop = StopSignal::new();
        stop.stop();
        let result = dialer.dial("ws://127.0.0.1:9/", &stop);
        assert_eq!(
            result.err().map(|error| error.to_string()).as_deref(),
            Some("stopping")
        );
    }

    /// With every dialer gone, a dial fails with a reason instead of waiting forever.
    #[test]
    fn dialing_without_dialers_fails() {
        let (dialer, jobs) = Dialer::new(None);
        drop(jobs);
        let result = dialer.dial("ws://127.0.0.1:9/", &StopSignal::new());
        assert!(result.is_err());
    }

    /// A dialer opens the connection and hands the socket over; a refused connect comes
    /// back as the error, for the log.
    #[test]
    fn a_dialer_connects_and_reports_failures() {
        let (dialer, jobs) = Dialer::new(None);
        let process = StopSignal::new();
        let thread = {
            let process = process.clone();
            std::thread::spawn(move || run_dialers(jobs, &process))
        };
        // A listener that is closed again: its port refuses.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let refused = dialer.dial(&format!("ws://127.0.0.1:{port}/"), &StopSignal::new());
        assert!(refused
            .err()
            .unwrap()
            .to_string()
            .contains("connect to 127.0.0.1"));
        let bad = dialer.dial("http://127.0.0.1:1/", &StopSignal::new());
        assert!(bad
            .err()
            .unwrap()
            .to_string()
            .contains("must start with wss:// or ws://"));
        process.stop();
        thread.join().unwrap();
    }
}
