//! What the fake's two WebSocket servers (IRC in `irc_server`, EventSub in `eventsub_server`)
//! share: the accept loop, the connection thread with its raw reader thread, TLS, the
//! WebSocket handshake and the event loop; it does I/O. Each server supplies only its
//! [`Protocol`]: how a connection is filed in the state and what it says once open.
//!
//! Each connection thread owns its WebSocket. The socket is read by a separate thread that
//! only forwards raw bytes over a channel, so the connection thread can `select!` over incoming
//! bytes, orders from tests, the protocol's next deadline and the shutdown signal, and nobody
//! polls. The WebSocket reads from an in-memory buffer that answers `WouldBlock` when empty,
//! the non-blocking mode tungstenite supports, and writes straight to the socket.
//!
//! With TLS the same split holds one layer down: the raw bytes feed an in-memory stream under
//! the TLS session (OpenSSL reads it in non-blocking mode), whose plaintext feeds the
//! WebSocket's buffer; writes go through the TLS session to the socket. A TLS session cannot be
//! read and written from two threads, so this keeps all of it on the connection thread.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender};
use native_tls::{TlsAcceptor, TlsStream};
use tungstenite::handshake::server::{Request, Response};
use tungstenite::handshake::HandshakeError;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message, WebSocket};

use crate::{Shared, State};

/// Whether the connection goes on after handling something.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    End,
}

/// What one WebSocket server speaks; a value of it is one open connection.
pub(crate) trait Protocol: Sized {
    /// What tests order a connection to do, over its channel.
    type Command: Send + 'static;
    /// Names the threads: `fake-{NAME}-{id}` and its reader `fake-{NAME}-read-{id}`.
    const NAME: &'static str;

    /// Counts a connection just accepted and files it in the state with its command channel,
    /// returning its id; `None` refuses it (its socket is shut down at once).
    fn register(state: &mut State, commands: Sender<Self::Command>) -> Option<u64>;

    /// Removes a connection that ended from the state.
    fn unregister(state: &mut State, connection_id: u64);

    /// Starts the protocol on a WebSocket just opened by a request with this URL query;
    /// `None` ends the connection.
    fn open(
        connection_id: u64,
        shared: &Arc<Shared>,
        query: &str,
        websocket: &mut WebSocket<BufferedSocket>,
    ) -> Option<Self>;

    /// Handles every complete message buffered so far (see [`read_message`]).
    fn read_available(&mut self, websocket: &mut WebSocket<BufferedSocket>) -> Flow;

    /// Carries out an order from a test.
    fn on_command(
        &mut self,
        websocket: &mut WebSocket<BufferedSocket>,
        command: Self::Command,
    ) -> Flow;

    /// When [`Protocol::on_deadline`] is due next; `None` for never.
    fn next_deadline(&self) -> Option<Instant> {
        None
    }

    fn on_deadline(&mut self, _websocket: &mut WebSocket<BufferedSocket>) -> Flow {
        Flow::Continue
    }
}

/// Accepts connections until the fake shuts down; with `tls`, every connection starts with a TLS
/// handshake.
pub(crate) fn run_listener<P: Protocol>(
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Option<TlsAcceptor>,
) {
    shared.accept_until_shutdown(&listener, |stream, mut state| {
        let (command_sender, command_receiver) = crossbeam_channel::unbounded();
        let registered = P::register(&mut state, command_sender);
        let stalled = registered.is_some() && state.n_handshake_stalls_pending > 0;
        if stalled {
            state.n_handshake_stalls_pending -= 1;
        }
        drop(state);
        shared.notify_changed();
        let Some(connection_id) = registered else {
            let _ = stream.shutdown(Shutdown::Both);
            return;
        };
        let connection_shared = Arc::clone(&shared);
        let connection_tls = tls.clone();
        let spawned = thread::Builder::new()
            .name(format!("fake-{}-{connection_id}", P::NAME))
            .spawn(move || {
                run_connection::<P>(
                    connection_id,
                    stream,
                    (connection_tls.as_ref(), stalled),
                    &connection_shared,
                    &command_receiver,
                );
                P::unregister(&mut connection_shared.lock_state(), connection_id);
                connection_shared.notify_changed();
            });
        match spawned {
            Ok(handle) => shared.keep_thread(handle),
            Err(_) => P::unregister(&mut shared.lock_state(), connection_id),
        }
    });
}

