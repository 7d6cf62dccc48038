//! In-process fake Twitch for integration tests and benchmarks; it does I/O (loopback sockets and
//! threads).
//!
//! [`FakeTwitch::start`] binds two servers on `127.0.0.1:0`:
//!
//! - an IRC-over-WebSocket server ([`FakeTwitch::irc_url`]) that logs accounts in with
//!   `PASS oauth:<token>` + `NICK <login>`, answers `CAP REQ`, `JOIN` and `PING` like Twitch does
//!   (several lines per frame included) and records every line it receives;
//! - an HTTP/1.1 keep-alive server for Helix ([`FakeTwitch::api_url`]) and OAuth
//!   ([`FakeTwitch::auth_url`]): chat color, users, token validation, refresh with rotating
//!   tokens and the device code flow. Every request is recorded before it is answered, and tests
//!   can script answers with [`FakeTwitch::push_response`].
//!
//! A test registers accounts, points the daemon at the URLs and then synchronises on what the
//! fake received, always with a timeout and never with a sleep:
//!
//! ```no_run
//! use fake_twitch::{Account, FakeTwitch};
//! use std::time::Duration;
//!
//! let twitch = FakeTwitch::start();
//! twitch.add_user(Account::new("alice", "1001"));
//! // ... start the daemon with twitch.irc_url(), twitch.api_url(), twitch.auth_url() ...
//! assert!(twitch.wait_joined("alice", "somechannel", Duration::from_secs(5)));
//! twitch.send_line("alice", &FakeTwitch::privmsg_line("alice", "1001", "Alice", "somechannel", "hi"));
//! let put = twitch
//!     .wait_request(|request| request.method == "PUT", Duration::from_secs(5))
//!     .expect("a color change");
//! assert_eq!(put.query_param("user_id"), Some("1001"));
//! ```
//!
//! [`FakeTwitch::start_tls`] starts the same servers behind TLS (`wss://` and `https://`) with a
//! certificate for `127.0.0.1` signed by a CA generated at start; a client trusts it through
//! [`FakeTwitch::ca_cert_pem`], for example written to a file named by `SSL_CERT_FILE`.
//!
//! Benchmarks measure latency from [`FakeTwitch::wait_frame_sent`] (the instant a frame ordered
//! with [`FakeTwitch::send_line`] went to the socket) to [`HttpRequest::at`].
//!
//! Tokens of the fake are made-up strings such as `at-alice`; refreshing rotates them to
//! `at-alice-2`, `rt-alice-2` and so on. Dropping the [`FakeTwitch`] wakes and joins every thread
//! it started, closing all connections.
//!
//! Wait helpers take a predicate that runs while the fake's state is locked: it must not call
//! back into the [`FakeTwitch`].

mod eventsub;
mod eventsub_server;
mod http_server;
mod irc_server;
mod routes;
mod tls;
mod websocket_server;
mod wire;

pub use eventsub::{ClientFrame, EventSubSubscription, CHAT_MESSAGE_TYPE, READ_CHAT_SCOPE};
pub use wire::NAMED_COLORS;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender};
use native_tls::TlsAcceptor;

use crate::tls::TlsMaterial;

/// A Twitch account known to the fake, with the credentials it currently accepts.
#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    /// Lower-case login, also the IRC nick.
    pub login: String,
    /// Numeric user id as Twitch gives it (a string).
    pub user_id: String,
    /// The access token IRC, validation and Helix accept.
    pub access_token: String,
    /// The refresh token `POST /oauth2/token` accepts.
    pub refresh_token: String,
    /// The client id Helix requires in `Client-Id` and refresh requires in the form.
    pub client_id: String,
    /// The client secret refresh requires (an empty one is not checked, like a public client).
    pub client_secret: String,
    /// The initial chat color: empty when never set, else `#RRGGBB` or a color name.
    pub color: String,
    /// Whether the account may use hex colors (Turbo or Prime).
    pub turbo: bool,
    /// The `expires_in` seconds reported by validation and token answers.
    pub expires_in: u64,
    /// The scopes its tokens carry (validation and refresh report them; Helix and EventSub
    /// check them).
    pub scopes: Vec<String>,
}

impl Account {
    /// This account as a user of twitch-colorchanger writes it in the config file (the
    /// access token with the `oauth:` prefix old token generators add).
    pub fn config_entry(&self, prime_or_turbo: bool, channels: &[&str]) -> serde_json::Value {
        serde_json::json!({
            "username": self.login,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "access_token": format!("oauth:{}", self.access_token),
            "refresh_token": self.refresh_token,
            "channels": channels,
            "is_prime_or_turbo": prime_or_turbo,
        })
    }

    /// An account with made-up credentials derived from the login (`at-<login>`,
    /// `rt-<login>`, `cid-<login>`, `cs-<login>`), no color, Turbo, 4 hours of token life,
    /// the scopes `chat:read` and `user:manage:chat_color` (IRC only: no `user:read:chat`).
    pub fn new(login: &str, user_id: &str) -> Account {
        Account {
            login: login.to_lowercase(),
            user_id: user_id.to_string(),
            access_token: format!("at-{login}"),
            refresh_token: format!("rt-{login}"),
            client_id: format!("cid-{login}"),
            client_secret: format!("cs-{login}"),
            color: String::new(),
            turbo: true,
            expires_in: 14400,
            scopes: wire::GRANTED_SCOPES.map(str::to_string).to_vec(),
        }
    }
}

