//! The fake's EventSub WebSocket server; it does I/O (accepts loopback TCP connections and runs
//! one thread per connection plus one raw reader thread, like the IRC server whose transport it
//! reuses).
//!
//! A connection gets `session_welcome` at once, `session_keepalive` whenever it sent nothing
//! for the keepalive window, and whatever tests order (notifications, `session_reconnect`,
//! revocations, close frames). A client connecting to a `reconnect_url` takes the old session
//! over with its subscriptions; the old connection is closed with 4004 after a grace period
//! unless the client closes it first. A session without a subscription one window after its
//! welcome is closed with 4003, and a client that sends a text or binary frame with 4001, as
//! Twitch does. Every frame a client sends is recorded.

use std::io;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use crossbeam_channel::{select, Receiver};
use native_tls::TlsAcceptor;
use tungstenite::handshake::server::{Request, Response};
use tungstenite::handshake::HandshakeError;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message, WebSocket};

use crate::eventsub::{
    keepalive_message, welcome_message, ClientFrame, ConnectionTimers, EventSubCommand,
    EventSubConnectionEntry, SessionRecord, DEFAULT_KEEPALIVE_SECONDS, DEFAULT_RECONNECT_GRACE,
};
use crate::irc_server::{accept_tls, forward_raw_bytes, BufferedSocket, Transport};
use crate::{wire, Shared};