/// Runs one connection to its end, then shuts its socket down and joins its reader thread.
/// A `stalled` connection never answers: not TLS, not the WebSocket handshake.
fn run_connection<P: Protocol>(
    connection_id: u64,
    stream: TcpStream,
    (tls, stalled): (Option<&TlsAcceptor>, bool),
    shared: &Arc<Shared>,
    commands: &Receiver<P::Command>,
) {
    let (Ok(reader_stream), Ok(control_stream)) = (stream.try_clone(), stream.try_clone()) else {
        return;
    };
    let (bytes_sender, bytes_receiver) = crossbeam_channel::bounded(64);
    let reader = thread::Builder::new()
        .name(format!("fake-{}-read-{connection_id}", P::NAME))
        .spawn(move || forward_raw_bytes(reader_stream, &bytes_sender));
    let transport = match (&reader, tls) {
        (Err(_), _) => None,
        (Ok(_), _) if stalled => {
            hang(shared, &bytes_receiver);
            None
        }
        (Ok(_), None) => Some(Transport::Plain(stream)),
        (Ok(_), Some(acceptor)) => {
            accept_tls(acceptor, stream, &bytes_receiver, commands, shared).map(Transport::Tls)
        }
    };
    if let Some(transport) = transport {
        serve::<P>(
            connection_id,
            shared,
            BufferedSocket::new(transport),
            &bytes_receiver,
            commands,
        );
    }
    // Shutting the socket down wakes the reader thread blocked in read().
    let _ = control_stream.shutdown(Shutdown::Both);
    drop(bytes_receiver);
    if let Ok(reader) = reader {
        let _ = reader.join();
    }
}

/// Holds a connection without answering until the client goes away or the fake stops;
/// counted in `n_stalled_open` meanwhile.
fn hang(shared: &Arc<Shared>, bytes_receiver: &Receiver<Vec<u8>>) {
    shared.lock_state().n_stalled_open += 1;
    shared.notify_changed();
    let shutdown_receiver = shared.shutdown_receiver.clone();
    loop {
        select! {
            recv(bytes_receiver) -> bytes => if bytes.is_err() { break },
            recv(shutdown_receiver) -> _ => break,
        }
    }
    shared.lock_state().n_stalled_open -= 1;
    shared.notify_changed();
}

/// Opens the WebSocket, then feeds the protocol incoming bytes, orders and deadlines until
/// the connection ends.
fn serve<P: Protocol>(
    connection_id: u64,
    shared: &Arc<Shared>,
    socket: BufferedSocket,
    bytes_receiver: &Receiver<Vec<u8>>,
    commands: &Receiver<P::Command>,
) {
    let shutdown_receiver = shared.shutdown_receiver.clone();
    let mut query = String::new();
    // tungstenite fixes the callback's error type (an HTTP response); it is never built here.
    #[allow(clippy::result_large_err)]
    let mut handshake = tungstenite::accept_hdr(socket, |request: &Request, response: Response| {
        query = request.uri().query().unwrap_or("").to_string();
        Ok(response)
    });
    let mut websocket = loop {
        let mut interrupted = match handshake {
            Ok(websocket) => break websocket,
            Err(HandshakeError::Failure(_)) => return,
            Err(HandshakeError::Interrupted(interrupted)) => interrupted,
        };
        select! {
            recv(bytes_receiver) -> bytes => interrupted.get_mut().get_mut().push_incoming(bytes.ok()),
            // No order targets a connection before it is open except drop and close.
            recv(commands) -> _ => return,
            recv(shutdown_receiver) -> _ => return,
        }
        handshake = interrupted.handshake();
    };
    websocket.get_mut().handshake_pending = false;
    let Some(mut connection) = P::open(connection_id, shared, &query, &mut websocket) else {
        return;
    };
    // Frames that arrived together with the handshake request are already buffered.
    if connection.read_available(&mut websocket) == Flow::End {
        return;
    }
    loop {
        // Without a deadline the wait has no end (crossbeam takes an overflowing timeout as
        // none).
        let timeout = connection
            .next_deadline()
            .map_or(Duration::MAX, |deadline| {
                deadline.saturating_duration_since(Instant::now())
            });
        let flow = select! {
            recv(bytes_receiver) -> bytes => {
                websocket.get_mut().push_incoming(bytes.ok());
                connection.read_available(&mut websocket)
            }
            recv(commands) -> command => match command {
                Ok(command) => connection.on_command(&mut websocket, command),
                Err(_) => Flow::End,
            },
            recv(shutdown_receiver) -> _ => Flow::End,
            default(timeout) => connection.on_deadline(&mut websocket),
        };
        if flow == Flow::End {
            return;
        }
    }
}