impl fmt::Debug for Account {
    // Credentials stay out of Debug output, as everywhere else in the project.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Account")
            .field("login", &self.login)
            .field("user_id", &self.user_id)
            .field("color", &self.color)
            .field("turbo", &self.turbo)
            .field("expires_in", &self.expires_in)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// One HTTP request as the fake received it.
#[derive(Clone, Debug)]
pub struct HttpRequest {
    /// The method as sent (`GET`, `PUT`, ...).
    pub method: String,
    /// The path without the query (`/helix/chat/color`).
    pub path: String,
    /// The query as sent, still percent-encoded, without `?`.
    pub raw_query: String,
    /// The query pairs, percent-decoded, in order.
    pub query: Vec<(String, String)>,
    /// The headers in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body as text (lossy for non UTF-8 bytes).
    pub body: String,
    /// The decoded pairs of an `application/x-www-form-urlencoded` body, else empty.
    pub form: Vec<(String, String)>,
    /// When the request was completely read.
    pub at: Instant,
    /// Identifies the TCP connection that carried the request: equal ids mean a reused
    /// (keep-alive) connection.
    pub connection: u64,
}

impl HttpRequest {
    /// The first header of that name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header_name, _)| header_name.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The first decoded query parameter of that name.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        find_pair(&self.query, name)
    }

    /// Every decoded query parameter of that name, in order.
    pub fn query_params<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.query
            .iter()
            .filter(move |(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The first decoded form field of that name.
    pub fn form_param(&self, name: &str) -> Option<&str> {
        find_pair(&self.form, name)
    }
}

fn find_pair<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(pair_name, _)| pair_name == name)
        .map(|(_, value)| value.as_str())
}

/// An answer a test scripts for the next request to a method and path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptedResponse {
    /// HTTP status code.
    pub status: u16,
    /// Extra headers; `Content-Length` is always added by the fake.
    pub headers: Vec<(String, String)>,
    /// The body, sent as is.
    pub body: String,
    /// How long to stall before answering (the stall ends early when the fake is dropped).
    pub delay: Option<Duration>,
    /// Used only for a request whose body contains this text (one user's subscription, say);
    /// other requests pass it by in the queue.
    pub body_contains: Option<String>,
}

impl ScriptedResponse {
    /// An answer with that status and no body.
    pub fn status(code: u16) -> Self {
        ScriptedResponse {
            status: code,
            headers: Vec::new(),
            body: String::new(),
            delay: None,
            body_contains: None,
        }
    }

    /// An answer with that status and a JSON body.
    pub fn json(code: u16, body: &str) -> Self {
        ScriptedResponse {
            status: code,
            headers: vec![("Content-Type".to_string(), "application/json".to_string())],
            body: body.to_string(),
            delay: None,
            body_contains: None,
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Stalls this long before answering.
    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Answers only a request whose body contains `text`.
    pub fn when_body_contains(mut self, text: &str) -> Self {
        self.body_contains = Some(text.to_string());
        self
    }

    /// Whether this answer is meant for `request`.
    pub(crate) fn fits(&self, request: &HttpRequest) -> bool {
        self.body_contains
            .as_deref()
            .is_none_or(|text| request.body.contains(text))
    }
}

/// What the fake knows about one account, including credential state changed by tests and by
/// refreshes.
#[derive(Debug)]
pub(crate) struct AccountRecord {
    /// The account with its current tokens and client id.
    pub(crate) account: Account,
    pub(crate) access_token_expired: bool,
    pub(crate) refresh_token_revoked: bool,
    /// How many token pairs were issued, the first one included; names rotated tokens.
    pub(crate) token_generation: u64,
    /// Empty, a lower-case color name or `#RRGGBB`.
    pub(crate) current_color: String,
    pub(crate) ratelimit_remaining: u32,
    pub(crate) ratelimit_reset_unix_seconds: u64,
    /// The refresh token the last rotation replaced, and whether a test forgave its loss: it
    /// is accepted once more (see [`FakeTwitch::accept_replaced_refresh_token_once`]).
    pub(crate) replaced_refresh_token: Option<String>,
    pub(crate) replaced_refresh_token_forgiven: bool,
}

impl AccountRecord {
    fn new(account: Account) -> AccountRecord {
        let current_color = match wire::parse_requested_color(&account.color) {
            Some(wire::RequestedColor::Named(name)) => name,
            Some(wire::RequestedColor::Hex(hex)) => hex,
            None => account.color.clone(),
        };
        AccountRecord {
            account,
            access_token_expired: false,
            refresh_token_revoked: false,
            token_generation: 1,
            current_color,
            ratelimit_remaining: routes::RATELIMIT_LIMIT,
            ratelimit_reset_unix_seconds: 0,
            replaced_refresh_token: None,
            replaced_refresh_token_forgiven: false,
        }
    }

    pub(crate) fn accepts_access_token(&self, token: &str) -> bool {
        !self.access_token_expired && self.account.access_token == token
    }

    pub(crate) fn accepts_refresh_token(&self, token: &str) -> bool {
        let forgiven = self.replaced_refresh_token_forgiven
            && self.replaced_refresh_token.as_deref() == Some(token);
        forgiven || (!self.refresh_token_revoked && self.account.refresh_token == token)
    }

    /// Issues a new token pair; the previous access and refresh tokens stop working.
    pub(crate) fn rotate_tokens(&mut self) {
        self.token_generation += 1;
        self.replaced_refresh_token = Some(self.account.refresh_token.clone());
        self.replaced_refresh_token_forgiven = false;
        let login = &self.account.login;
        self.account.access_token = format!("at-{login}-{}", self.token_generation);
        self.account.refresh_token = format!("rt-{login}-{}", self.token_generation);
        self.access_token_expired = false;
        self.refresh_token_revoked = false;
    }
}

/// What the fake recorded about the IRC connections of one login.
#[derive(Debug, Default)]
pub(crate) struct IrcUserRecord {
    pub(crate) lines: Vec<String>,
    pub(crate) joins: Vec<(Instant, String)>,
    pub(crate) n_logins: usize,
    /// Chat logins refused so far, whatever the reason.
    pub(crate) n_refused_logins: usize,
    pub(crate) silent: bool,
    /// While set, every chat login of this user is refused with this notice, valid token or
    /// not (an account state chat refuses, a token without `chat:read`).
    pub(crate) refusal_notice: Option<String>,
    /// Frames ordered by tests, with the instant just before each was written to a socket.
    pub(crate) frames_sent: Vec<(Instant, String)>,
}

/// Orders a test gives to one live IRC connection thread.
#[derive(Debug)]
pub(crate) enum IrcConnectionCommand {
    /// Send this text frame.
    Frame(String),
    /// Send a close frame and close after the client's answer.
    Close,
    /// Shut the socket down without a close frame.
    Drop,
}

/// A live IRC connection, as test threads see it.
#[derive(Debug)]
pub(crate) struct IrcConnectionEntry {
    /// The NICK given on this connection, lower-cased.
    pub(crate) login: Option<String>,
    pub(crate) logged_in: bool,
    /// False once a close or drop was ordered, so later frames are not queued to it.
    pub(crate) accepts_frames: bool,
    pub(crate) commands: Sender<IrcConnectionCommand>,
}

/// One device code handed out by `POST /oauth2/device`.
#[derive(Debug)]
pub(crate) struct DeviceCodeRecord {
    pub(crate) device_code: String,
    pub(crate) user_code: String,
    pub(crate) client_id: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) approved_login: Option<String>,
    pub(crate) redeemed: bool,
}

/// Everything the fake's threads share, behind one mutex.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) shutting_down: bool,
    pub(crate) accounts: BTreeMap<String, AccountRecord>,
    pub(crate) irc_users: HashMap<String, IrcUserRecord>,
    pub(crate) irc_connections: HashMap<u64, IrcConnectionEntry>,
    pub(crate) n_irc_connections_accepted: usize,
    pub(crate) n_irc_refusals_pending: usize,
    /// WebSocket connections (chat or EventSub) still to be held without an answer.
    pub(crate) n_handshake_stalls_pending: usize,
    /// Connections held without an answer right now.
    pub(crate) n_stalled_open: usize,
    pub(crate) next_connection_id: u64,
    pub(crate) http_requests: Vec<HttpRequest>,
    pub(crate) n_http_requests_consumed: usize,
    pub(crate) scripted_responses: HashMap<(String, String), VecDeque<ScriptedResponse>>,
    /// Stalls for the next requests to a method and path, which still get the real answer.
    pub(crate) delays: HashMap<(String, String), VecDeque<Duration>>,
    /// Clones of live HTTP sockets, shut down on drop to wake their threads.
    pub(crate) http_streams: HashMap<u64, TcpStream>,
    pub(crate) device_codes: Vec<DeviceCodeRecord>,
    pub(crate) device_interval_seconds: u64,
    /// Polls of a pending device code still to be answered 400 "invalid device code".
    pub(crate) n_invalid_pending_polls: u32,
    pub(crate) eventsub: eventsub::EventSubState,
    /// Every refresh-token grant asked for, in arrival order, with Twitch's verdict.
    pub(crate) refreshes: Vec<RefreshOutcome>,
}

