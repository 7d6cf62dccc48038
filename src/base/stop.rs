//! `StopSignal`: tells threads to stop and wakes the ones blocked on a socket or a timed
//! wait. Shared state by design; holds sockets but does no reads or writes of its own.

use crate::base::sync::lock;
use std::collections::HashMap;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

/// A one-way switch from "running" to "stopping".
///
/// Threads never poll it in a loop: a thread blocked on a socket read registers the socket
/// and is woken by its shutdown; a thread waiting for a deadline waits on [`Self::wait_until`]
/// (a channel that is closed when the signal fires).
#[derive(Clone)]
pub struct StopSignal {
    inner: Arc<Inner>,
}

struct Inner {
    stopped: AtomicBool,
    next_socket_id: AtomicU64,
    sockets: Mutex<HashMap<u64, TcpStream>>,
    /// Dropped when the signal fires, which disconnects `closed`.
    keep_open: Mutex<Option<Sender<()>>>,
    closed: Receiver<()>,
}

impl Default for StopSignal {
    fn default() -> Self {
        Self::new()
    }
}

impl StopSignal {
    pub fn new() -> Self {
        let (keep_open, closed) = crossbeam_channel::bounded(0);
        StopSignal {
            inner: Arc::new(Inner {
                stopped: AtomicBool::new(false),
                next_socket_id: AtomicU64::new(0),
                sockets: Mutex::new(HashMap::new()),
                keep_open: Mutex::new(Some(keep_open)),
                closed,
            }),
        }
    }

    /// Fires the signal: every registered socket is shut down and every waiter wakes.
    pub fn stop(&self) {
        self.inner.stopped.store(true, Ordering::SeqCst);
        lock(&self.inner.keep_open).take();
        for socket in lock(&self.inner.sockets).values() {
            // The peer may already be gone; a failed shutdown changes nothing.
            let _ = socket.shutdown(Shutdown::Both);
        }
    }

    pub fn is_stopped(&self) -> bool {
        self.inner.stopped.load(Ordering::SeqCst)
    }

    /// A receiver that never yields a value and disconnects when the signal fires, for use
    /// in `crossbeam_channel::select!` next to other channels.
    pub fn receiver(&self) -> &Receiver<()> {
        &self.inner.closed
    }

    /// Sleeps until `deadline` unless the signal fires first. True when it fired.
    pub fn wait_until(&self, deadline: Instant) -> bool {
        let timeout = deadline.saturating_duration_since(Instant::now());
        self.wait_timeout(timeout)
    }

    /// Sleeps for `timeout` unless the signal fires first. True when it fired.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        if self.is_stopped() {
            return true;
        }
        // Nothing is ever sent: the call ends by timeout or by disconnection.
        let _ = self.inner.closed.recv_timeout(timeout);
        self.is_stopped()
    }

    /// Shuts every registered socket down without firing the signal: their blocked readers
    /// wake with an error and carry on (a chat thread reconnects). For checking connections
    /// after the machine slept.
    pub fn shut_sockets(&self) {
        for socket in lock(&self.inner.sockets).values() {
            // The peer may already be gone; a failed shutdown changes nothing.
            let _ = socket.shutdown(Shutdown::Both);
        }
    }

    /// Registers a socket to be shut down when the signal fires (at once if it already has).
    /// The registration ends when the returned guard is dropped.
    pub fn register(&self, socket: &TcpStream) -> std::io::Result<SocketRegistration> {
        let clone = socket.try_clone()?;
        let id = self.inner.next_socket_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.inner.sockets).insert(id, clone);
        // Checked after inserting so a concurrent `stop` cannot slip between the two.
        if self.is_stopped() {
            let _ = socket.shutdown(Shutdown::Both);
        }
        Ok(SocketRegistration {
            signal: self.clone(),
            id,
        })
    }
}

/// Keeps a socket registered with a [`StopSignal`] while alive.
pub struct SocketRegistration {
    signal: StopSignal,
    id: u64,
}

impl Drop for SocketRegistration {
    fn drop(&mut self) {
        lock(&self.signal.inner.sockets).remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    #[test]
    fn stop_wakes_a_timed_waiter() {
        let signal = StopSignal::new();
        let waiter = {
            let signal = signal.clone();
            std::thread::spawn(move || signal.wait_timeout(Duration::from_secs(60)))
        };
        signal.stop();
        assert!(waiter.join().unwrap());
        assert!(signal.wait_timeout(Duration::from_secs(60)));
    }

    #[test]
    fn a_wait_without_stop_times_out() {
        let signal = StopSignal::new();
        assert!(!signal.wait_timeout(Duration::from_millis(1)));
    }

    #[test]
    fn stop_wakes_a_blocked_socket_read() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server_side, _) = listener.accept().unwrap();
        let signal = StopSignal::new();
        let registration = signal.register(&client).unwrap();
        let reader = std::thread::spawn(move || {
            let mut buffer = [0u8; 16];
            let n = client.read(&mut buffer);
            drop(registration);
            n
        });
        signal.stop();
        let read = reader.join().unwrap();
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    }

    #[test]
    fn shutting_the_sockets_wakes_a_reader_without_stopping() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server_side, _) = listener.accept().unwrap();
        let signal = StopSignal::new();
        let _registration = signal.register(&client).unwrap();
        signal.shut_sockets();
        let mut buffer = [0u8; 16];
        assert!(matches!(client.read(&mut buffer), Ok(0) | Err(_)));
        assert!(!signal.is_stopped());
        assert!(!signal.wait_timeout(Duration::from_millis(1)));
    }

    #[test]
    fn registering_after_stop_shuts_the_socket_at_once() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server_side, _) = listener.accept().unwrap();
        let signal = StopSignal::new();
        signal.stop();
        let _registration = signal.register(&client).unwrap();
        let mut buffer = [0u8; 16];
        assert!(matches!(client.read(&mut buffer), Ok(0) | Err(_)));
    }
}
