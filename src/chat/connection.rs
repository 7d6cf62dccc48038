//! A user's chat thread: keeps one IRC-over-WebSocket connection to Twitch, logs in, joins
//! the channels, answers PINGs and turns the user's own messages into color-change requests.
//! Does I/O, and only that: it reads a frame, hands it to `chat::link`, carries out the
//! `Step`s that come back, and asks `chat::reconnect` when to connect again. A logged-in
//! connection is known to `chat::watch`, which runs the color timer.

use crate::base::counters;
use crate::base::metrics::ReconnectReason;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use rand::RngExt;

use crate::base::backoff::BackoffPolicy;
use crate::base::clock::unix_now;
use crate::base::ids::Login;
use crate::base::stop::StopSignal;
use crate::chat::irc;
use crate::chat::link::{Link, LinkEnd, LinkTiming, Step};
use crate::chat::reconnect::{Ending, Reconnects, Refusal};
use crate::chat::session::{decide_own_message, JoinBudget, OwnMessageDecision};
use crate::chat::socket::{FrameSocket, Incoming};
use crate::chat::watch::{ChatWatch, WatchedLink};
use crate::config::SavedField;
use crate::status::UserState;
use crate::user::queue::ChangeQueue;
use crate::user::User;

/// How long chat waits for the token thread to deliver a usable token before it checks
/// again (it is woken at once when a token arrives or the daemon stops).
const TOKEN_RECHECK_INTERVAL: Duration = Duration::from_secs(300);

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
    let mut reconnects = Reconnects::new(settings.backoff);
    user.report_chat("IRC", &channels);
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
        let (ended, logged_in) =
            match FrameSocket::connect(&settings.irc_url, settings.tls.as_ref(), &stop) {
                Ok(socket) => {
                    let mut connection = Connection {
                        user: &user,
                        queue: &queue,
                        watch: &settings.watch,
                        socket,
                        watched: None,
                    };
                    let ended = connection.run(Link::new(
                        login.clone(),
                        user.user_id(),
                        channels.clone(),
                        LinkTiming::new(settings.keepalive),
                        &mut join_budget,
                        Instant::now(),
                    ));
                    (ended, connection.watched.is_some())
                }
                Err(reason) => (Ended::Lost(reason), false),
            };
        if stop.is_stopped() {
            break;
        }
        if logged_in {
            reconnects.logged_in();
        }
        let mut lost = None;
        // The token generation a refusal was about: a newer one ends the wait early.
        let mut refused_generation = None;
        let ending = match ended {
            Ended::Session(LinkEnd::ReconnectRequested, _) => {
                info!("{login}: Twitch asked to reconnect");
                report_reconnecting(&user, "Twitch asked to reconnect".into());
                Ending::ReconnectRequested
            }
            Ended::Session(LinkEnd::AuthRefused(text), generation) => {
                report_reconnecting(&user, format!("chat login refused: {text}"));
                refused_generation = Some(generation);
                on_refused(&user, reconnects.refused(), &text, generation)
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
                report_reconnecting(&user, "the machine slept".into());
                Ending::Slept
            }
        };
        counters::reconnect(match &ending {
            Ending::ReconnectRequested => ReconnectReason::Requested,
            Ending::Refused { .. } => ReconnectReason::LoginRefused,
            Ending::Lost { .. } | Ending::Slept => ReconnectReason::Lost,
        });
        let now = Instant::now();
        let next_attempt = reconnects.next_attempt(ending, started, now, rng.random());
        let wait = next_attempt.saturating_duration_since(now);
        if let Some(reason) = lost {
            warn!(
                "{login}: chat connection lost ({reason}); reconnecting in {:.1} s",
                wait.as_secs_f64()
            );
            report_reconnecting(&user, reason);
        }
        match refused_generation {
            // Backing off after a refusal: a token newer than the refused one (a new login,
            // a pasted token) is worth trying at once. Closing the cell at shutdown wakes it.
            Some(generation) if wait > settings.backoff.min_gap => {
                debug!("{login}: next chat login in {:.1} s", wait.as_secs_f64());
                if user.token.wait_replaced(generation, wait).is_some()
                    && stop.wait_until(started + settings.backoff.min_gap)
                {
                    break;
                }
            }
            _ => {
                if stop.wait_until(next_attempt) {
                    break;
                }
            }
        }
    }
    debug!("{login}: chat thread stopped");
}

/// Carries out what `Reconnects::refused` decided about a refused login: the first refusal
/// of an episode is reported to the token owner, whose new token is then waited for; when
/// none comes (the token validates, so the refusal is not about it) or a later refusal
/// comes, chat backs off, saying once what Twitch answered.
fn on_refused(user: &User, refusal: Refusal, text: &str, generation: u64) -> Ending {
    let login = &user.login;
    let retry_now = match refusal {
        Refusal::Report if user.token.report_rejected(generation) => {
            info!("{login}: Twitch refused the chat login ({text}); asking for a new token");
            user.token
                .wait_newer(generation, TOKEN_RECHECK_INTERVAL)
                .is_some()
        }
        Refusal::Report | Refusal::BackOff { first: true } => false,
        Refusal::BackOff { first: false } => {
            debug!("{login}: chat login refused again ({text})");
            return Ending::Refused { retry_now: false };
        }
    };
    if !retry_now {
        warn!("{login}: Twitch refused the chat login ({text}) and a new token cannot help now; retrying with a growing delay of up to 10 minutes; if this lasts, log in again with `twitch-colorchanger auth --user {login}` (scopes chat:read and user:manage:chat_color)");
    }
    Ending::Refused { retry_now }
}

fn report_reconnecting(user: &User, reason: String) {
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
            let timeout = link
                .next_deadline()
                .saturating_duration_since(Instant::now());
            let mut steps = match self.socket.read(timeout) {
                Ok(Incoming::Text(frame)) => link.on_frame(Instant::now(), &frame),
                Ok(Incoming::Traffic) => {
                    link.on_traffic(Instant::now());
                    Vec::new()
                }
                Ok(Incoming::TimedOut) => Vec::new(),
                Err(reason) => return self.lost(reason),
            };
            steps.extend(link.due(Instant::now()));
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
                    match self.socket.try_clone_tcp() {
                        Ok(tcp) => self.watched = Some(self.watch.logged_in(self.user, tcp)),
                        Err(error) => return Err(self.lost(format!("socket setup: {error}"))),
                    }
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

    /// Obeys a command or asks for a color change, as `decide_own_message` says.
    fn on_own_message(&self, text: &str) {
        let user = self.user;
        let login = &user.login;
        match decide_own_message(text, user.is_enabled(), user.is_prime_or_turbo()) {
            OwnMessageDecision::Change(request) => self.queue.request(user, request),
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
}
