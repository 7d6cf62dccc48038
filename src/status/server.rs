//! The status server (`--listen`): a small blocking HTTP/1.1 server on its own thread
//! serving `/` (the status page), `/metrics` and `/healthz` from the status board and the
//! counters. Does I/O (sockets, threads); what to answer comes from `status::page`.
//!
//! Each connection gets its own short-lived thread and one request; the request head is
//! bounded in size ([`MAX_REQUEST_BYTES`]) and in time ([`REQUEST_TIMEOUT`], for the whole
//! head, not per read), and at most [`MAX_CONNECTIONS`] are served at once. When all are
//! taken, the oldest connection still sending its request head is closed to make room, so
//! clients that connect and send nothing (however many, reopened as often as they like)
//! never keep a health probe from its answer; only when every connection is past its head
//! is the newcomer answered 503. A head may end lines with CRLF or a bare LF. Nothing it
//! serves holds a token or secret: the board never has any.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use log::{debug, info, warn};

use crate::base::clock::unix_now;
use crate::base::counters;
use crate::base::stop::StopSignal;
use crate::base::sync::lock;

use super::board::StatusBoard;
use super::page::{refusal, respond};

/// The most a request head (request line and headers) may hold.
pub const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// The time a client has to send its whole request head, and to take the answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; more are answered 503 at once.
pub const MAX_CONNECTIONS: usize = 16;
/// Stack of a connection thread: one page rendered on the heap.
const CONNECTION_STACK_SIZE: usize = 128 * 1024;
/// The pause after a failed `accept` (out of file descriptors), so a lasting failure does
/// not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(500);

/// The running server. [`StatusServer::stop`] ends it.
pub struct StatusServer {
    address: SocketAddr,
    stop: StopSignal,
    handle: JoinHandle<()>,
}

/// Binds the server's address, with an error that names it.
pub fn bind(address: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(address).map_err(|error| {
        io::Error::new(
            error.kind(),
            format!("cannot listen on {address} for the status page: {error}"),
        )
    })
}

impl StatusServer {
    /// Starts the "http" thread on `listener` (see [`bind`]). `stop` (the daemon's) also
    /// shuts down every open client connection when it fires.
    pub fn start(
        listener: TcpListener,
        board: StatusBoard,
        stop: StopSignal,
    ) -> io::Result<StatusServer> {
        let address = listener.local_addr()?;
        let thread_stop = stop.clone();
        let handle = thread::Builder::new()
            .name("http".to_string())
            .spawn(move || accept_loop(&listener, &board, &thread_stop))?;
        info!("status page on http://{address}/ (also /metrics and /healthz)");
        Ok(StatusServer {
            address,
            stop,
            handle,
        })
    }

    /// Where the server listens (the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// Ends the server: fires nothing itself, but expects the stop signal to have fired,
    /// wakes the blocked `accept` with a connection of its own, and joins the thread.
    pub fn stop(self) {
        debug_assert!(self.stop.is_stopped());
        let wake = match self.address {
            SocketAddr::V4(v4) if v4.ip().is_unspecified() => {
                SocketAddr::from((Ipv4Addr::LOCALHOST, v4.port()))
            }
            SocketAddr::V6(v6) if v6.ip().is_unspecified() => {
                SocketAddr::from((Ipv6Addr::LOCALHOST, v6.port()))
            }
            address => address,
        };
        // If the connect fails the listener is gone already, and accept has returned.
        let _ = TcpStream::connect_timeout(&wake, REQUEST_TIMEOUT);
        if self.handle.join().is_err() {
            warn!("the status server thread had panicked");
        }
    }
}

/// The connections still sending their request head, oldest first: the accept thread closes
/// the oldest when every connection is taken. Shared by the accept thread and the connection
/// threads, each of which removes itself once its head is read (or has failed).
#[derive(Clone, Default)]
struct ReadingHeads(Arc<Mutex<Vec<(u64, TcpStream)>>>);

impl ReadingHeads {
    fn add(&self, id: u64, stream: TcpStream) {
        lock(&self.0).push((id, stream));
    }

    fn remove(&self, id: u64) {
        lock(&self.0).retain(|(each, _)| *each != id);
    }

    /// Shuts the oldest connection still reading its head down (its thread then ends);
    /// false when there is none.
    fn close_oldest(&self) -> bool {
        let mut heads = lock(&self.0);
        if heads.is_empty() {
            return false;
        }
        let (_, stream) = heads.remove(0);
        drop(heads);
        let _ = stream.shutdown(std::net::Shutdown::Both);
        true
    }
}