/// One `grant_type=refresh_token` request and how the fake answered it.
#[derive(Clone, Debug)]
pub struct RefreshOutcome {
    /// The account whose client id asked (None for an unknown client id).
    pub login: Option<String>,
    /// The refresh token presented.
    pub refresh_token: String,
    /// False when the answer was 400 "Invalid refresh token".
    pub accepted: bool,
    /// Accepted only because a test forgave the loss of the newest token
    /// ([`FakeTwitch::accept_replaced_refresh_token_once`]): the client had lost it.
    pub forgiven: bool,
    /// When the fake decided (and, when accepted, rotated the tokens).
    pub at: Instant,
}

impl State {
    pub(crate) fn account_by_user_id(&self, user_id: &str) -> Option<&AccountRecord> {
        self.accounts
            .values()
            .find(|record| record.account.user_id == user_id)
    }

    pub(crate) fn new_connection_id(&mut self) -> u64 {
        self.next_connection_id += 1;
        self.next_connection_id
    }
}

/// The state plus the means to wait for changes and to learn about shutdown.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Notified after every change of `state`.
    changed: Condvar,
    /// Never receives: it disconnects when the [`FakeTwitch`] drops its sender, which wakes
    /// every WebSocket connection thread blocked in `select!`.
    pub(crate) shutdown_receiver: Receiver<()>,
    /// Handles of connection threads, joined on drop.
    connection_threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    pub(crate) fn lock_state(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not make every later call panic too.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn notify_changed(&self) {
        self.changed.notify_all();
    }

    /// Runs `check` on the state until it returns something or the timeout passes.
    pub(crate) fn wait_until<T>(
        &self,
        timeout: Duration,
        mut check: impl FnMut(&mut State) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock_state();
        loop {
            if let Some(found) = check(&mut state) {
                return Some(found);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }

    /// Waits up to `duration`; returns true early when the fake is shutting down.
    pub(crate) fn wait_for_shutdown(&self, duration: Duration) -> bool {
        self.wait_until(duration, |state| state.shutting_down.then_some(()))
            .is_some()
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.lock_state().shutting_down
    }

    /// Accepts connections on `listener` until the fake shuts down; each one goes to `accept`
    /// with the state locked (the fake is not stopping then).
    pub(crate) fn accept_until_shutdown(
        &self,
        listener: &TcpListener,
        mut accept: impl FnMut(TcpStream, MutexGuard<'_, State>),
    ) {
        for incoming in listener.incoming() {
            let Ok(stream) = incoming else {
                if self.is_shutting_down() {
                    break;
                }
                continue;
            };
            // Answers go out as several small writes; Nagle's algorithm would hold each one
            // back until the client's delayed acknowledgement, adding tens of milliseconds.
            let _ = stream.set_nodelay(true);
            let state = self.lock_state();
            if state.shutting_down {
                break;
            }
            accept(stream, state);
        }
    }

    pub(crate) fn keep_thread(&self, handle: JoinHandle<()>) {
        let mut threads = self
            .connection_threads
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        // Finished threads need no join; dropping their handles keeps the list short in
        // benchmarks that open many connections.
        threads.retain(|thread| !thread.is_finished());
        threads.push(handle);
    }
}

/// The running fake: two servers on loopback plus what they recorded. Dropping it stops them.
pub struct FakeTwitch {
    shared: Arc<Shared>,
    irc_address: SocketAddr,
    http_address: SocketAddr,
    eventsub_address: SocketAddr,
    shutdown_sender: Option<Sender<()>>,
    listener_threads: Vec<JoinHandle<()>>,
    /// Set when the servers speak TLS.
    tls: Option<TlsMaterial>,
}

impl fmt::Debug for FakeTwitch {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("FakeTwitch")
            .field("irc_address", &self.irc_address)
            .field("http_address", &self.http_address)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

static PRIVMSG_COUNTER: AtomicU64 = AtomicU64::new(0);

fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

impl FakeTwitch {
    /// Starts the IRC WebSocket server and the HTTP server on `127.0.0.1:0`, without TLS.
    pub fn start() -> FakeTwitch {
        FakeTwitch::start_with(None)
    }

    /// Starts both servers behind TLS (`wss://`, `https://`) with a freshly generated test
    /// certificate; clients must trust [`FakeTwitch::ca_cert_pem`].
    pub fn start_tls() -> FakeTwitch {
        FakeTwitch::start_with(Some(TlsMaterial::generate()))
    }

    fn start_with(tls: Option<TlsMaterial>) -> FakeTwitch {
        let irc_listener = TcpListener::bind("127.0.0.1:0").expect("bind fake irc listener");
        let http_listener = TcpListener::bind("127.0.0.1:0").expect("bind fake http listener");
        let irc_address = irc_listener
            .local_addr()
            .expect("fake irc listener address");
        let http_address = http_listener
            .local_addr()
            .expect("fake http listener address");
        let eventsub_listener =
            TcpListener::bind("127.0.0.1:0").expect("bind fake eventsub listener");
        let eventsub_address = eventsub_listener
            .local_addr()
            .expect("fake eventsub listener address");
        let (shutdown_sender, shutdown_receiver) = crossbeam_channel::bounded(0);
        let mut state = State {
            device_interval_seconds: 5,
            delays: HashMap::new(),
            ..State::default()
        };
        let eventsub_scheme = if tls.is_some() { "wss" } else { "ws" };
        state.eventsub.base_url = format!("{eventsub_scheme}://{eventsub_address}/ws");
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            changed: Condvar::new(),
            shutdown_receiver,
            connection_threads: Mutex::new(Vec::new()),
        });
        let acceptor = || -> Option<TlsAcceptor> { tls.as_ref().map(|tls| tls.acceptor.clone()) };
        let irc_shared = Arc::clone(&shared);
        let irc_acceptor = acceptor();
        let irc_thread = thread::Builder::new()
            .name("fake-irc-accept".to_string())
            .spawn(move || {
                websocket_server::run_listener::<irc_server::IrcConnection>(
                    irc_listener,
                    irc_shared,
                    irc_acceptor,
                )
            })
            .expect("spawn fake irc listener thread");
        let http_shared = Arc::clone(&shared);
        let http_acceptor = acceptor();
        let http_thread = thread::Builder::new()
            .name("fake-http-accept".to_string())
            .spawn(move || http_server::run_listener(http_listener, http_shared, http_acceptor))
            .expect("spawn fake http listener thread");
        let eventsub_shared = Arc::clone(&shared);
        let eventsub_acceptor = acceptor();
        let eventsub_thread = thread::Builder::new()
            .name("fake-eventsub-accept".to_string())
            .spawn(move || {
                websocket_server::run_listener::<eventsub_server::EventSubConnection>(
                    eventsub_listener,
                    eventsub_shared,
                    eventsub_acceptor,
                )
            })
            .expect("spawn fake eventsub listener thread");
        FakeTwitch {
            shared,
            irc_address,
            http_address,
            eventsub_address,
            shutdown_sender: Some(shutdown_sender),
            listener_threads: vec![irc_thread, http_thread, eventsub_thread],
            tls,
        }
    }

    /// Whether the servers speak TLS ([`FakeTwitch::start_tls`]).
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The PEM-encoded CA certificate that signed the servers' certificate. Panics for a fake
    /// started without TLS, which has none.
    pub fn ca_cert_pem(&self) -> String {
        match &self.tls {
            Some(tls) => tls.ca_cert_pem.clone(),
            None => panic!("fake twitch was started without tls; use FakeTwitch::start_tls"),
        }
    }

    /// `ws://127.0.0.1:PORT` of the IRC server (`wss://` with TLS).
    pub fn irc_url(&self) -> String {
        let scheme = if self.is_tls() { "wss" } else { "ws" };
        format!("{scheme}://{}", self.irc_address)
    }

    /// `http://127.0.0.1:PORT/helix` (`https://` with TLS).
    pub fn api_url(&self) -> String {
        format!("{}/helix", self.http_base_url())
    }

    /// `http://127.0.0.1:PORT/oauth2` (`https://` with TLS).
    pub fn auth_url(&self) -> String {
        format!("{}/oauth2", self.http_base_url())
    }

    fn http_base_url(&self) -> String {
        let scheme = if self.is_tls() { "https" } else { "http" };
        format!("{scheme}://{}", self.http_address)
    }

    /// The IRC server's socket address.
    pub fn irc_address(&self) -> SocketAddr {
        self.irc_address
    }

    /// The HTTP server's socket address.
    pub fn http_address(&self) -> SocketAddr {
        self.http_address
    }

    /// Registers an account, replacing one with the same login.
    pub fn add_user(&self, account: Account) {
        let mut state = self.shared.lock_state();
        state
            .accounts
            .insert(account.login.clone(), AccountRecord::new(account));
        drop(state);
        self.shared.notify_changed();
    }

    // --- IRC side ---

    /// Waits until a logged-in connection of `login` sent `JOIN` for `channel` (with or without
    /// `#`), at any time since the start.
    pub fn wait_joined(&self, login: &str, channel: &str, timeout: Duration) -> bool {
        self.wait_n_joins(login, channel, 1, timeout)
    }

    /// Waits until `login` joined `channel` at least `n_joins` times (rejoins after reconnects).
    pub fn wait_n_joins(
        &self,
        login: &str,
        channel: &str,
        n_joins: usize,
        timeout: Duration,
    ) -> bool {
        let login = login.to_lowercase();
        let channel = wire::normalize_channel(channel);
        self.shared
            .wait_until(timeout, |state| {
                let joined = state.irc_users.get(&login).map_or(0, |record| {
                    record
                        .joins
                        .iter()
                        .filter(|(_, joined)| *joined == channel)
                        .count()
                });
                (joined >= n_joins).then_some(())
            })
            .is_some()
    }

    /// Waits until a connection of `login` logged in successfully at least once.
    pub fn wait_logged_in(&self, login: &str, timeout: Duration) -> bool {
        self.wait_n_logins(login, 1, timeout)
    }

    /// Waits until `login` logged in successfully at least `n_logins` times in total.
    pub fn wait_n_logins(&self, login: &str, n_logins: usize, timeout: Duration) -> bool {
        let login = login.to_lowercase();
        self.shared
            .wait_until(timeout, |state| {
                let done = state
                    .irc_users
                    .get(&login)
                    .map_or(0, |record| record.n_logins);
                (done >= n_logins).then_some(())
            })
            .is_some()
    }

    /// Forgets what was recorded so far — HTTP requests, lines received, JOINs and frames
    /// sent — keeping counts (logins, connections) and live state, so that a long test
    /// measuring memory does not see the fake's records grow.
    pub fn forget_history(&self) {
        let mut state = self.shared.lock_state();
        state.http_requests = Vec::new();
        state.n_http_requests_consumed = 0;
        for record in state.irc_users.values_mut() {
            record.lines = Vec::new();
            record.joins = Vec::new();
            record.frames_sent = Vec::new();
        }
    }

    /// Successful IRC logins of `login` so far.
    pub fn n_logins(&self, login: &str) -> usize {
        let state = self.shared.lock_state();
        state
            .irc_users
            .get(&login.to_lowercase())
            .map_or(0, |record| record.n_logins)
    }

    /// TCP connections the IRC server accepted so far, refused ones included.
    pub fn n_connections(&self) -> usize {
        self.shared.lock_state().n_irc_connections_accepted
    }

    /// Waits until the IRC server accepted at least `n_connections` TCP connections.
    pub fn wait_n_connections(&self, n_connections: usize, timeout: Duration) -> bool {
        self.shared
            .wait_until(timeout, |state| {
                (state.n_irc_connections_accepted >= n_connections).then_some(())
            })
            .is_some()
    }

    /// IRC connections of `login` (those that sent its NICK) whose thread still runs.
    pub fn n_live_connections(&self, login: &str) -> usize {
        let login = login.to_lowercase();
        let state = self.shared.lock_state();
        count_live_connections(&state, &login)
    }

    /// Waits until exactly `n_connections` connections of `login` are live (for example 0 after
    /// the daemon closed its old connection).
    pub fn wait_live_connections(
        &self,
        login: &str,
        n_connections: usize,
        timeout: Duration,
    ) -> bool {
        let login = login.to_lowercase();
        self.shared
            .wait_until(timeout, |state| {
                (count_live_connections(state, &login) == n_connections).then_some(())
            })
            .is_some()
    }

    /// Sends one IRC line as one text frame (`\r\n` added when missing) to every live logged-in
    /// connection of `login`; returns to how many.
    pub fn send_line(&self, login: &str, line: &str) -> usize {
        let frame = if line.ends_with("\r\n") {
            line.to_string()
        } else {
            format!("{line}\r\n")
        };
        self.send_frame(login, &frame)
    }

    /// Sends a raw text frame (it may hold several `\r\n`-separated lines) to every live
    /// logged-in connection of `login`; returns to how many.
    pub fn send_frame(&self, login: &str, frame: &str) -> usize {
        let login = login.to_lowercase();
        let state = self.shared.lock_state();
        let mut n_sent = 0;
        for entry in state.irc_connections.values() {
            if entry.logged_in && entry.accepts_frames && entry.login.as_deref() == Some(&login) {
                let command = IrcConnectionCommand::Frame(frame.to_string());
                if entry.commands.send(command).is_ok() {
                    n_sent += 1;
                }
            }
        }
        n_sent
    }

    /// Every frame ordered with [`FakeTwitch::send_line`] or [`FakeTwitch::send_frame`] for
    /// `login` that went out, with the instant just before it was written to the socket.
    pub fn frames_sent(&self, login: &str) -> Vec<(Instant, String)> {
        let state = self.shared.lock_state();
        state
            .irc_users
            .get(&login.to_lowercase())
            .map(|record| record.frames_sent.clone())
            .unwrap_or_default()
    }

    /// Waits until a frame for `login` matching `pred`, ordered with [`FakeTwitch::send_line`]
    /// or [`FakeTwitch::send_frame`], went out; returns the instant just before the newest such
    /// frame was written to the socket. Frames are written by the connection's own thread, a
    /// little after `send_line` returned: this instant is when the client could first see it.
    pub fn wait_frame_sent(
        &self,
        login: &str,
        pred: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Option<Instant> {
        let login = login.to_lowercase();
        self.shared.wait_until(timeout, |state| {
            let record = state.irc_users.get(&login)?;
            record
                .frames_sent
                .iter()
                .rev()
                .find(|(_, frame)| pred(frame))
                .map(|(at, _)| *at)
        })
    }

    /// A realistic tagged PRIVMSG line as Twitch delivers it (no trailing `\r\n`).
    pub fn privmsg_line(
        sender_login: &str,
        sender_id: &str,
        display_name: &str,
        channel: &str,
        text: &str,
    ) -> String {
        let channel = wire::normalize_channel(channel);
        let sent_at = unix_now();
        let counter = PRIVMSG_COUNTER.fetch_add(1, Ordering::Relaxed);
        let message_id = wire::uuid_like(counter, sent_at.as_nanos() as u64);
        format!(
            "@badge-info=;badges=;client-nonce={nonce};color=#0000FF;display-name={display};emotes=;\
             first-msg=0;flags=;id={message_id};mod=0;returning-chatter=0;room-id={room};\
             subscriber=0;tmi-sent-ts={ts};turbo=0;user-id={sender_id};user-type= \
             :{sender_login}!{sender_login}@{sender_login}.tmi.twitch.tv PRIVMSG #{channel} :{text}",
            nonce = message_id.replace('-', ""),
            display = wire::escape_tag_value(display_name),
            room = wire::room_id_for_channel(&channel),
            ts = sent_at.as_millis(),
        )
    }

    /// Shuts down the sockets of every connection of `login` without a close frame.
    pub fn drop_connections(&self, login: &str) -> usize {
        self.order_connections(login, || IrcConnectionCommand::Drop)
    }

    /// Sends a close frame on every connection of `login`; each closes after the client's answer.
    pub fn close_connections(&self, login: &str) -> usize {
        self.order_connections(login, || IrcConnectionCommand::Close)
    }

    fn order_connections(&self, login: &str, command: impl Fn() -> IrcConnectionCommand) -> usize {
        let login = login.to_lowercase();
        let mut state = self.shared.lock_state();
        let mut n_ordered = 0;
        for entry in state.irc_connections.values_mut() {
            if entry.login.as_deref() == Some(&login) && entry.accepts_frames {
                entry.accepts_frames = false;
                if entry.commands.send(command()).is_ok() {
                    n_ordered += 1;
                }
            }
        }
        n_ordered
    }

    /// While silent, connections of `login` record what they read but answer nothing, not even
    /// WebSocket pongs; frames sent with [`FakeTwitch::send_line`] still go out.
    pub fn set_silent(&self, login: &str, silent: bool) {
        let mut state = self.shared.lock_state();
        state
            .irc_users
            .entry(login.to_lowercase())
            .or_default()
            .silent = silent;
    }

    /// While `notice` is set, chat refuses every login of `login` with `NOTICE * :<notice>`
    /// and closes, even with a valid token; `None` lets logins through again.
    pub fn refuse_chat_logins(&self, login: &str, notice: Option<&str>) {
        let mut state = self.shared.lock_state();
        state
            .irc_users
            .entry(login.to_lowercase())
            .or_default()
            .refusal_notice = notice.map(str::to_string);
    }

    /// Chat logins of `login` refused so far, for a bad token or by `refuse_chat_logins`.
    pub fn n_refused_logins(&self, login: &str) -> usize {
        let state = self.shared.lock_state();
        state
            .irc_users
            .get(&login.to_lowercase())
            .map_or(0, |record| record.n_refused_logins)
    }

    /// Waits until chat refused at least `n_refusals` logins of `login` in total.
    pub fn wait_n_refused_logins(&self, login: &str, n_refusals: usize, timeout: Duration) -> bool {
        let login = login.to_lowercase();
        self.shared
            .wait_until(timeout, |state| {
                let refused = state
                    .irc_users
                    .get(&login)
                    .map_or(0, |record| record.n_refused_logins);
                (refused >= n_refusals).then_some(())
            })
            .is_some()
    }

    /// Closes the next `n_connections` accepted TCP connections at once, before the WebSocket
    /// handshake.
    pub fn refuse_connections(&self, n_connections: usize) {
        self.shared.lock_state().n_irc_refusals_pending = n_connections;
    }

    /// Holds the next `n_connections` accepted WebSocket connections (chat or EventSub)
    /// without ever answering: no TLS, no WebSocket handshake, until the client gives up
    /// or the fake stops.
    pub fn stall_handshakes(&self, n_connections: usize) {
        self.shared.lock_state().n_handshake_stalls_pending = n_connections;
    }

    /// Waits until exactly `n` connections are held by [`Self::stall_handshakes`].
    pub fn wait_n_stalled_open(&self, n: usize, timeout: Duration) -> bool {
        self.shared
            .wait_until(timeout, |state| (state.n_stalled_open == n).then_some(()))
            .is_some()
    }

    /// Waits until at least `n` different users have logged in to chat.
    pub fn wait_n_users_logged_in(&self, n: usize, timeout: Duration) -> bool {
        self.shared
            .wait_until(timeout, |state| {
                let logged_in = state
                    .irc_users
                    .values()
                    .filter(|record| record.n_logins > 0)
                    .count();
                (logged_in >= n).then_some(())
            })
            .is_some()
    }

    /// How many connections [`Self::stall_handshakes`] holds right now.
    pub fn n_stalled_open(&self) -> usize {
        self.shared.lock_state().n_stalled_open
    }

    /// Every line received from connections of `login`, the lines sent before its NICK included.
    pub fn lines_from(&self, login: &str) -> Vec<String> {
        let state = self.shared.lock_state();
        state
            .irc_users
            .get(&login.to_lowercase())
            .map(|record| record.lines.clone())
            .unwrap_or_default()
    }

    /// Waits for the first line from `login` (since the start, not consumed) matching `pred`.
    pub fn wait_line_from(
        &self,
        login: &str,
        pred: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Option<String> {
        let login = login.to_lowercase();
        self.shared.wait_until(timeout, |state| {
            let record = state.irc_users.get(&login)?;
            record.lines.iter().find(|line| pred(line)).cloned()
        })
    }

    /// Waits until `n_lines` lines from `login` match `pred`; returns the matching lines found
    /// (fewer on timeout).
    pub fn wait_lines_from(
        &self,
        login: &str,
        pred: impl Fn(&str) -> bool,
        n_lines: usize,
        timeout: Duration,
    ) -> Vec<String> {
        let login = login.to_lowercase();
        let matching = |state: &State| -> Vec<String> {
            state.irc_users.get(&login).map_or_else(Vec::new, |record| {
                record
                    .lines
                    .iter()
                    .filter(|line| pred(line))
                    .cloned()
                    .collect()
            })
        };
        self.shared
            .wait_until(timeout, |state| {
                let found = matching(state);
                (found.len() >= n_lines).then_some(found)
            })
            .unwrap_or_else(|| matching(&self.shared.lock_state()))
    }

    /// Each channel JOIN received from `login`, with when (channel without `#`).
    pub fn join_times(&self, login: &str) -> Vec<(Instant, String)> {
        let state = self.shared.lock_state();
        state
            .irc_users
            .get(&login.to_lowercase())
            .map(|record| record.joins.clone())
            .unwrap_or_default()
    }

    // --- HTTP side ---

    /// The next recorded request not yet consumed, waiting for one if needed.
    pub fn next_request(&self, timeout: Duration) -> Option<HttpRequest> {
        self.wait_request(|_| true, timeout)
    }

    /// Consumes recorded requests in arrival order until one matches `pred`.
    pub fn wait_request(
        &self,
        pred: impl Fn(&HttpRequest) -> bool,
        timeout: Duration,
    ) -> Option<HttpRequest> {
        self.shared.wait_until(timeout, |state| {
            while state.n_http_requests_consumed < state.http_requests.len() {
                let request = &state.http_requests[state.n_http_requests_consumed];
                state.n_http_requests_consumed += 1;
                if pred(request) {
                    return Some(request.clone());
                }
            }
            None
        })
    }

    /// Every request recorded so far, consumed or not.
    pub fn requests(&self) -> Vec<HttpRequest> {
        self.shared.lock_state().http_requests.clone()
    }

    /// Every recorded `PUT /helix/chat/color` request.
    pub fn color_puts(&self) -> Vec<HttpRequest> {
        let state = self.shared.lock_state();
        state
            .http_requests
            .iter()
            .filter(|request| is_color_put(request))
            .cloned()
            .collect()
    }

    /// Waits until at least `n_puts` color PUTs were recorded; returns all of them (fewer on
    /// timeout).
    pub fn wait_color_puts(&self, n_puts: usize, timeout: Duration) -> Vec<HttpRequest> {
        self.shared.wait_until(timeout, |state| {
            let n_found = state
                .http_requests
                .iter()
                .filter(|r| is_color_put(r))
                .count();
            (n_found >= n_puts).then_some(())
        });
        self.color_puts()
    }

    /// Queues an answer for the next request with this method and path (without query); queued
    /// answers are used first-in first-out, one per request, before the default behaviour
    /// (an answer `when_body_contains` waits for a request it fits).
    pub fn push_response(&self, method: &str, path: &str, response: ScriptedResponse) {
        let key = (method.to_ascii_uppercase(), path.to_string());
        let mut state = self.shared.lock_state();
        state
            .scripted_responses
            .entry(key)
            .or_default()
            .push_back(response);
    }

    /// Stalls the next request with this method and path (without query) for `delay` before
    /// it gets its real answer (the one computed when it arrived, so a refresh has rotated
    /// the tokens by then): a slow Twitch that still does what was asked.
    pub fn delay_next(&self, method: &str, path: &str, delay: Duration) {
        let key = (method.to_ascii_uppercase(), path.to_string());
        let mut state = self.shared.lock_state();
        state.delays.entry(key).or_default().push_back(delay);
    }

    /// The color last set through a successful PUT, else the initial one: empty, a lower-case
    /// name or upper-case `#RRGGBB`. Empty for an unknown user id.
    pub fn current_color(&self, user_id: &str) -> String {
        let state = self.shared.lock_state();
        state
            .account_by_user_id(user_id)
            .map(|record| record.current_color.clone())
            .unwrap_or_default()
    }

    // --- token control ---

    /// The current access token of `login` stops working for IRC login, validation and Helix.
    pub fn expire_access_token(&self, login: &str) {
        self.with_account(login, |record| record.access_token_expired = true);
    }

    /// The tokens of `login` grant only `scopes` from now on (validation says so, and Helix
    /// refuses a color change without `user:manage:chat_color` with 401, as Twitch does).
    pub fn set_scopes(&self, login: &str, scopes: &[&str]) {
        let scopes = scopes.iter().map(|scope| scope.to_string()).collect();
        self.with_account(login, |record| record.account.scopes = scopes);
    }

    /// The current refresh token of `login` stops working.
    pub fn revoke_refresh_token(&self, login: &str) {
        self.with_account(login, |record| record.refresh_token_revoked = true);
    }

    /// Forgives the loss of the newest refresh token of `login`: the one its last rotation
    /// replaced is accepted once more, until the next rotation. For a crash test whose
    /// process was killed after Twitch rotated the tokens and before the answer reached it,
    /// a loss no client can prevent.
    pub fn accept_replaced_refresh_token_once(&self, login: &str) {
        self.with_account(login, |record| {
            record.replaced_refresh_token_forgiven = true
        });
    }

    /// Every refresh-token grant asked for so far, in arrival order.
    pub fn refreshes(&self) -> Vec<RefreshOutcome> {
        self.shared.lock_state().refreshes.clone()
    }

    /// Waits until `pred` holds for the refresh grants asked for so far; returns them (None
    /// on timeout).
    pub fn wait_refreshes(
        &self,
        pred: impl Fn(&[RefreshOutcome]) -> bool,
        timeout: Duration,
    ) -> Option<Vec<RefreshOutcome>> {
        self.shared.wait_until(timeout, |state| {
            pred(&state.refreshes).then(|| state.refreshes.clone())
        })
    }

    /// Waits until no HTTP connection is open: after a client was killed, every request it
    /// had sent has been answered (and its tokens rotated). False on timeout.
    pub fn wait_http_idle(&self, timeout: Duration) -> bool {
        self.shared
            .wait_until(timeout, |state| state.http_streams.is_empty().then_some(()))
            .is_some()
    }

    /// The current access token of `login` (valid or not).
    pub fn access_token(&self, login: &str) -> String {
        self.with_account(login, |record| record.account.access_token.clone())
    }

    /// The current refresh token of `login` (valid or not).
    pub fn refresh_token(&self, login: &str) -> String {
        self.with_account(login, |record| record.account.refresh_token.clone())
    }

    /// The account as the fake currently knows it (rotated tokens, client id from a device flow).
    pub fn account(&self, login: &str) -> Account {
        self.with_account(login, |record| record.account.clone())
    }

    fn with_account<T>(&self, login: &str, action: impl FnOnce(&mut AccountRecord) -> T) -> T {
        let mut state = self.shared.lock_state();
        let record = state
            .accounts
            .get_mut(&login.to_lowercase())
            .unwrap_or_else(|| panic!("fake twitch has no account {login}"));
        let result = action(record);
        drop(state);
        self.shared.notify_changed();
        result
    }

    // --- device code flow ---

    /// Approves the pending device code shown as `user_code` for the account `login`; its next
    /// token poll gets a fresh token pair of that account.
    pub fn approve_device(&self, user_code: &str, login: &str) {
        let login = login.to_lowercase();
        let mut state = self.shared.lock_state();
        assert!(
            state.accounts.contains_key(&login),
            "fake twitch has no account {login}"
        );
        let record = state
            .device_codes
            .iter_mut()
            .find(|record| record.user_code == user_code)
            .unwrap_or_else(|| panic!("fake twitch issued no user code {user_code}"));
        record.approved_login = Some(login);
        drop(state);
        self.shared.notify_changed();
    }

    /// The user codes issued so far, oldest first.
    pub fn device_user_codes(&self) -> Vec<String> {
        let state = self.shared.lock_state();
        state
            .device_codes
            .iter()
            .map(|record| record.user_code.clone())
            .collect()
    }

    /// Waits until a device code was issued and returns the newest user code.
    pub fn wait_device_user_code(&self, timeout: Duration) -> Option<String> {
        self.shared.wait_until(timeout, |state| {
            state
                .device_codes
                .last()
                .map(|record| record.user_code.clone())
        })
    }

    /// The `interval` the device endpoint tells clients to poll at (default 5, 0 allowed).
    pub fn set_device_interval(&self, seconds: u64) {
        self.shared.lock_state().device_interval_seconds = seconds;
    }

    /// The next `n_polls` polls of a device code nobody approved yet are answered 400
    /// "invalid device code" instead of "authorization_pending", as Twitch has done for codes
    /// that could still be approved (twitchdev/issues#971).
    pub fn answer_pending_polls_invalid(&self, n_polls: u32) {
        self.shared.lock_state().n_invalid_pending_polls = n_polls;
    }
}

fn count_live_connections(state: &State, login: &str) -> usize {
    state
        .irc_connections
        .values()
        .filter(|entry| entry.login.as_deref() == Some(login))
        .count()
}

fn is_color_put(request: &HttpRequest) -> bool {
    request.method.eq_ignore_ascii_case("PUT") && request.path == "/helix/chat/color"
}

impl Drop for FakeTwitch {
    fn drop(&mut self) {
        let http_streams = {
            let mut state = self.shared.lock_state();
            state.shutting_down = true;
            std::mem::take(&mut state.http_streams)
        };
        // Stalled scripted answers wait on the condition variable; HTTP threads block in reads
        // of their sockets; IRC threads wait in `select!` on the shutdown channel.
        self.shared.notify_changed();
        for stream in http_streams.values() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        drop(self.shutdown_sender.take());
        // A listener blocked in accept() only wakes up for a connection: make one to each.
        for address in [self.irc_address, self.http_address, self.eventsub_address] {
            let _ = TcpStream::connect(address);
        }
        for handle in self.listener_threads.drain(..) {
            let _ = handle.join();
        }
        let connection_threads = std::mem::take(
            &mut *self
                .shared
                .connection_threads
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        for handle in connection_threads {
            let _ = handle.join();
        }
    }
}
