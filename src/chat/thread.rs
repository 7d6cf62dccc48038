//! A user's chat thread, whichever the transport: connect, serve the connection until it ends,
//! wait as `chat::reconnect` decides, again. This is the one reconnect loop: generic over a
//! [`Connector`] (`irc::connection::Irc`, `eventsub::connection::EventSub`), so a fix to
//! waiting for a token, to a refusal or to the backoff is made once, for both. Also what both
//! do with one of the user's own messages. Does I/O: it waits, logs and reports; every
//! decision is `chat::reconnect`'s or `chat::own_message`'s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, error, info, warn};
use rand::RngExt;

use crate::base::backoff::BackoffPolicy;
use crate::base::clock::unix_now;
use crate::base::counters;
use crate::base::ids::Login;
use crate::base::stop::StopSignal;
use crate::chat::net::dialer::Dialer;
use crate::chat::net::watch::ChatWatch;
use crate::chat::own_message::{decide_own_message, OwnMessageDecision};
use crate::chat::reconnect::{Attempt, ConnectionEnd, Reconnects, Refusal};
use crate::config::SavedField;
use crate::status::UserState;
use crate::user::queue::ChangeQueue;
use crate::user::User;

/// How long chat waits for the token thread to deliver a usable token before it checks
/// again (it is woken at once when a token arrives or the daemon stops).
pub const TOKEN_RECHECK_INTERVAL: Duration = Duration::from_secs(300);

/// What every connection of either transport uses, shared by every user of the process.
#[derive(Clone)]
pub struct Common {
    /// Opens the connections (TCP, TLS, WebSocket handshake) on the dialer threads.
    pub dialer: Dialer,
    /// How quiet a link may be before it is checked (IRC's PING, EventSub's keepalive window).
    pub keepalive: Duration,
    pub backoff: BackoffPolicy,
    /// Runs the color timers and notices when the machine slept.
    pub watch: ChatWatch,
}

/// One user's chat: what lives across its connections, whichever the transport.
pub struct ChatThread {
    pub user: Arc<User>,
    pub channels: Vec<Login>,
    pub queue: ChangeQueue,
    /// The user's stop signal; every socket is registered with it.
    pub stop: StopSignal,
    pub common: Common,
}

/// How one connection of a transport went.
#[derive(Debug)]
pub struct Served {
    pub end: ConnectionEnd,
    /// It got as far as Twitch's welcome (IRC's login, EventSub's subscriptions).
    pub logged_in: bool,
    /// The token generation it used: a refusal is about this one.
    pub generation: u64,
}

/// One transport's way to open and serve one connection.
pub trait Connector {
    /// What the log calls this transport's connection ("chat", "EventSub").
    const NAME: &'static str;
    /// What Twitch refuses when it refuses the token ("the chat login").
    const REFUSED: &'static str;
    /// The scopes the transport needs, for the line that says how to log in again.
    const SCOPES: &'static str;
    /// The scope that lets the token read chat over this transport.
    const READ_SCOPE: &'static str;

    /// One connection, from the dial to its end.
    fn serve(&mut self, chat: &ChatThread) -> Served;
}

/// Why the loop returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// The user or the daemon is stopping.
    Stopped,
    /// The token lacks a scope the transport needs and falling back was allowed: go on over
    /// the other transport.
    FallBack,
}

