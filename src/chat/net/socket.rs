//! Frames in and out over one chat WebSocket: connect (TCP, TLS for `wss://`, the
//! WebSocket handshake), read one frame with a timeout, send one text frame. Does I/O and
//! knows neither transport: IRC and EventSub both read their frames through it.

use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use openssl::ssl::SslStream;
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

use crate::base::stop::{SocketRegistration, StopSignal};
use crate::chat::machine::ChatMachine;
use crate::twitch::tls::TlsContext;

/// Time allowed for TCP connect and for the TLS and WebSocket handshakes.
pub const CHAT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes a chat connection reads from its socket at a time. Twitch frames are IRC lines of a
/// few hundred bytes; a longer frame still arrives whole, in several reads. tungstenite's
/// default of 128 KiB is zero-filled before every read and cost each user about 100 KiB of
/// resident memory (measured with examples/bench: 100 users 26.9 → 16.5 MiB).
const WEBSOCKET_READ_BUFFER_SIZE: usize = 4 * 1024;

/// What one read brought.
#[derive(Debug)]
pub enum Incoming {
    /// A text frame (for IRC: one or more lines).
    Text(String),
    /// A frame that is traffic but carries nothing for the session (ping, pong, binary).
    Traffic,
    /// The timeout passed without a frame.
    TimedOut,
}

/// Why a chat socket could not be opened, or why an open one ended. Each is the normal end of
/// a connection (the chat thread reconnects); `Display` says what happened, for the log.
#[derive(Debug)]
pub enum SocketError {
    /// The URL is no `ws://` or `wss://` URL with a host, or `wss://` without TLS set up.
    BadUrl(String),
    /// The TCP connection to `address` failed.
    Connect { address: String, error: io::Error },
    /// Setting the socket up (timeouts, the stop registration) failed.
    Setup(io::Error),
    /// The TLS handshake with `address` failed.
    Tls { address: String, error: String },
    /// The WebSocket handshake with `address` failed.
    Handshake { address: String, error: String },
    /// The server sent a close frame (its code: [`FrameSocket::close_code`]).
    ClosedByServer,
    /// The connection closed without a close frame.
    Closed,
    /// Reading failed.
    Read(String),
    /// Writing failed.
    Write(String),
    /// No dialer could open it: the dialers are gone or the user stops.
    NoDialer(&'static str),
}

impl std::fmt::Display for SocketError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SocketError::BadUrl(why) => f.write_str(why),
            SocketError::Connect { address, error } => write!(f, "connect to {address}: {error}"),
            SocketError::Setup(error) => write!(f, "socket setup: {error}"),
            SocketError::Tls { address, error } => write!(f, "{address}: {error}"),
            SocketError::Handshake { address, error } => {
                write!(f, "handshake with {address}: {error}")
            }
            SocketError::ClosedByServer => f.write_str("closed by the server"),
            SocketError::Closed => f.write_str("connection closed"),
            SocketError::Read(error) => f.write_str(error),
            SocketError::Write(error) => write!(f, "write failed: {error}"),
            SocketError::NoDialer(why) => f.write_str(why),
        }
    }
}

/// One open WebSocket, registered with the stop signal so that a shutdown wakes the blocked
/// reader. Dropping it ends the registration.
pub struct FrameSocket {
    socket: WebSocket<ChatStream>,
    _registration: SocketRegistration,
    /// The code of the server's close frame, once one arrived.
    close_code: Option<u16>,
}

impl FrameSocket {
    /// Opens the TCP, TLS (for `wss://`) and WebSocket layers. The error says what failed,
    /// for the log.
    pub fn connect(
        url: &str,
        tls: Option<&TlsContext>,
        stop: &StopSignal,
    ) -> Result<FrameSocket, SocketError> {
        let request = url
            .into_client_request()
            .map_err(|error| SocketError::BadUrl(format!("bad chat URL {url}: {error}")))?;
        let uri = request.uri();
        let secure = match uri.scheme_str() {
            Some("wss") => true,
            Some("ws") => false,
            _ => {
                return Err(SocketError::BadUrl(format!(
                    "chat URL {url} must start with wss:// or ws://"
                )))
            }
        };
        let host = uri
            .host()
            .ok_or_else(|| SocketError::BadUrl(format!("chat URL {url} has no host")))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
        let address = format!("{host}:{port}");
        let tcp = connect_tcp(&host, port).map_err(|error| SocketError::Connect {
            address: address.clone(),
            error,
        })?;
        let registration = stop.register(&tcp).map_err(SocketError::Setup)?;
        tcp.set_nodelay(true).ok();
        tcp.set_read_timeout(Some(CHAT_CONNECT_TIMEOUT)).ok();
        tcp.set_write_timeout(Some(CHAT_CONNECT_TIMEOUT)).ok();
        let websocket_config =
            WebSocketConfig::default().read_buffer_size(WEBSOCKET_READ_BUFFER_SIZE);
        let stream = match (secure, tls) {
            (true, Some(tls)) => {
                ChatStream::Tls(Box::new(tls.connect(&host, tcp).map_err(|error| {
                    SocketError::Tls {
                        address: address.clone(),
                        error: error.to_string(),
                    }
                })?))
            }
            (true, None) => {
                return Err(SocketError::BadUrl(format!(
                    "chat URL {url} needs TLS, but none was set up"
                )))
            }
            (false, _) => ChatStream::Plain(tcp),
        };
        let (socket, _response) =
            tungstenite::client::client_with_config(request, stream, Some(websocket_config))
                .map_err(|error| SocketError::Handshake {
                    address,
                    error: error.to_string(),
                })?;
        Ok(FrameSocket {
            socket,
            _registration: registration,
            close_code: None,
        })
    }