/// Reads the next complete message buffered so far; `Err(Flow::Continue)` when more bytes are
/// needed first, `Err(Flow::End)` when the connection is over. tungstenite answers pings and
/// close frames itself during the read; with `silent` those answers are discarded.
pub(crate) fn read_message(
    websocket: &mut WebSocket<BufferedSocket>,
    silent: bool,
) -> Result<Message, Flow> {
    websocket.get_mut().discard_writes = silent;
    let message = websocket.read();
    websocket.get_mut().discard_writes = false;
    match message {
        Ok(message) => Ok(message),
        Err(tungstenite::Error::Io(error)) if error.kind() == io::ErrorKind::WouldBlock => {
            Err(Flow::Continue)
        }
        Err(_) => Err(Flow::End),
    }
}

/// Sends a message; after a close frame nothing more may be sent, and the connection still
/// waits for the client's close answer.
pub(crate) fn send(websocket: &mut WebSocket<BufferedSocket>, message: Message) -> Flow {
    if !websocket.can_write() {
        return Flow::Continue;
    }
    match websocket.send(message) {
        Ok(()) => Flow::Continue,
        Err(_) => Flow::End,
    }
}

/// Sends a close frame; the connection ends when the client answers it or goes away.
pub(crate) fn close(websocket: &mut WebSocket<BufferedSocket>, frame: Option<CloseFrame>) -> Flow {
    if !websocket.can_write() {
        return Flow::Continue;
    }
    match websocket.close(frame) {
        Ok(()) => Flow::Continue,
        Err(_) => Flow::End,
    }
}

/// Forwards what the socket delivers until end of stream, an error, or nobody listening.
fn forward_raw_bytes(mut stream: TcpStream, bytes_sender: &Sender<Vec<u8>>) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n_read) => {
                if bytes_sender.send(buffer[..n_read].to_vec()).is_err() {
                    break;
                }
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
}

/// Runs the server side of a TLS handshake over the raw bytes the reader thread forwards;
/// `None` when it fails, the client goes away, a test drops the connection or the fake stops.
fn accept_tls<Command>(
    acceptor: &TlsAcceptor,
    socket: TcpStream,
    bytes_receiver: &Receiver<Vec<u8>>,
    commands: &Receiver<Command>,
    shared: &Shared,
) -> Option<TlsStream<RawSocket>> {
    let shutdown_receiver = shared.shutdown_receiver.clone();
    let mut handshake = acceptor.accept(RawSocket {
        incoming: Incoming::default(),
        socket,
    });
    loop {
        let mut interrupted = match handshake {
            Ok(tls) => return Some(tls),
            Err(native_tls::HandshakeError::Failure(_)) => return None,
            Err(native_tls::HandshakeError::WouldBlock(interrupted)) => interrupted,
        };
        select! {
            recv(bytes_receiver) -> bytes => interrupted.get_mut().incoming.push(bytes.ok()),
            recv(commands) -> _ => return None,
            recv(shutdown_receiver) -> _ => return None,
        }
        handshake = interrupted.handshake();
    }
}

