//! A user's chat thread: keeps one IRC-over-WebSocket connection to Twitch, logs in, joins
//! the channels, answers PINGs and turns the user's own messages into color-change requests.
//! Does I/O; every decision is made by `chat::session` and `base::backoff`.

use std::collections::VecDeque;
use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, error, info, warn};
use rand::RngExt;
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Connector, Message, WebSocket};

use crate::base::backoff::BackoffPolicy;
use crate::base::clock::unix_now;
use crate::base::ids::Login;
use crate::base::stop::{SocketRegistration, StopSignal};
use crate::chat::irc;
use crate::chat::session::{decide_own_message, Action, JoinBudget, OwnMessageDecision, Session};
use crate::color::ChangeRequest;
use crate::status::UserState;
use crate::user::queue::ChangeQueue;
use crate::user::User;
use serde_json::Value;

/// How long an unanswered PING of ours may wait before the connection counts as dead.
const MAX_PING_GRACE: Duration = Duration::from_secs(30);
/// Time allowed for TCP connect and for the TLS and WebSocket handshakes.
const CHAT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long chat waits for the token thread to deliver a usable token before it checks
/// again (it is woken at once when a token arrives or the daemon stops).
const TOKEN_RECHECK_INTERVAL: Duration = Duration::from_secs(300);
/// At most this many channels go in one JOIN line.
const CHANNELS_PER_JOIN: usize = 20;
/// Bytes a chat connection reads from its socket at a time. Twitch frames are IRC lines of a
/// few hundred bytes; a longer frame still arrives whole, in several reads. tungstenite's
/// default of 128 KiB is zero-filled before every read and cost each user about 100 KiB of
/// resident memory (measured with examples/bench: 100 users 26.9 → 16.5 MiB).
const WEBSOCKET_READ_BUFFER_SIZE: usize = 4 * 1024;

/// What a chat thread needs besides its user.
#[derive(Clone)]
pub struct ChatSettings {
    pub irc_url: String,
    /// The one TLS context every `wss://` connection uses. Building one parses the whole CA
    /// bundle (about 0.9 MiB and 30 ms each, measured), so it is built once per process;
    /// `None` for `ws://`.
    pub tls: Option<native_tls::TlsConnector>,
    pub keepalive: Duration,
    pub backoff: BackoffPolicy,
}

type Socket = WebSocket<MaybeTlsStream<TcpStream>>;

/// How one connection ended.
#[derive(Debug)]
enum Ended {
    /// The server sent RECONNECT.
    ReconnectRequested,
    /// Twitch refused the token of this generation at login.
    AuthFailed(String, u64),
    /// Anything else: refused connect, TLS error, drop, close, silence.
    Lost(String),
}

/// Runs the chat side of one user until `stop` fires, reconnecting after every loss.
pub fn run_chat(
    user: Arc<User>,
    channels: Vec<Login>,
    settings: ChatSettings,
    queue: ChangeQueue,
    stop: StopSignal,
) {
    let login = user.login.clone();
    let mut rng = rand::rng();
    let mut join_budget = JoinBudget::default();
    let mut n_failures = 0u32;
    while !stop.is_stopped() {
        let (token, generation) = user.token.current();
        if token.is_empty() {
            // The token thread is logging the user in; chat starts once it has a token.
            debug!("{login}: waiting for a token before connecting to chat");
            if user
                .token
                .wait_newer(generation, TOKEN_RECHECK_INTERVAL)
                .is_none()
            {
                continue;
            }
        }
        let started = Instant::now();
        let ended = match connect(&settings.irc_url, settings.tls.as_ref(), &stop) {
            Ok((socket, _registration)) => {
                let mut connection = Connection {
                    user: &user,
                    channels: &channels,
                    settings: &settings,
                    queue: &queue,
                    join_budget: &mut join_budget,
                    socket,
                };
                connection.run()
            }
            Err(reason) => Ended::Lost(reason),
        };
        if stop.is_stopped() {
            break;
        }
        let reason = match &ended {
            Ended::ReconnectRequested => "Twitch asked to reconnect".to_string(),
            Ended::AuthFailed(text, _) => format!("chat login refused: {text}"),
            Ended::Lost(reason) => reason.clone(),
        };
        user.report_state(UserState::Reconnecting {
            since_unix: unix_now(),
            reason,
        });
        let now = Instant::now();
        let backoff = &settings.backoff;
        let next_attempt = match ended {
            Ended::ReconnectRequested => {
                info!("{login}: Twitch asked to reconnect");
                n_failures = 0;
                started + backoff.min_gap
            }
            Ended::AuthFailed(text, generation) => {
                n_failures = backoff.failures_after(n_failures, now - started);
                if user.token.report_rejected(generation) {
                    info!(
                        "{login}: Twitch refused the chat login ({text}); waiting for a new token"
                    );
                    if user
                        .token
                        .wait_newer(generation, TOKEN_RECHECK_INTERVAL)
                        .is_some()
                    {
                        n_failures = 0;
                    }
                    started + backoff.min_gap
                } else {
                    error!("{login}: Twitch refused the chat login ({text}); get a new token with scopes chat:read and user:manage:chat_color");
                    backoff.next_attempt_at(started, now, n_failures, rng.random())
                }
            }
            Ended::Lost(reason) => {
                n_failures = backoff.failures_after(n_failures, now - started);
                let next = backoff.next_attempt_at(started, now, n_failures, rng.random());
                warn!(
                    "{login}: chat connection lost ({reason}); reconnecting in {:.1} s",
                    next.saturating_duration_since(now).as_secs_f64()
                );
                next
            }
        };
        if stop.wait_until(next_attempt) {
            break;
        }
    }
    debug!("{login}: chat thread stopped");
}

