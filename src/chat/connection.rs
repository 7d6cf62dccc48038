//! A user's chat thread: keeps one IRC-over-WebSocket connection to Twitch, logs in, joins
//! the channels, answers PINGs and turns the user's own messages into color-change requests.
//! Does I/O, and only that: it reads a frame, hands it to `chat::link`, carries out the
//! `Step`s that come back, and asks `chat::reconnect` when to connect again. A logged-in
//! connection is known to `chat::watch`, which runs the color timer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use rand::RngExt;

use crate::base::backoff::BackoffPolicy;
use crate::base::clock::unix_now;
use crate::base::counters;
use crate::base::ids::Login;
use crate::base::stop::StopSignal;
use crate::chat::dialer::Dialer;
use crate::chat::eventsub::{choose_transport, Transport};
use crate::chat::eventsub_connection::{run_eventsub, EventSubExit, EventSubShared};
use crate::chat::irc;
use crate::chat::link::{Link, LinkEnd, LinkTiming, Step};
use crate::chat::reconnect::{Ending, Reconnects, Refusal};
use crate::chat::session::{decide_own_message, JoinBudget, OwnMessageDecision};
use crate::chat::socket::FrameSocket;
use crate::chat::watch::{ChatWatch, WatchedLink};
use crate::config::{ChatTransport, SavedField};
use crate::status::UserState;
use crate::twitch::helix::Helix;
use crate::user::queue::ChangeQueue;
use crate::user::User;

/// How long chat waits for the token thread to deliver a usable token before it checks
/// again (it is woken at once when a token arrives or the daemon stops).
const TOKEN_RECHECK_INTERVAL: Duration = Duration::from_secs(300);

/// What a chat thread needs besides its user.
#[derive(Clone)]
pub struct ChatSettings {
    pub irc_url: String,
    /// Chat over EventSub (`wss://eventsub.wss.twitch.tv/ws`).
    pub eventsub_url: String,
    /// Helix, for EventSub's subscriptions, channel ids and the current color.
    pub helix: Arc<Helix>,
    /// Channel ids resolved so far and the permits that keep EventSub's Helix setup calls
    /// a few at a time, shared by every user of the process.
    pub eventsub: EventSubShared,
    /// Opens the connections (TCP, TLS, WebSocket handshake) on the dialer threads.
    pub dialer: Dialer,
    pub keepalive: Duration,
    pub backoff: BackoffPolicy,
    /// Runs the color timers and notices when the machine slept.
    pub watch: ChatWatch,
}

/// How one connection ended.
#[derive(Debug)]
enum Ended {
    /// The session ended it (RECONNECT, a refused login, an unanswered PING); a refusal
    /// names the token generation that was refused.
    Session(LinkEnd, u64),
    /// The socket ended it: refused connect, TLS error, drop, close.
    Lost(String),
    /// The chat watch closed it because the machine slept.
    Slept,
}

/// How long `auto` waits for the token thread's first validation to learn the token's
/// scopes; after that it chooses IRC.
const SCOPES_WAIT: Duration = Duration::from_secs(60);

/// Runs the chat side of one user until `stop` fires, reconnecting after every loss. This is
/// the transport seam: `transport` (with the token's scopes, for `auto`) decides whether the
/// user's chat is read over EventSub (`chat::eventsub_connection`) or over IRC (the loop
/// below); a missing scope under `auto` falls back from EventSub to IRC.
pub fn run_chat(
    user: Arc<User>,
    channels: Vec<Login>,
    settings: ChatSettings,
    queue: ChangeQueue,
    stop: StopSignal,
    transport: ChatTransport,
) {
    let login = user.login.clone();
    if choose(&user, transport, &stop) == Transport::EventSub {
        let fall_back_allowed = transport == ChatTransport::Auto;
        match run_eventsub(
            &user,
            &channels,
            &settings,
            &queue,
            &stop,
            fall_back_allowed,
        ) {
            EventSubExit::Stopped => return,
            EventSubExit::FallBackToIrc => info!("{login}: chat over IRC from now on"),
        }
    }
    user.report_chat("IRC", &channels);
    let reconnects = Reconnects::new(settings.backoff);
    ChatThread {
        user,
        channels,
        settings,
        queue,
        stop,
        join_budget: JoinBudget::default(),
        reconnects,
        rng: rand::rng(),
    }
    .run();
}