/// Accepts connections until the fake shuts down; with `tls`, every connection starts with a TLS
/// handshake.
pub(crate) fn run_listener(listener: TcpListener, shared: Arc<Shared>, tls: Option<TlsAcceptor>) {
    for incoming in listener.incoming() {
        let Ok(stream) = incoming else {
            if shared.is_shutting_down() {
                break;
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (command_sender, command_receiver) = crossbeam_channel::unbounded();
        let mut state = shared.lock_state();
        if state.shutting_down {
            break;
        }
        state.eventsub.n_connections_accepted += 1;
        let connection_id = state.new_connection_id();
        state.eventsub.connections.insert(
            connection_id,
            EventSubConnectionEntry {
                session_id: None,
                accepts_frames: true,
                commands: command_sender,
            },
        );
        drop(state);
        shared.notify_changed();
        let connection_shared = Arc::clone(&shared);
        let connection_tls = tls.clone();
        let spawned = thread::Builder::new()
            .name(format!("fake-eventsub-{connection_id}"))
            .spawn(move || {
                run_connection(
                    connection_id,
                    stream,
                    connection_tls.as_ref(),
                    &connection_shared,
                    &command_receiver,
                );
                connection_shared
                    .lock_state()
                    .eventsub
                    .connection_ended(connection_id);
                connection_shared.notify_changed();
            });
        match spawned {
            Ok(handle) => shared.keep_thread(handle),
            Err(_) => shared.lock_state().eventsub.connection_ended(connection_id),
        }
    }
}

fn run_connection(
    connection_id: u64,
    stream: TcpStream,
    tls: Option<&TlsAcceptor>,
    shared: &Arc<Shared>,
    commands: &Receiver<EventSubCommand>,
) {
    let (Ok(reader_stream), Ok(control_stream)) = (stream.try_clone(), stream.try_clone()) else {
        return;
    };
    let (bytes_sender, bytes_receiver) = crossbeam_channel::bounded(64);
    let reader = thread::Builder::new()
        .name(format!("fake-eventsub-read-{connection_id}"))
        .spawn(move || forward_raw_bytes(reader_stream, &bytes_sender));
    let transport = match (&reader, tls) {
        (Err(_), _) => None,
        (Ok(_), None) => Some(Transport::Plain(stream)),
        (Ok(_), Some(acceptor)) => {
            accept_tls(acceptor, stream, &bytes_receiver, commands, shared).map(Transport::Tls)
        }
    };
    if let Some(transport) = transport {
        serve(
            connection_id,
            shared,
            BufferedSocket::new(transport),
            &bytes_receiver,
            commands,
        );
    }
    let _ = control_stream.shutdown(Shutdown::Both);
    drop(bytes_receiver);
    if let Ok(reader) = reader {
        let _ = reader.join();
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    End,
}

/// What the client asked for in the URL's query.
#[derive(Debug, Default)]
struct Asked {
    keepalive_seconds: Option<u64>,
    reconnect_of: Option<String>,
}

fn asked_in(query: &str) -> Asked {
    let mut asked = Asked::default();
    for (name, value) in wire::parse_urlencoded(query) {
        match name.as_str() {
            // Twitch answers a numeric but out-of-range value with the nearest allowed one.
            "keepalive_timeout_seconds" => {
                asked.keepalive_seconds = value.parse::<u64>().ok().map(|n| n.clamp(10, 600));
            }
            "reconnect_of" => asked.reconnect_of = Some(value),
            _ => {}
        }
    }
    asked
}

fn serve(
    connection_id: u64,
    shared: &Arc<Shared>,
    socket: BufferedSocket,
    bytes_receiver: &Receiver<Vec<u8>>,
    commands: &Receiver<EventSubCommand>,
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
            recv(commands) -> _ => return,
            recv(shutdown_receiver) -> _ => return,
        }
        handshake = interrupted.handshake();
    };
    websocket.get_mut().handshake_pending = false;
    let asked = asked_in(&query);
    let Some((session_id, mut timers)) = open_session(connection_id, shared, &asked) else {
        return;
    };
    let mut connection = Connection {
        shared: Arc::clone(shared),
        session_id,
    };
    let welcome = {
        let mut state = shared.lock_state();
        state.eventsub.n_messages += 1;
        let message_id = wire::uuid_like(state.eventsub.n_messages, 0xe5e5);
        welcome_message(
            &message_id,
            &connection.session_id,
            timers.keepalive.as_secs(),
        )
    };
    if send_text(&mut websocket, welcome) == Flow::End {
        return;
    }
    timers.last_sent = Instant::now();
    if connection.read_available(&mut websocket) == Flow::End {
        return;
    }
    loop {
        let timeout = timers
            .next_deadline()
            .saturating_duration_since(Instant::now());
        let flow = select! {
            recv(bytes_receiver) -> bytes => {
                websocket.get_mut().push_incoming(bytes.ok());
                connection.read_available(&mut websocket)
            }
            recv(commands) -> command => match command {
                Ok(EventSubCommand::Frame { frame, receiver }) => {
                    let sent_at = Instant::now();
                    let flow = send_text(&mut websocket, frame.clone());
                    timers.last_sent = Instant::now();
                    if let Some(receiver) = receiver {
                        connection.record_sent(&receiver, sent_at, frame);
                    }
                    flow
                }
                Ok(EventSubCommand::Close { code, reason }) => close(&mut websocket, code, &reason),
                Ok(EventSubCommand::Superseded) => {
                    let grace = shared.lock_state().eventsub.reconnect_grace.unwrap_or(DEFAULT_RECONNECT_GRACE);
                    timers.superseded_close_at = Some(Instant::now() + grace);
                    Flow::Continue
                }
                Ok(EventSubCommand::Ping(payload)) => send_ping(&mut websocket, payload),
                Ok(EventSubCommand::Drop) | Err(_) => Flow::End,
            },
            recv(shutdown_receiver) -> _ => Flow::End,
            default(timeout) => connection.on_deadline(&mut websocket, &mut timers),
        };
        if flow == Flow::End {
            return;
        }
    }
}

/// Creates the session of a new connection, or moves the session named by `reconnect_of` onto
/// it (telling the old connection it was superseded). `None` when the fake is stopping.
fn open_session(
    connection_id: u64,
    shared: &Shared,
    asked: &Asked,
) -> Option<(String, ConnectionTimers)> {
    let mut state = shared.lock_state();
    if state.shutting_down {
        return None;
    }
    let keepalive_seconds = state
        .eventsub
        .keepalive_override
        .or(asked.keepalive_seconds)
        .unwrap_or(DEFAULT_KEEPALIVE_SECONDS);
    let keepalive = std::time::Duration::from_secs(keepalive_seconds);
    let now = Instant::now();
    let carried_over = asked
        .reconnect_of
        .as_ref()
        .filter(|session_id| state.eventsub.is_live(session_id))
        .cloned();
    let session_id = match carried_over {
        Some(session_id) => {
            let session = state
                .eventsub
                .sessions
                .get_mut(&session_id)
                .expect("a live session");
            let old_connection = std::mem::replace(&mut session.connection_id, connection_id);
            if let Some(old) = state.eventsub.connections.get(&old_connection) {
                let _ = old.commands.send(EventSubCommand::Superseded);
            }
            session_id
        }
        None => {
            state.eventsub.n_sessions_created += 1;
            let session_id = format!(
                "AgoQ{}",
                wire::uuid_like(state.eventsub.n_sessions_created, 0x5e55).replace('-', "")
            );
            state.eventsub.sessions.insert(
                session_id.clone(),
                SessionRecord {
                    connection_id,
                    connected: true,
                },
            );
            session_id
        }
    };
    if let Some(entry) = state.eventsub.connections.get_mut(&connection_id) {
        entry.session_id = Some(session_id.clone());
    }
    let subscribe_by =
        (!state.eventsub.has_enabled_subscription(&session_id)).then(|| now + keepalive);
    drop(state);
    shared.notify_changed();
    Some((
        session_id,
        ConnectionTimers {
            keepalive,
            last_sent: now,
            subscribe_by,
            superseded_close_at: None,
        },
    ))
}

struct Connection {
    shared: Arc<Shared>,
    session_id: String,
}

impl Connection {
    /// Handles every complete frame buffered so far; tungstenite answers pings and close
    /// frames itself during these reads (unless the session's owner is silent).
    fn read_available(&mut self, websocket: &mut WebSocket<BufferedSocket>) -> Flow {
        loop {
            websocket.get_mut().discard_writes = self.is_silent();
            let message = websocket.read();
            websocket.get_mut().discard_writes = false;
            let frame = match message {
                Ok(Message::Ping(_)) => ClientFrame::Ping,
                Ok(Message::Pong(payload)) => {
                    let payload = String::from_utf8_lossy(&payload).into_owned();
                    self.shared
                        .lock_state()
                        .eventsub
                        .pong_payloads
                        .push(payload);
                    ClientFrame::Pong
                }
                Ok(Message::Text(text)) => ClientFrame::Text(text.as_str().to_string()),
                Ok(Message::Binary(bytes)) => ClientFrame::Binary(bytes.len()),
                Ok(Message::Close(close_frame)) => {
                    ClientFrame::Close(close_frame.map(|frame| u16::from(frame.code)))
                }
                Ok(Message::Frame(_)) => continue,
                Err(tungstenite::Error::Io(error)) if error.kind() == io::ErrorKind::WouldBlock => {
                    return Flow::Continue;
                }
                Err(_) => return Flow::End,
            };
            let violation = matches!(frame, ClientFrame::Text(_) | ClientFrame::Binary(_));
            self.record_client_frame(frame);
            if violation {
                return close(websocket, 4001, "client sent inbound traffic");
            }
        }
    }

    fn on_deadline(
        &mut self,
        websocket: &mut WebSocket<BufferedSocket>,
        timers: &mut ConnectionTimers,
    ) -> Flow {
        let now = Instant::now();
        if timers.superseded_close_at.is_some_and(|at| at <= now) {
            timers.superseded_close_at = None;
            return close(websocket, 4004, "reconnect grace time expired");
        }
        if let Some(subscribe_by) = timers.subscribe_by {
            if self
                .shared
                .lock_state()
                .eventsub
                .has_enabled_subscription(&self.session_id)
            {
                timers.subscribe_by = None;
            } else if subscribe_by <= now {
                timers.subscribe_by = None;
                return close(websocket, 4003, "connection unused");
            }
        }
        if timers.last_sent + timers.keepalive <= now {
            timers.last_sent = now;
            if !self.is_silent() {
                let message_id = {
                    let mut state = self.shared.lock_state();
                    state.eventsub.n_messages += 1;
                    wire::uuid_like(state.eventsub.n_messages, 0xe5e5)
                };
                return send_text(websocket, keepalive_message(&message_id));
            }
        }
        Flow::Continue
    }

    fn is_silent(&self) -> bool {
        self.shared
            .lock_state()
            .eventsub
            .is_silent(&self.session_id)
    }

    fn record_client_frame(&self, frame: ClientFrame) {
        let mut state = self.shared.lock_state();
        state
            .eventsub
            .client_frames
            .push((self.session_id.clone(), frame));
        drop(state);
        self.shared.notify_changed();
    }

    /// Notifications count as frames sent to their receiver, as IRC lines ordered by tests
    /// do, so that latency is measured the same way for both transports.
    fn record_sent(&self, receiver: &str, sent_at: Instant, frame: String) {
        let mut state = self.shared.lock_state();
        state
            .irc_users
            .entry(receiver.to_string())
            .or_default()
            .frames_sent
            .push((sent_at, frame));
        drop(state);
        self.shared.notify_changed();
    }
}

fn send_text(websocket: &mut WebSocket<BufferedSocket>, frame: String) -> Flow {
    if !websocket.can_write() {
        return Flow::Continue;
    }
    match websocket.send(Message::text(frame)) {
        Ok(()) => Flow::Continue,
        Err(_) => Flow::End,
    }
}

fn send_ping(websocket: &mut WebSocket<BufferedSocket>, payload: String) -> Flow {
    if !websocket.can_write() {
        return Flow::Continue;
    }
    match websocket.send(Message::Ping(payload.into_bytes().into())) {
        Ok(()) => Flow::Continue,
        Err(_) => Flow::End,
    }
}

/// Sends a close frame with `code`; the connection ends when the client answers or goes away.
fn close(websocket: &mut WebSocket<BufferedSocket>, code: u16, reason: &str) -> Flow {
    if !websocket.can_write() {
        return Flow::Continue;
    }
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason.to_string().into(),
    };
    match websocket.close(Some(frame)) {
        Ok(()) => Flow::Continue,
        Err(_) => Flow::End,
    }
}