fn accept_loop(listener: &TcpListener, board: &StatusBoard, stop: &StopSignal) {
    let active = Arc::new(AtomicUsize::new(0));
    let reading = ReadingHeads::default();
    let mut n_accepted: u64 = 0;
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    for stream in listener.incoming() {
        if stop.is_stopped() {
            break;
        }
        let stream = match stream {
            Ok(stream) => stream,
            Err(error) => {
                debug!("status server: accept failed: {error}");
                if stop.wait_timeout(ACCEPT_ERROR_PAUSE) {
                    break;
                }
                continue;
            }
        };
        connections.retain(|handle| !handle.is_finished());
        // The closed connection's thread ends at once; until it has, one more runs.
        if active.load(Ordering::SeqCst) >= MAX_CONNECTIONS && !reading.close_oldest() {
            let _ = stream.set_write_timeout(Some(Duration::from_millis(200)));
            let _ = (&stream).write_all(&refusal(503).to_bytes());
            continue;
        }
        n_accepted += 1;
        let id = n_accepted;
        match stream.try_clone() {
            Ok(clone) => reading.add(id, clone),
            Err(error) => {
                debug!("status server: cannot keep a handle of a connection: {error}");
                continue;
            }
        }
        active.fetch_add(1, Ordering::SeqCst);
        let guard = ActiveGuard(Arc::clone(&active));
        let board = board.clone();
        let stop = stop.clone();
        let thread_reading = reading.clone();
        let spawned = thread::Builder::new()
            .name("http-client".to_string())
            .stack_size(CONNECTION_STACK_SIZE)
            .spawn(move || {
                let _guard = guard;
                serve(stream, &board, &stop, || thread_reading.remove(id));
            });
        match spawned {
            Ok(handle) => connections.push(handle),
            Err(error) => {
                reading.remove(id);
                warn!("status server: cannot start a connection thread: {error}");
            }
        }
    }
    // The stop signal has shut every client socket down; their threads end at once.
    for handle in connections {
        let _ = handle.join();
    }
}

/// Counts a connection as active until dropped.
struct ActiveGuard(Arc<AtomicUsize>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Reads one request head and answers it; every failure only ends this connection.
/// `head_done` is called once the head is read or has failed: from then on the accept
/// thread no longer closes this connection to make room.
fn serve(stream: TcpStream, board: &StatusBoard, stop: &StopSignal, head_done: impl FnOnce()) {
    let Ok(_registration) = stop.register(&stream) else {
        head_done();
        return;
    };
    let head = read_head(&stream);
    head_done();
    let response = match head {
        Ok(head) => respond(&head, &board.snapshot(), &counters::snapshot(), unix_now()),
        Err(status) => refusal(status),
    };
    let _ = stream.set_write_timeout(Some(REQUEST_TIMEOUT));
    let mut stream = stream;
    let _ = stream.write_all(&response.to_bytes());
    let _ = stream.flush();
}

/// Reads until the blank line that ends the head. `Err` holds the status to answer: 408
/// when the client is too slow, 431 when the head is too big, 400 when it is not text.
fn read_head(mut stream: &TcpStream) -> Result<String, u16> {
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let mut head = Vec::with_capacity(1024);
    let mut buffer = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(408);
        }
        stream.set_read_timeout(Some(left)).map_err(|_| 400u16)?;
        let n_read = match stream.read(&mut buffer) {
            Ok(0) => return Err(400),
            Ok(n_read) => n_read,
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(408)
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(400),
        };
        head.extend_from_slice(&buffer[..n_read]);
        if let Some(end) = find_end_of_head(&head) {
            head.truncate(end);
            return String::from_utf8(head).map_err(|_| 400);
        }
        if head.len() >= MAX_REQUEST_BYTES {
            return Err(431);
        }
    }
}

/// Where the head ends: at the empty line after it, whose line ends may be CRLF or a bare
/// LF (RFC 9112 section 2.2 lets a server accept a bare LF as a line end).
fn find_end_of_head(bytes: &[u8]) -> Option<usize> {
    bytes.iter().enumerate().find_map(|(index, byte)| {
        if *byte != b'\n' {
            return None;
        }
        match &bytes[index + 1..] {
            [b'\n', ..] | [b'\r', b'\n', ..] => Some(index + 1),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_ends_at_its_empty_line_with_crlf_or_bare_lf() {
        let cases: Vec<(&[u8], Option<usize>)> = vec![
            (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", Some(25)),
            (b"GET / HTTP/1.1\nHost: a\n\n", Some(23)),
            (b"GET / HTTP/1.1\r\nHost: a\n\r\n", Some(24)),
            (b"GET / HTTP/1.1\r\n\r\n", Some(16)),
            (b"GET / HTTP/1.1\r\nHost: a\r\n", None),
            (b"GET / HTTP/1.1\nHost: a\n", None),
            (b"GET / HTTP/1.1\r\n\r", None),
            (b"", None),
            (b"\n", None),
        ];
        for (bytes, expected) in cases {
            assert_eq!(
                find_end_of_head(bytes),
                expected,
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }
}