/// One user's chat thread: what lives across its connections.
struct ChatThread {
    user: Arc<User>,
    channels: Vec<Login>,
    settings: ChatSettings,
    queue: ChangeQueue,
    stop: StopSignal,
    /// Reconnects count against Twitch's join limit too.
    join_budget: JoinBudget,
    reconnects: Reconnects,
    rng: rand::rngs::ThreadRng,
}

/// When to connect again, and whether a new token may end the wait early.
struct NextAttempt {
    at: Instant,
    /// The token generation chat refused: a newer token is worth trying at once.
    refused_generation: Option<u64>,
}

impl ChatThread {
    /// Connects, serves the connection until it ends, waits as `Reconnects` says; again.
    fn run(mut self) {
        while !self.stop.is_stopped() {
            if !self.has_token() {
                continue;
            }
            let started = Instant::now();
            let (ended, logged_in) = self.connect_and_serve();
            if self.stop.is_stopped() {
                break;
            }
            let next = self.after(ended, logged_in, started);
            if self.wait(&next, started) {
                break;
            }
        }
        debug!("{}: chat thread stopped", self.user.login);
    }

    /// True when there is a token to log in with; otherwise waits a while for one (the
    /// token refresher is logging the user in).
    fn has_token(&self) -> bool {
        let (token, generation) = self.user.token.current();
        if !token.is_empty() {
            return true;
        }
        debug!(
            "{}: waiting for a token before connecting to chat",
            self.user.login
        );
        self.user
            .token
            .wait_newer(generation, TOKEN_RECHECK_INTERVAL)
            .is_some()
    }

    /// One connection from connect to its end; also whether it had logged in.
    fn connect_and_serve(&mut self) -> (Ended, bool) {
        let settings = &self.settings;
        let socket = match settings.dialer.dial(&settings.irc_url, &self.stop) {
            Ok(socket) => socket,
            Err(reason) => return (Ended::Lost(reason), false),
        };
        let mut connection = Connection {
            user: &self.user,
            queue: &self.queue,
            watch: &settings.watch,
            stop: &self.stop,
            socket,
            watched: None,
        };
        let ended = connection.run(Link::new(
            self.user.login.clone(),
            self.user.user_id(),
            self.channels.clone(),
            LinkTiming::new(settings.keepalive),
            &mut self.join_budget,
            Instant::now(),
        ));
        (ended, connection.watched.is_some())
    }

    /// Logs and reports how a connection attempted at `started` ended, and asks
    /// `Reconnects` when to try again.
    fn after(&mut self, ended: Ended, logged_in: bool, started: Instant) -> NextAttempt {
        let user = &self.user;
        let login = &user.login;
        if logged_in {
            self.reconnects.logged_in();
        }
        let mut lost = None;
        let mut refused_generation = None;
        let ending = match ended {
            Ended::Session(LinkEnd::ReconnectRequested, _) => {
                info!("{login}: Twitch asked to reconnect");
                report_reconnecting(user, "Twitch asked to reconnect".into());
                Ending::ReconnectRequested
            }
            Ended::Session(LinkEnd::AuthRefused(text), generation) => {
                report_reconnecting(user, format!("chat login refused: {text}"));
                refused_generation = Some(generation);
                on_refused(
                    user,
                    self.reconnects.refused(),
                    &text,
                    generation,
                    "the chat login",
                    "chat:read and user:manage:chat_color",
                )
            }
            Ended::Session(LinkEnd::PingUnanswered(grace), _) => {
                lost = Some(format!("no answer to PING within {grace:?}"));
                Ending::Lost { logged_in }
            }
            Ended::Lost(reason) => {
                lost = Some(reason);
                Ending::Lost { logged_in }
            }
            Ended::Slept => {
                info!("{login}: reconnecting to chat after the machine slept");
                report_reconnecting(user, "the machine slept".into());
                Ending::Slept
            }
        };
        counters::reconnect(ending.metric_reason());
        let now = Instant::now();
        let at = self
            .reconnects
            .next_attempt(ending, started, now, self.rng.random());
        if let Some(reason) = lost {
            warn!(
                "{login}: chat connection lost ({reason}); reconnecting in {:.1} s",
                at.saturating_duration_since(now).as_secs_f64()
            );
            report_reconnecting(user, reason);
        }
        NextAttempt {
            at,
            refused_generation,
        }
    }