/// Builds the TLS context chat connections share, when `irc_url` is `wss://`.
pub fn tls_for(irc_url: &str) -> Result<Option<native_tls::TlsConnector>, native_tls::Error> {
    if irc_url.starts_with("wss://") {
        native_tls::TlsConnector::new().map(Some)
    } else {
        Ok(None)
    }
}

/// Opens the TCP, TLS (for wss://) and WebSocket layers; the socket is registered with the
/// stop signal so that a shutdown wakes the blocked reader.
fn connect(
    url: &str,
    tls: Option<&native_tls::TlsConnector>,
    stop: &StopSignal,
) -> Result<(Socket, SocketRegistration), String> {
    let request = url
        .into_client_request()
        .map_err(|error| format!("bad IRC URL {url}: {error}"))?;
    let uri = request.uri();
    let secure = match uri.scheme_str() {
        Some("wss") => true,
        Some("ws") => false,
        _ => return Err(format!("IRC URL {url} must start with wss:// or ws://")),
    };
    let host = uri
        .host()
        .ok_or_else(|| format!("IRC URL {url} has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
    let tcp =
        connect_tcp(&host, port).map_err(|error| format!("connect to {host}:{port}: {error}"))?;
    let registration = stop
        .register(&tcp)
        .map_err(|error| format!("socket setup: {error}"))?;
    tcp.set_nodelay(true).ok();
    tcp.set_read_timeout(Some(CHAT_CONNECT_TIMEOUT)).ok();
    tcp.set_write_timeout(Some(CHAT_CONNECT_TIMEOUT)).ok();
    let websocket_config = WebSocketConfig::default().read_buffer_size(WEBSOCKET_READ_BUFFER_SIZE);
    let connector = match (secure, tls) {
        (true, Some(tls)) => Connector::NativeTls(tls.clone()),
        (true, None) => return Err(format!("IRC URL {url} needs TLS, but none was set up")),
        (false, _) => Connector::Plain,
    };
    let (socket, _response) =
        tungstenite::client_tls_with_config(request, tcp, Some(websocket_config), Some(connector))
            .map_err(|error| format!("handshake with {host}:{port}: {error}"))?;
    Ok((socket, registration))
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

fn tcp_of(socket: &Socket) -> &TcpStream {
    match socket.get_ref() {
        MaybeTlsStream::NativeTls(tls) => tls.get_ref(),
        MaybeTlsStream::Plain(tcp) => tcp,
        // MaybeTlsStream is non-exhaustive; we only ever build the two kinds above.
        _ => unreachable!("only plain and native-tls streams are built"),
    }
}

/// One live connection and what it is waiting for.
struct Connection<'a> {
    user: &'a Arc<User>,
    channels: &'a [Login],
    settings: &'a ChatSettings,
    queue: &'a ChangeQueue,
    join_budget: &'a mut JoinBudget,
    socket: Socket,
}

impl Connection<'_> {
    fn run(&mut self) -> Ended {
        let login = self.user.login.clone();
        let (token, generation) = self.user.token.current();
        for line in [
            irc::cap_line(),
            irc::pass_line(token.expose()),
            irc::nick_line(&login),
        ] {
            if let Err(ended) = self.send(line) {
                return ended;
            }
        }
        let mut session = Session::new(login.clone(), self.user.user_id());
        let mut pending_joins: VecDeque<Login> = VecDeque::new();
        let mut join_at: Option<Instant> = None;
        let mut last_traffic = Instant::now();
        let mut ping_sent_at: Option<Instant> = None;
        let ping_grace = self.settings.keepalive.min(MAX_PING_GRACE);
        // The optional timer starts once logged in, when the user id is known.
        let mut timer_at: Option<Instant> = None;
        loop {
            let silence_deadline = match ping_sent_at {
                None => last_traffic + self.settings.keepalive,
                Some(sent) => sent + ping_grace,
            };
            let deadline = [join_at, timer_at]
                .into_iter()
                .flatten()
                .fold(silence_deadline, Instant::min);
            let timeout = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1));
            if let Err(error) = tcp_of(&self.socket).set_read_timeout(Some(timeout)) {
                return Ended::Lost(format!("socket setup: {error}"));
            }
            match self.socket.read() {
                Ok(Message::Text(frame)) => {
                    last_traffic = Instant::now();
                    ping_sent_at = None;
                    for line in irc::split_frame(frame.as_str()) {
                        match session.on_line(line) {
                            Action::Ignore => {}
                            Action::Reply(reply) => {
                                if let Err(ended) = self.send(reply) {
                                    return ended;
                                }
                            }
                            Action::LoggedIn { user_id, color } => {
                                if let Some(user_id) = user_id {
                                    info!("{login}: logged in to chat (user id {user_id})");
                                    self.user.set_user_id(user_id);
                                } else {
                                    warn!("{login}: logged in, but Twitch sent no user id; own messages cannot be recognised");
                                }
                                self.user.set_current_color(color);
                                self.user.report_state(UserState::Connected {
                                    since_unix: unix_now(),
                                });
                                pending_joins = self.channels.iter().cloned().collect();
                                join_at = Some(Instant::now());
                                timer_at = self
                                    .user
                                    .color_settings()
                                    .change_every
                                    .map(|every| Instant::now() + every);
                            }
                            Action::Joined { channel } => info!("{login}: joined #{channel}"),
                            Action::OwnMessage { channel, text } => {
                                debug!("{login}: own message in #{channel}");
                                self.on_own_message(&text);
                            }
                            Action::AuthFailed { text } => {
                                return Ended::AuthFailed(text, generation)
                            }
                            Action::ReconnectRequested => return Ended::ReconnectRequested,
                            Action::Notice { channel, text } => {
                                info!("{login}: notice in #{channel}: {text}")
                            }
                        }
                    }
                }
                Ok(Message::Close(_)) => return Ended::Lost("closed by the server".into()),
                Ok(_) => {
                    last_traffic = Instant::now();
                    ping_sent_at = None;
                }
                Err(tungstenite::Error::Io(error))
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(error) => {
                    return Ended::Lost(match error {
                        tungstenite::Error::ConnectionClosed
                        | tungstenite::Error::AlreadyClosed => "connection closed".to_string(),
                        other => other.to_string(),
                    })
                }
            }
            let now = Instant::now();
            if timer_at.is_some_and(|at| at <= now) {
                // The interval is read again each time: a config edit may have changed it.
                timer_at = self
                    .user
                    .color_settings()
                    .change_every
                    .map(|every| now + every);
                if self.user.is_enabled() {
                    debug!("{login}: timer change");
                    self.queue.request(self.user, ChangeRequest::Auto);
                }
            }
            if join_at.is_some_and(|at| at <= now) {
                join_at = match self.send_joins(&mut pending_joins, now) {
                    Ok(next) => next,
                    Err(ended) => return ended,
                };
            }
            match ping_sent_at {
                None if now >= last_traffic + self.settings.keepalive => {
                    debug!(
                        "{login}: quiet for {:?}, sending PING",
                        self.settings.keepalive
                    );
                    if let Err(ended) = self.send("PING :tmi.twitch.tv".to_string()) {
                        return ended;
                    }
                    ping_sent_at = Some(now);
                }
                Some(sent) if now >= sent + ping_grace => {
                    return Ended::Lost(format!("no answer to PING within {ping_grace:?}"));
                }
                _ => {}
            }
        }
    }

    /// Obeys a command or asks for a color change, as `decide_own_message` says.
    fn on_own_message(&self, text: &str) {
        let user = self.user;
        let login = &user.login;
        match decide_own_message(text, user.is_enabled(), user.is_prime_or_turbo()) {
            OwnMessageDecision::Change(request) => self.queue.request(user, request),
            OwnMessageDecision::SetEnabled(enabled) => {
                user.set_enabled(enabled);
                user.save_field("enabled", Value::Bool(enabled));
                if enabled {
                    info!("{login}: automatic color changes on (cce)");
                } else {
                    info!("{login}: automatic color changes off (ccd); cce turns them on again");
                }
            }
            OwnMessageDecision::Refuse(reason) => info!("{login}: {reason}"),
            OwnMessageDecision::Ignore => {}
        }
    }

    /// Sends as many pending JOINs as the budget allows; returns when to try the rest.
    fn send_joins(
        &mut self,
        pending: &mut VecDeque<Login>,
        now: Instant,
    ) -> Result<Option<Instant>, Ended> {
        let granted = self.join_budget.take(now, pending.len());
        let batch: Vec<Login> = pending.drain(..granted).collect();
        for line in irc::join_lines(&batch, CHANNELS_PER_JOIN) {
            self.send(line)?;
        }
        if pending.is_empty() {
            Ok(None)
        } else {
            let next = self.join_budget.next_free_at(now).unwrap_or(now);
            info!(
                "{}: {} channels wait for Twitch's join limit",
                self.user.login,
                pending.len()
            );
            Ok(Some(next))
        }
    }

    fn send(&mut self, line: String) -> Result<(), Ended> {
        debug!("{}: > {}", self.user.login, irc::line_for_log(&line));
        self.socket
            .send(Message::text(line))
            .map_err(|error| match error {
                tungstenite::Error::Io(io) => Ended::Lost(format!("write failed: {io}")),
                other => Ended::Lost(other.to_string()),
            })
    }
}