    /// Waits up to `timeout` for the next frame. An error is the end of the connection,
    /// described for the log.
    pub fn read(&mut self, timeout: Duration) -> Result<Incoming, SocketError> {
        // A zero timeout would mean "block forever" to the socket.
        let timeout = timeout.max(Duration::from_millis(1));
        self.tcp()
            .set_read_timeout(Some(timeout))
            .map_err(SocketError::Setup)?;
        match self.socket.read() {
            Ok(Message::Text(frame)) => Ok(Incoming::Text(frame.as_str().to_string())),
            Ok(Message::Close(frame)) => {
                self.close_code = frame.map(|frame| u16::from(frame.code));
                Err(SocketError::ClosedByServer)
            }
            Ok(_) => Ok(Incoming::Traffic),
            Err(tungstenite::Error::Io(error))
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(Incoming::TimedOut)
            }
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                Err(SocketError::Closed)
            }
            Err(other) => Err(SocketError::Read(other.to_string())),
        }
    }

    /// Waits for the next frame until `machine`'s next deadline, feeds it in, and returns
    /// what the machine asks for then, deadlines that passed included. An error is the end of
    /// the connection, described for the log.
    pub fn next_steps<M: ChatMachine>(
        &mut self,
        machine: &mut M,
    ) -> Result<Vec<M::Step>, SocketError> {
        let timeout = machine
            .next_deadline()
            .saturating_duration_since(Instant::now());
        let mut steps = match self.read(timeout)? {
            Incoming::Text(frame) => machine.on_frame(Instant::now(), &frame),
            Incoming::Traffic => {
                machine.on_traffic(Instant::now());
                Vec::new()
            }
            Incoming::TimedOut => Vec::new(),
        };
        steps.extend(machine.due(Instant::now()));
        Ok(steps)
    }

    /// Sends one text frame.
    pub fn send(&mut self, text: String) -> Result<(), SocketError> {
        self.socket
            .send(Message::text(text))
            .map_err(|error| match error {
                tungstenite::Error::Io(io) => SocketError::Write(io.to_string()),
                other => SocketError::Read(other.to_string()),
            })
    }

    /// The code of the close frame the server sent, if it sent one.
    pub fn close_code(&self) -> Option<u16> {
        self.close_code
    }

    /// Sends a normal close frame (best effort: the socket is dropped right after).
    pub fn close(&mut self) {
        let _ = self.socket.close(None);
        let _ = self.socket.flush();
    }

    fn tcp(&self) -> &TcpStream {
        match self.socket.get_ref() {
            ChatStream::Tls(tls) => tls.get_ref(),
            ChatStream::Plain(tcp) => tcp,
        }
    }
}

/// The byte stream under a chat WebSocket: TCP, or TLS over TCP for `wss://`.
enum ChatStream {
    Plain(TcpStream),
    /// Boxed: an `SslStream` is much larger than a `TcpStream`.
    Tls(Box<SslStream<TcpStream>>),
}

impl io::Read for ChatStream {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        match self {
            ChatStream::Plain(tcp) => tcp.read(buffer),
            ChatStream::Tls(tls) => {
                // A chat connection spends its life waiting for the next line. Waiting inside
                // OpenSSL's read would hold its 16 KiB record buffer all that time; waiting
                // for the socket first (with the same read timeout) lets OpenSSL give the
                // buffer back between records (SSL_MODE_RELEASE_BUFFERS). Only when OpenSSL
                // holds no decrypted bytes: those are read without the socket. Measured with
                // examples/bench, 1,000 TLS users: see docs/performance.md.
                if tls.ssl().pending() == 0 {
                    tls.get_ref().peek(&mut [0u8; 1])?;
                }
                tls.read(buffer)
            }
        }
    }
}

impl io::Write for ChatStream {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            ChatStream::Plain(tcp) => tcp.write(bytes),
            ChatStream::Tls(tls) => tls.write(bytes),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            ChatStream::Plain(tcp) => tcp.flush(),
            ChatStream::Tls(tls) => tls.flush(),
        }
    }
}

fn connect_tcp(host: &str, port: u16) -> io::Result<TcpStream> {
    let mut last_error = io::Error::new(io::ErrorKind::NotFound, "no address");
    for address in (host, port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&address, CHAT_CONNECT_TIMEOUT) {
            Ok(stream) => return Ok(stream),
            Err(error) => last_error = error,
        }
    }
    Err(last_error)
}