    /// Waits for the next attempt; true when the daemon stopped meanwhile.
    fn wait(&self, next: &NextAttempt, started: Instant) -> bool {
        wait_for_attempt(
            &self.user,
            &self.stop,
            self.settings.backoff.min_gap,
            (next.at, next.refused_generation),
            started,
        )
    }
}

/// Waits until `at`, the next connection attempt of either transport; true when the daemon
/// stopped meanwhile. Backing off after a refusal of token `refused_generation`, a newer
/// token (a new login, a pasted token) is worth trying at once, `min_gap` after `started`;
/// closing the cell at shutdown wakes the wait too.
pub(super) fn wait_for_attempt(
    user: &User,
    stop: &StopSignal,
    min_gap: Duration,
    (at, refused_generation): (Instant, Option<u64>),
    started: Instant,
) -> bool {
    let wait = at.saturating_duration_since(Instant::now());
    match refused_generation {
        Some(generation) if wait > min_gap => {
            debug!(
                "{}: next chat login in {:.1} s",
                user.login,
                wait.as_secs_f64()
            );
            if user.token.wait_replaced(generation, wait).is_some() {
                return stop.wait_until(started + min_gap);
            }
            // The wait ran out, or the cell was closed because the user stops.
            stop.is_stopped()
        }
        _ => stop.wait_until(at),
    }
}

/// Carries out what `Reconnects::refused` decided about a refused login, for either
/// transport: the first refusal of an episode is reported to the token owner, whose new
/// token is then waited for; when none comes (the token validates, so the refusal is not
/// about it) or a later refusal comes, chat backs off, saying once what Twitch answered.
/// `refused` names what was refused ("the chat login"), `scopes` the scopes it needs.
pub(super) fn on_refused(
    user: &User,
    refusal: Refusal,
    text: &str,
    generation: u64,
    refused: &str,
    scopes: &str,
) -> Ending {
    let login = &user.login;
    let retry_now = match refusal {
        Refusal::Report if user.token.report_rejected(generation) => {
            info!("{login}: Twitch refused {refused} ({text}); asking for a new token");
            user.token
                .wait_newer(generation, TOKEN_RECHECK_INTERVAL)
                .is_some()
        }
        Refusal::Report | Refusal::BackOff { first: true } => false,
        Refusal::BackOff { first: false } => {
            debug!("{login}: Twitch refused {refused} again ({text})");
            return Ending::Refused { retry_now: false };
        }
    };
    if !retry_now {
        warn!("{login}: Twitch refused {refused} ({text}) and a new token cannot help now; retrying with a growing delay of up to 10 minutes; if this lasts, log in again with `twitch-colorchanger auth --user {login}` (scopes {scopes})");
    }
    Ending::Refused { retry_now }
}