impl ChatThread {
    /// Connects through `connector`, serves each connection until it ends and waits as
    /// `Reconnects` says, until the daemon stops; or, when `fall_back_allowed`, until the
    /// token turns out to lack a scope the transport needs.
    pub fn run<C: Connector>(&self, connector: &mut C, fall_back_allowed: bool) -> Finished {
        let login = &self.user.login;
        let mut reconnects = Reconnects::new(self.common.backoff);
        let mut rng = rand::rng();
        while !self.stop.is_stopped() {
            if !self.has_token(C::NAME) {
                continue;
            }
            let started = Instant::now();
            let served = connector.serve(self);
            if self.stop.is_stopped() {
                break;
            }
            if served.logged_in {
                reconnects.logged_in();
            }
            if fall_back_allowed
                && matches!(
                    served.end,
                    ConnectionEnd::ScopeMissing(_) | ConnectionEnd::LimitReached(_)
                )
            {
                self.log_end::<C>(&served.end, true);
                return Finished::FallBack;
            }
            self.log_end::<C>(&served.end, false);
            let refused_generation = match served.end {
                ConnectionEnd::TokenRefused(_) | ConnectionEnd::ScopeMissing(_) => {
                    Some(served.generation)
                }
                _ => None,
            };
            let token_replaced = match &served.end {
                ConnectionEnd::TokenRefused(text) => {
                    self.on_refused::<C>(reconnects.refused(), text, served.generation)
                }
                _ => false,
            };
            counters::reconnect(served.end.metric_reason());
            let attempt = Attempt {
                started,
                logged_in: served.logged_in,
                token_replaced,
            };
            let now = Instant::now();
            let at = reconnects.next_attempt(&served.end, attempt, now, rng.random());
            if let ConnectionEnd::Lost(reason) | ConnectionEnd::RateLimited { reason, .. } =
                &served.end
            {
                warn!(
                    "{login}: {} connection lost ({reason}); reconnecting in {:.1} s",
                    C::NAME,
                    at.saturating_duration_since(now).as_secs_f64()
                );
            }
            if self.wait_for_attempt(at, refused_generation, started) {
                break;
            }
        }
        debug!("{login}: {} chat stopped", C::NAME);
        Finished::Stopped
    }

    /// Says how a connection ended, in the log (where the carrying out adds nothing) and on
    /// the status page.
    fn log_end<C: Connector>(&self, end: &ConnectionEnd, falling_back: bool) {
        let login = &self.user.login;
        let reason = match end {
            ConnectionEnd::ReconnectRequested => {
                info!("{login}: Twitch asked to reconnect");
                "Twitch asked to reconnect".to_string()
            }
            ConnectionEnd::TokenRefused(text) => format!("Twitch refused {}: {text}", C::REFUSED),
            ConnectionEnd::ScopeMissing(message) => {
                error!(
                    "{login}: Twitch refused to deliver chat over {} ({message}): the token lacks the scope {}; run `twitch-colorchanger auth --user {login}` to log in again with it{}",
                    C::NAME,
                    C::READ_SCOPE,
                    if falling_back { ", using IRC until then" } else { ", or set chat_transport to irc or auto" }
                );
                format!("{} needs the scope {}", C::NAME, C::READ_SCOPE)
            }
            ConnectionEnd::LimitReached(limit) => {
                error!(
                    "{login}: Twitch refused to deliver chat over {} for a limit, not the rate ({limit}){}",
                    C::NAME,
                    if falling_back { "; using IRC instead" } else { "; retrying with a growing delay of up to 10 minutes, or set chat_transport to irc or auto" }
                );
                format!("{} limit reached: {limit}", C::NAME)
            }
            ConnectionEnd::Lost(reason) | ConnectionEnd::RateLimited { reason, .. } => {
                reason.clone()
            }
            ConnectionEnd::Slept => {
                info!(
                    "{login}: reconnecting to {} after the machine slept",
                    C::NAME
                );
                "the machine slept".to_string()
            }
        };
        if !falling_back {
            report_reconnecting(&self.user, reason);
        }
    }

    /// True when there is a token to log in with; otherwise waits a while for one (the
    /// token refresher is logging the user in).
    fn has_token(&self, name: &str) -> bool {
        let (token, generation) = self.user.token.current();
        if !token.is_empty() {
            return true;
        }
        debug!(
            "{}: waiting for a token before connecting to {name}",
            self.user.login
        );
        self.user
            .token
            .wait_newer(generation, TOKEN_RECHECK_INTERVAL)
            .is_some()
    }

