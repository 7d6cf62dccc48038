//! The fake's EventSub WebSocket server; it does I/O (through `websocket_server`, which
//! accepts loopback TCP connections and runs one thread per connection plus one raw reader
//! thread, as for IRC).
//!
//! A connection gets `session_welcome` at once, `session_keepalive` whenever it sent nothing
//! for the keepalive window, and whatever tests order (notifications, `session_reconnect`,
//! revocations, close frames). A client connecting to a `reconnect_url` takes the old session
//! over with its subscriptions; the old connection is closed with 4004 after a grace period
//! unless the client closes it first. A session without a subscription one window after its
//! welcome is closed with 4003, and a client that sends a text or binary frame with 4001, as
//! Twitch does. Every frame a client sends is recorded.

use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::Sender;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message, WebSocket};

use crate::eventsub::{
    keepalive_message, welcome_message, ClientFrame, ConnectionTimers, EventSubCommand,
    EventSubConnectionEntry, SessionRecord, DEFAULT_KEEPALIVE_SECONDS, DEFAULT_RECONNECT_GRACE,
};
use crate::websocket_server::{self, read_message, send, BufferedSocket, Flow, Protocol};
use crate::{wire, Shared, State};

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

/// One open EventSub connection and the session it carries.
pub(crate) struct EventSubConnection {
    shared: Arc<Shared>,
    session_id: String,
    timers: ConnectionTimers,
}

impl Protocol for EventSubConnection {
    type Command = EventSubCommand;
    const NAME: &'static str = "eventsub";

    fn register(state: &mut State, commands: Sender<EventSubCommand>) -> Option<u64> {
        state.eventsub.n_connections_accepted += 1;
        let connection_id = state.new_connection_id();
        state.eventsub.connections.insert(
            connection_id,
            EventSubConnectionEntry {
                session_id: None,
                accepts_frames: true,
                commands,
            },
        );
        Some(connection_id)
    }

    fn unregister(state: &mut State, connection_id: u64) {
        state.eventsub.connection_ended(connection_id);
    }

    /// Opens or takes over the session and sends the welcome.
    fn open(
        connection_id: u64,
        shared: &Arc<Shared>,
        query: &str,
        websocket: &mut WebSocket<BufferedSocket>,
    ) -> Option<EventSubConnection> {
        let (session_id, timers) = open_session(connection_id, shared, &asked_in(query))?;
        let mut connection = EventSubConnection {
            shared: Arc::clone(shared),
            session_id,
            timers,
        };
        let welcome = {
            let mut state = shared.lock_state();
            state.eventsub.n_messages += 1;
            let message_id = wire::uuid_like(state.eventsub.n_messages, 0xe5e5);
            welcome_message(
                &message_id,
                &connection.session_id,
                connection.timers.keepalive.as_secs(),
            )
        };
        if send(websocket, Message::text(welcome)) == Flow::End {
            return None;
        }
        connection.timers.last_sent = Instant::now();
        Some(connection)
    }

    /// Handles every complete frame buffered so far (tungstenite's own answers are discarded
    /// while the session's owner is silent).
    fn read_available(&mut self, websocket: &mut WebSocket<BufferedSocket>) -> Flow {
        loop {
            let frame = match read_message(websocket, self.is_silent()) {
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
                Err(flow) => return flow,
            };
            let violation = matches!(frame, ClientFrame::Text(_) | ClientFrame::Binary(_));
            self.record_client_frame(frame);
            if violation {
                return close(websocket, 4001, "client sent inbound traffic");
            }
        }
    }

    fn on_command(
        &mut self,
        websocket: &mut WebSocket<BufferedSocket>,
        command: EventSubCommand,
    ) -> Flow {
        match command {
            EventSubCommand::Frame { frame, receiver } => {
                let sent_at = Instant::now();
                let flow = send(websocket, Message::text(frame.clone()));
                self.timers.last_sent = Instant::now();
                if let Some(receiver) = receiver {
                    self.record_sent(&receiver, sent_at, frame);
                }
                flow
            }
            EventSubCommand::Close { code, reason } => close(websocket, code, &reason),
            EventSubCommand::Superseded => {
                let grace = self
                    .shared
                    .lock_state()
                    .eventsub
                    .reconnect_grace
                    .unwrap_or(DEFAULT_RECONNECT_GRACE);
                self.timers.superseded_close_at = Some(Instant::now() + grace);
                Flow::Continue
            }
            EventSubCommand::Ping(payload) => {
                send(websocket, Message::Ping(payload.into_bytes().into()))
            }
            EventSubCommand::Drop => Flow::End,
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        Some(self.timers.next_deadline())
    }

    fn on_deadline(&mut self, websocket: &mut WebSocket<BufferedSocket>) -> Flow {
        let now = Instant::now();
        let timers = &mut self.timers;
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
                return send(websocket, Message::text(keepalive_message(&message_id)));
            }
        }
        Flow::Continue
    }
}

impl EventSubConnection {
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

/// Sends a close frame with `code`; the connection ends when the client answers or goes away.
fn close(websocket: &mut WebSocket<BufferedSocket>, code: u16, reason: &str) -> Flow {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason.to_string().into(),
    };
    websocket_server::close(websocket, Some(frame))
}