/// Chooses the transport and says which at start. Under `auto` this waits for a token and
/// for the token thread to validate it, since its scopes decide.
fn choose(user: &User, configured: ChatTransport, stop: &StopSignal) -> Transport {
    let login = &user.login;
    let scopes = if configured == ChatTransport::Auto {
        loop {
            let (token, generation) = user.token.current();
            if stop.is_stopped() || !token.is_empty() {
                break;
            }
            let _ = user.token.wait_newer(generation, TOKEN_RECHECK_INTERVAL);
        }
        user.token.wait_scopes(SCOPES_WAIT)
    } else {
        None
    };
    let (transport, why) = choose_transport(configured, scopes.as_deref());
    match transport {
        Transport::EventSub => info!("{login}: chat over EventSub ({why})"),
        Transport::Irc => info!("{login}: chat over IRC ({why})"),
    }
    transport
}

pub(crate) fn report_reconnecting(user: &User, reason: String) {
    user.report_state(UserState::Reconnecting {
        since_unix: unix_now(),
        reason,
    });
}

/// One live connection: the user it serves and the socket.
struct Connection<'a> {
    user: &'a Arc<User>,
    queue: &'a ChangeQueue,
    watch: &'a ChatWatch,
    /// The user's stop signal, with which the socket is registered.
    stop: &'a StopSignal,
    socket: FrameSocket,
    /// Set once logged in; dropping it tells the watch the connection ended.
    watched: Option<WatchedLink>,
}

impl Connection<'_> {
    /// Logs in, then reads and dispatches until the connection ends.
    fn run(&mut self, mut link: Link<'_>) -> Ended {
        let (token, generation) = self.user.token.current();
        let steps = link.login_steps(&token);
        drop(token);
        if let Err(ended) = self.carry_out(steps, generation) {
            return ended;
        }
        loop {
            let steps = match self.socket.next_steps(&mut link) {
                Ok(steps) => steps,
                Err(reason) => return self.lost(reason),
            };
            if let Err(ended) = self.carry_out(steps, generation) {
                return ended;
            }
        }
    }

    /// How a connection that the socket ended ended.
    fn lost(&self, reason: String) -> Ended {
        match &self.watched {
            Some(watched) if watched.closed_after_sleep() => Ended::Slept,
            _ => Ended::Lost(reason),
        }
    }

    /// Carries out the session's steps in order; `Err` when one ends the connection.
    fn carry_out(&mut self, steps: Vec<Step>, generation: u64) -> Result<(), Ended> {
        let login = &self.user.login;
        for step in steps {
            match step {
                Step::Send(line) => {
                    debug!("{login}: > {}", irc::line_for_log(&line));
                    if let Err(reason) = self.socket.send(line) {
                        return Err(self.lost(reason));
                    }
                }
                Step::LoggedIn { user_id, color } => {
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
                    self.watched = Some(self.watch.logged_in(self.user, self.stop));
                }
                Step::Joined { channel } => info!("{login}: joined #{channel}"),
                Step::JoinsWaiting { n_waiting } => {
                    info!("{login}: {n_waiting} channels wait for Twitch's join limit");
                }
                Step::OwnMessage { channel, text } => {
                    debug!("{login}: own message in #{channel}");
                    self.on_own_message(&text);
                }
                Step::Notice { channel, text } => info!("{login}: notice in #{channel}: {text}"),
                Step::End(end) => return Err(Ended::Session(end, generation)),
            }
        }
        Ok(())
    }

    fn on_own_message(&self, text: &str) {
        act_on_own_message(self.user, self.queue, text);
    }
}

/// Obeys a command or asks for a color change, as `decide_own_message` says; the same for
/// every chat transport.
pub(crate) fn act_on_own_message(user: &Arc<User>, queue: &ChangeQueue, text: &str) {
    let login = &user.login;
    match decide_own_message(text, user.is_enabled(), user.is_prime_or_turbo()) {
        OwnMessageDecision::Change(request) => queue.request(user, request),
        OwnMessageDecision::SetEnabled(enabled) => {
            user.set_enabled(enabled);
            user.save(SavedField::Enabled(enabled));
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