    /// Carries out what `Reconnects::refused` decided about a refused token: the first
    /// refusal of an episode is reported to the token owner, whose new token is then waited
    /// for; when none comes (the token validates, so the refusal is not about it) or a later
    /// refusal comes, chat backs off, saying once what Twitch answered. True when a newer
    /// token is there to try at once.
    fn on_refused<C: Connector>(&self, refusal: Refusal, text: &str, generation: u64) -> bool {
        let user = &self.user;
        let login = &user.login;
        let retry_now = match refusal {
            Refusal::Report if user.token.report_rejected(generation) => {
                info!(
                    "{login}: Twitch refused {} ({text}); asking for a new token",
                    C::REFUSED
                );
                user.token
                    .wait_newer(generation, TOKEN_RECHECK_INTERVAL)
                    .is_some()
            }
            Refusal::Report | Refusal::BackOff { first: true } => false,
            Refusal::BackOff { first: false } => {
                debug!("{login}: Twitch refused {} again ({text})", C::REFUSED);
                return false;
            }
        };
        if !retry_now {
            warn!("{login}: Twitch refused {} ({text}) and a new token cannot help now; retrying with a growing delay of up to 10 minutes; if this lasts, log in again with `twitch-colorchanger auth --user {login}` (scopes {})", C::REFUSED, C::SCOPES);
        }
        retry_now
    }

    /// Waits until `at`, the next connection attempt; true when the daemon stopped
    /// meanwhile. Backing off after a refusal of token `refused_generation`, a newer token (a
    /// new login, a pasted token) is worth trying at once, the minimum gap after `started`;
    /// closing the cell at shutdown wakes the wait too.
    fn wait_for_attempt(
        &self,
        at: Instant,
        refused_generation: Option<u64>,
        started: Instant,
    ) -> bool {
        let min_gap = self.common.backoff.min_gap;
        let wait = at.saturating_duration_since(Instant::now());
        match refused_generation {
            Some(generation) if wait > min_gap => {
                debug!(
                    "{}: next chat login in {:.1} s",
                    self.user.login,
                    wait.as_secs_f64()
                );
                if self.user.token.wait_replaced(generation, wait).is_some() {
                    return self.stop.wait_until(started + min_gap);
                }
                // The wait ran out, or the cell was closed because the user stops.
                self.stop.is_stopped()
            }
            _ => self.stop.wait_until(at),
        }
    }

    /// Obeys a command or asks for a color change, as `decide_own_message` says; the same
    /// for every transport.
    pub fn act_on_own_message(&self, text: &str) {
        let user = &self.user;
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

/// Shows the user as reconnecting on the status page, with why.
pub fn report_reconnecting(user: &User, reason: String) {
    user.report_state(UserState::Reconnecting {
        since_unix: unix_now(),
        reason,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::eventsub::link::silence_grace;
    use crate::chat::eventsub::message::keepalive_seconds_for;
    use crate::chat::irc::link::LinkTiming;
    use crate::chat::machine::{DEAD_LINK_LIMIT, DEFAULT_KEEPALIVE};

    #[test]
    fn the_default_keepalive_replaces_a_dead_link_within_the_limit() {
        // The longest a first reconnect after a drop waits: the first step of the backoff.
        let policy = BackoffPolicy::default();
        let reconnect = policy.base.max(policy.min_gap);
        let irc = LinkTiming::new(DEFAULT_KEEPALIVE);
        let window = Duration::from_secs(keepalive_seconds_for(DEFAULT_KEEPALIVE));
        // (transport, silence until the link counts as dead)
        let cases = [
            ("IRC", irc.keepalive + irc.ping_grace),
            ("EventSub", window + silence_grace(window)),
        ];
        for (transport, noticed_after) in cases {
            assert!(
                noticed_after + reconnect + Duration::from_secs(5) <= DEAD_LINK_LIMIT,
                "{transport}: {noticed_after:?}"
            );
        }
    }
}
