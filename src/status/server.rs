//! The status server (`--listen`): a small blocking HTTP/1.1 server on its own thread
//! serving `/` (the status page), `/metrics` and `/healthz` from the status board and the
//! counters. Does I/O (sockets, threads); what to answer comes from `status::page`.
//!
//! Each connection gets its own short-lived thread and one request; the request head is
//! bounded in size ([`MAX_REQUEST_BYTES`]) and in time ([`REQUEST_TIMEOUT`], for the whole
//! head, not per read), and at most [`MAX_CONNECTIONS`] are served at once. When all of them
//! are taken, the oldest connection that has not yet sent its whole head is closed to make
//! room: clients that connect and send nothing can never keep a health probe (which sends its
//! request at once) from being answered. Only when every connection is busy answering does a
//! newcomer get 503. Nothing it serves holds a token or secret: the board never has any.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use log::{debug, info, warn};

use crate::base::clock::unix_now;
use crate::base::counters;
use crate::base::stop::StopSignal;

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

/// One connection being served, as the accept loop keeps it.
struct Client {
    handle: JoinHandle<()>,
    /// A handle on the socket, to close it when room is needed.
    stream: TcpStream,
    /// Set once its whole request head arrived: from then on it is answered, not closed.
    head_read: Arc<AtomicBool>,
    /// Closed to make room; its thread ends on its own.
    closed: bool,
}

impl Client {
    fn counts(&self) -> bool {
        !self.closed && !self.handle.is_finished()
    }
}

fn accept_loop(listener: &TcpListener, board: &StatusBoard, stop: &StopSignal) {
    // Oldest first.
    let mut clients: Vec<Client> = Vec::new();
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
        let (finished, open): (Vec<Client>, Vec<Client>) = clients
            .into_iter()
            .partition(|client| client.handle.is_finished());
        clients = open;
        for client in finished {
            let _ = client.handle.join();
        }
        if !make_room(&mut clients) {
            let _ = stream.set_write_timeout(Some(Duration::from_millis(200)));
            let _ = (&stream).write_all(&refusal(503).to_bytes());
            continue;
        }
        let Ok(watched) = stream.try_clone() else {
            continue;
        };
        let head_read = Arc::new(AtomicBool::new(false));
        let thread_head_read = Arc::clone(&head_read);
        let board = board.clone();
        let stop = stop.clone();
        let spawned = thread::Builder::new()
            .name("http-client".to_string())
            .stack_size(CONNECTION_STACK_SIZE)
            .spawn(move || serve(stream, &board, &stop, &thread_head_read));
        match spawned {
            Ok(handle) => clients.push(Client {
                handle,
                stream: watched,
                head_read,
                closed: false,
            }),
            Err(error) => warn!("status server: cannot start a connection thread: {error}"),
        }
    }
    // The stop signal has shut every client socket down; their threads end at once.
    for client in clients {
        let _ = client.handle.join();
    }
}

/// Makes room for one more connection when [`MAX_CONNECTIONS`] are served: closes the
/// oldest that has not sent its whole head yet. False when every one is being answered.
fn make_room(clients: &mut [Client]) -> bool {
    if clients.iter().filter(|client| client.counts()).count() < MAX_CONNECTIONS {
        return true;
    }
    let waiting = clients
        .iter_mut()
        .find(|client| client.counts() && !client.head_read.load(Ordering::SeqCst));
    match waiting {
        Some(client) => {
            debug!(
                "status server: every connection taken; closing the oldest that sent no request"
            );
            let _ = client.stream.shutdown(Shutdown::Both);
            client.closed = true;
            true
        }
        None => false,
    }
}

/// Reads one request head and answers it; every failure only ends this connection.
fn serve(stream: TcpStream, board: &StatusBoard, stop: &StopSignal, head_read: &AtomicBool) {
    let Ok(_registration) = stop.register(&stream) else {
        return;
    };
    let response = match read_head(&stream) {
        Ok(head) => {
            head_read.store(true, Ordering::SeqCst);
            respond(&head, &board.snapshot(), &counters::snapshot(), unix_now())
        }
        Err(status) => refusal(status),
    };
    let _ = stream.set_write_timeout(Some(REQUEST_TIMEOUT));
    let mut stream = stream;
    let _ = stream.write_all(&response.to_bytes());
    let _ = stream.flush();
    // The accept loop holds a second handle on the socket (to close it when room is
    // needed): end the connection here rather than when both handles are gone.
    let _ = stream.shutdown(Shutdown::Write);
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

/// Where the head ends: at the first empty line, whether its lines end in CRLF or, as
/// RFC 9112 (section 2.2) lets a server accept, in a bare LF.
fn find_end_of_head(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(2)
        .enumerate()
        .find_map(|(at, pair)| match pair {
            b"\n\n" => Some(at + 1),
            b"\n\r" if bytes.get(at + 2) == Some(&b'\n') => Some(at + 1),
            _ => None,
        })
}