/// Bytes the connection thread pushed and nobody read yet. Reads answer `WouldBlock` while
/// there are none and the stream has not ended, which is how both OpenSSL ("want read") and
/// tungstenite learn to wait for more.
#[derive(Debug, Default)]
struct Incoming {
    bytes: Vec<u8>,
    /// The front part up to here was read already.
    read_position: usize,
    ended: bool,
}

impl Incoming {
    /// Appends pushed bytes; `None` marks the end of the stream.
    fn push(&mut self, bytes: Option<Vec<u8>>) {
        match bytes {
            Some(bytes) => {
                if self.read_position == self.bytes.len() {
                    self.bytes.clear();
                    self.read_position = 0;
                }
                self.bytes.extend_from_slice(&bytes);
            }
            None => self.ended = true,
        }
    }

    /// Reads what is there; with `up_to_request_end`, no further than the end of an HTTP
    /// request's head.
    fn read(&mut self, buffer: &mut [u8], up_to_request_end: bool) -> io::Result<usize> {
        let mut available = &self.bytes[self.read_position..];
        if available.is_empty() {
            if self.ended {
                return Ok(0);
            }
            return Err(io::ErrorKind::WouldBlock.into());
        }
        if up_to_request_end {
            if let Some(end) = available
                .windows(4)
                .position(|window| window == b"\r\n\r\n")
            {
                available = &available[..end + 4];
            }
        }
        let n_copied = available.len().min(buffer.len());
        buffer[..n_copied].copy_from_slice(&available[..n_copied]);
        self.read_position += n_copied;
        Ok(n_copied)
    }
}

/// The stream under a TLS session: reads come from raw bytes pushed by the connection thread,
/// writes go straight to the socket.
#[derive(Debug)]
struct RawSocket {
    incoming: Incoming,
    socket: TcpStream,
}

impl Read for RawSocket {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        self.incoming.read(buffer, false)
    }
}

impl Write for RawSocket {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.socket.write(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.socket.flush()
    }
}

/// What carries the WebSocket's bytes: the socket itself or a TLS session over it.
#[derive(Debug)]
enum Transport {
    Plain(TcpStream),
    Tls(TlsStream<RawSocket>),
}

/// The stream the WebSocket sees: reads come from bytes pushed by the connection thread
/// (decrypted first with TLS), writes go to the transport or are discarded while the
/// connection is silent.
#[derive(Debug)]
pub(crate) struct BufferedSocket {
    incoming: Incoming,
    /// During the handshake, reads stop at the end of the HTTP request so that frames sent
    /// right behind it are not taken as junk after the request.
    handshake_pending: bool,
    discard_writes: bool,
    transport: Transport,
}

impl BufferedSocket {
    fn new(transport: Transport) -> BufferedSocket {
        BufferedSocket {
            incoming: Incoming::default(),
            handshake_pending: true,
            discard_writes: false,
            transport,
        }
    }

    /// Takes raw bytes from the reader thread (`None` at the end of the stream); with TLS,
    /// decrypts everything they complete.
    fn push_incoming(&mut self, bytes: Option<Vec<u8>>) {
        let tls = match &mut self.transport {
            Transport::Plain(_) => return self.incoming.push(bytes),
            Transport::Tls(tls) => tls,
        };
        tls.get_mut().incoming.push(bytes);
        let mut plaintext = [0u8; 16 * 1024];
        loop {
            match tls.read(&mut plaintext) {
                Ok(0) => return self.incoming.push(None),
                Ok(n_read) => self.incoming.push(Some(plaintext[..n_read].to_vec())),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.incoming.push(None),
            }
        }
    }
}

impl Read for BufferedSocket {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        self.incoming.read(buffer, self.handshake_pending)
    }
}

impl Write for BufferedSocket {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if self.discard_writes {
            return Ok(bytes.len());
        }
        match &mut self.transport {
            Transport::Plain(socket) => socket.write(bytes),
            Transport::Tls(tls) => tls.write(bytes),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.transport {
            Transport::Plain(socket) => socket.flush(),
            Transport::Tls(tls) => tls.flush(),
        }
    }
}
