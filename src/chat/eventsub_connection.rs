//! A user's chat over EventSub: the same chat thread, on the other side of the transport
//! seam. Connects to the EventSub WebSocket, subscribes the channels on the welcomed session
//! through Helix, turns the user's own messages into color-change requests, follows
//! `session_reconnect` to the new URL, and reconnects with the IRC backoff after every loss.
//! Does I/O; every decision is made by `chat::eventsub` and `chat::reconnect`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender};
use log::{debug, error, info, warn};
use rand::RngExt;

use crate::base::clock::unix_now;
use crate::base::counters;
use crate::base::ids::{Login, UserId};
use crate::base::secret::Secret;
use crate::base::stop::StopSignal;
use crate::base::sync::lock;
use crate::chat::connection::{
    act_on_own_message, on_refused, report_reconnecting, wait_for_attempt, ChatSettings,
};
use crate::chat::eventsub::{
    close_code_name, keepalive_seconds_for, url_with_keepalive, EventSubEnd, EventSubLink,
    EventSubStep, RateLimitPlan, RevocationVerdict, READ_CHAT_SCOPE,
};
use crate::chat::link::ChatMachine;
use crate::chat::reconnect::{Ending, Reconnects};
use crate::chat::socket::{FrameSocket, Incoming};
use crate::chat::watch::WatchedLink;
use crate::status::UserState;
use crate::twitch::helix::{bucket_wait, Helix};
use crate::twitch::helix_chat::HelixCallError;
use crate::user::queue::ChangeQueue;
use crate::user::User;

/// How long the chat thread waits for the token thread to deliver a token.
const TOKEN_RECHECK_INTERVAL: Duration = Duration::from_secs(300);
/// How long draining the old connection after a reconnect may wait for each frame it
/// already has.
const DRAIN_WAIT: Duration = Duration::from_millis(1);

/// Threads that make EventSub's Helix setup calls for every user. The calls do not run on
/// the chat threads: a hundred users starting together would open a hundred HTTPS
/// connections at once (measured with examples/bench, 100 users: connect timeouts), and each
/// chat thread that made an HTTPS call kept the memory of it in its own malloc arena (about
/// 60 KiB per user). A few long-lived threads reuse the agent's warm connections.
pub const SETUP_THREADS: usize = 2;

/// One user's setup, handed to a setup thread, with where its answer goes.
struct SetupJob {
    setup: Setup,
    reply: Sender<Result<SetupAnswer, Ended>>,
}

/// How far a setup got. A setup never waits out a rate limit: the setup threads serve every
/// user, so the user's own chat thread waits, reading its session meanwhile.
#[derive(Debug)]
enum SetupAnswer {
    /// Every channel is subscribed.
    Done { own_id: UserId },
    /// Twitch rate-limited the subscription of `left[0]`: it and the rest of `left` may be
    /// tried again after `wait`; `n_subscribed` channels before it were subscribed.
    RateLimited {
        own_id: UserId,
        left: Vec<Login>,
        n_subscribed: usize,
        wait: Duration,
    },
}

/// What every user's EventSub side shares in the process: channel ids resolved so far, and
/// the queue of the setup threads.
#[derive(Clone)]
pub struct EventSubShared {
    ids: ChannelIds,
    jobs: Sender<SetupJob>,
}

/// The setup threads' end of the queue.
#[derive(Clone)]
pub struct SetupJobs(Receiver<SetupJob>);

impl EventSubShared {
    /// The shared state and the queue the setup threads serve (`run_setup_thread`).
    pub fn new() -> (EventSubShared, SetupJobs) {
        let (jobs, receiver) = crossbeam_channel::unbounded();
        (
            EventSubShared {
                ids: ChannelIds::default(),
                jobs,
            },
            SetupJobs(receiver),
        )
    }
}

/// A setup thread: carries out setups until `stop` fires.
pub fn run_setup_thread(jobs: &SetupJobs, stop: &StopSignal) {
    loop {
        select! {
            recv(jobs.0) -> job => match job {
                Ok(job) => {
                    // A chat thread that stopped waiting no longer listens; that is fine.
                    let _ = job.reply.send(job.setup.run());
                }
                Err(_) => return,
            },
            recv(stop.receiver()) -> _ => return,
        }
    }
}

/// Channel logins resolved to ids, for the whole process: every user watching a channel
/// and every reconnect reuses them.
#[derive(Clone, Debug, Default)]
struct ChannelIds(Arc<Mutex<HashMap<Login, UserId>>>);

impl ChannelIds {
    fn get(&self, login: &Login) -> Option<UserId> {
        lock(&self.0).get(login).cloned()
    }

    fn insert(&self, login: Login, id: UserId) {
        lock(&self.0).insert(login, id);
    }
}

/// Why the EventSub side of a chat thread returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventSubExit {
    /// The user or the daemon is stopping.
    Stopped,
    /// Twitch refused the subscription for want of `user:read:chat` and the transport was
    /// chosen automatically: go on over IRC.
    FallBackToIrc,
}

/// How one connection ended.
#[derive(Debug)]
enum Ended {
    /// Helix refused the token of this generation (401), or the user revoked the app's
    /// authorization: the token path.
    TokenRefused(String, u64),
    /// 403 on subscribing: the token lacks `user:read:chat`.
    Forbidden(String),
    /// Anything else: refused connect, TLS error, drop, close, silence, a failed call.
    /// `subscribed` when the connection had its subscriptions.
    Lost { reason: String, subscribed: bool },
    /// The chat watch closed it because the machine slept.
    Slept,
    /// Twitch rate-limits subscriptions beyond the time the session allows for its first
    /// one: connect again, not before `until`.
    RateLimited { until: Instant },
}

fn lost(reason: String) -> Ended {
    Ended::Lost {
        reason,
        subscribed: false,
    }
}

/// Runs chat over EventSub until `stop` fires, or until a missing scope sends an
/// automatically chosen transport back to IRC (`fall_back_allowed`).
pub fn run_eventsub(
    user: &Arc<User>,
    channels: &[Login],
    settings: &ChatSettings,
    queue: &ChangeQueue,
    stop: &StopSignal,
    fall_back_allowed: bool,
) -> EventSubExit {
    let login = user.login.clone();
    let mut rng = rand::rng();
    let mut reconnects = Reconnects::new(settings.backoff);
    user.report_chat("EventSub", channels);
    let url = url_with_keepalive(
        &settings.eventsub_url,
        keepalive_seconds_for(settings.keepalive),
    );
    while !stop.is_stopped() {
        let (token, generation) = user.token.current();
        if token.is_empty() {
            debug!("{login}: waiting for a token before connecting to EventSub");
            let _ = user.token.wait_newer(generation, TOKEN_RECHECK_INTERVAL);
            continue;
        }
        let started = Instant::now();
        let (ended, subscribed) = match settings.dialer.dial(&url, stop) {
            Ok(socket) => {
                let link = EventSubLink::new(user.user_id(), Instant::now());
                let mut connection = Connection {
                    user,
                    channels,
                    settings,
                    queue,
                    stop,
                    socket,
                    old_socket: None,
                    watched: None,
                    generation,
                    left: Vec::new(),
                    n_subscribed: 0,
                };
                let ended = connection.run(link);
                (ended, connection.watched.is_some())
            }
            Err(reason) => (lost(reason), false),
        };
        if stop.is_stopped() {
            break;
        }
        if subscribed {
            reconnects.logged_in();
        }
        let mut lost = None;
        // The token generation a refusal was about: a newer one ends the wait early.
        let mut refused_generation = None;
        // The end of a rate limit: no attempt before it.
        let mut not_before = None;
        let ending = match ended {
            Ended::Forbidden(message) => {
                error!(
                    "{login}: Twitch refused to deliver chat over EventSub ({message}): the token lacks the scope {READ_CHAT_SCOPE}; run `twitch-colorchanger auth --user {login}` to log in again with it{}",
                    if fall_back_allowed { ", using IRC until then" } else { ", or set chat_transport to irc or auto" }
                );
                if fall_back_allowed {
                    return EventSubExit::FallBackToIrc;
                }
                report_reconnecting(user, format!("EventSub needs the scope {READ_CHAT_SCOPE}"));
                refused_generation = Some(generation);
                Ending::Refused { retry_now: false }
            }
            Ended::TokenRefused(text, generation) => {
                report_reconnecting(user, format!("EventSub refused the token: {text}"));
                refused_generation = Some(generation);
                on_refused(
                    user,
                    reconnects.refused(),
                    &text,
                    generation,
                    "the token for EventSub",
                    "user:read:chat and user:manage:chat_color",
                )
            }
            Ended::Lost { reason, subscribed } => {
                lost = Some(reason);
                Ending::Lost {
                    logged_in: subscribed,
                }
            }
            Ended::Slept => {
                info!("{login}: reconnecting to EventSub after the machine slept");
                report_reconnecting(user, "the machine slept".into());
                Ending::Slept
            }
            Ended::RateLimited { until } => {
                lost = Some("Twitch rate-limits subscriptions longer than a new session may wait for its first one".to_string());
                not_before = Some(until);
                Ending::Lost { logged_in: false }
            }
        };
        counters::reconnect(ending.metric_reason());
        let now = Instant::now();
        let next_attempt = reconnects.next_attempt(ending, started, now, rng.random());
        let next_attempt = not_before.map_or(next_attempt, |until| until.max(next_attempt));
        let wait = next_attempt.saturating_duration_since(now);
        if let Some(reason) = lost {
            warn!(
                "{login}: EventSub connection lost ({reason}); reconnecting in {:.1} s",
                wait.as_secs_f64()
            );
            report_reconnecting(user, reason);
        }
        if wait_for_attempt(
            user,
            stop,
            settings.backoff.min_gap,
            (next_attempt, refused_generation),
            started,
        ) {
            break;
        }
    }
    debug!("{login}: EventSub chat stopped");
    EventSubExit::Stopped
}

/// One live EventSub connection (two while a reconnect hands the session over).
struct Connection<'a> {
    user: &'a Arc<User>,
    channels: &'a [Login],
    settings: &'a ChatSettings,
    queue: &'a ChangeQueue,
    stop: &'a StopSignal,
    socket: FrameSocket,
    /// The connection a `session_reconnect` moved away from, until the new one is welcomed.
    old_socket: Option<FrameSocket>,
    /// Set once subscribed; dropping it tells the watch (color timer, sleep) it ended.
    watched: Option<WatchedLink>,
    /// The token generation this connection started with.
    generation: u64,
    /// The channels a rate limit held back, subscribed at the link's `SubscribeRest`.
    left: Vec<Login>,
    /// Channels subscribed on this session so far.
    n_subscribed: usize,
}

impl Connection<'_> {
    /// Reads and dispatches until the connection ends.
    fn run(&mut self, mut link: EventSubLink) -> Ended {
        loop {
            let steps = match self.socket.next_steps(&mut link) {
                Ok(steps) => steps,
                Err(reason) => return self.lost(self.describe_end(reason)),
            };
            if let Err(ended) = self.carry_out(&mut link, steps) {
                return ended;
            }
        }
    }

    /// How a connection that ended without a decision of the machine ended.
    fn lost(&self, reason: String) -> Ended {
        match &self.watched {
            Some(watched) if watched.closed_after_sleep() => Ended::Slept,
            watched => Ended::Lost {
                reason,
                subscribed: watched.is_some(),
            },
        }
    }

    /// Tells the chat watch this user reads chat now: it runs the color timer and, after a
    /// sleep, shuts the user's sockets down (every socket here is registered with `stop`).
    fn watch(&mut self) {
        if self.watched.is_none() {
            self.watched = Some(self.settings.watch.logged_in(self.user, self.stop));
        }
    }

    /// "closed by the server" with the EventSub close code and its name, when there is one.
    fn describe_end(&self, reason: String) -> String {
        match self.socket.close_code() {
            Some(code) => match close_code_name(code) {
                Some(name) => format!("Twitch closed the connection: {code} {name}"),
                None => format!("Twitch closed the connection with code {code}"),
            },
            None => reason,
        }
    }

    fn carry_out(
        &mut self,
        link: &mut EventSubLink,
        steps: Vec<EventSubStep>,
    ) -> Result<(), Ended> {
        let login = &self.user.login;
        for step in steps {
            match step {
                EventSubStep::Subscribe { session_id } => {
                    self.subscribe(link, &session_id, self.channels.to_vec())?;
                }
                EventSubStep::SubscribeRest { session_id } => {
                    let left = std::mem::take(&mut self.left);
                    self.subscribe(link, &session_id, left)?;
                }
                EventSubStep::Reconnect { url } => {
                    info!(
                        "{login}: Twitch moves the EventSub session; connecting to the new address"
                    );
                    let socket = self
                        .settings
                        .dialer
                        .dial(&url, self.stop)
                        .map_err(|reason| {
                            self.lost(format!("reconnect to the new address failed: {reason}"))
                        })?;
                    self.old_socket = Some(std::mem::replace(&mut self.socket, socket));
                    link.reconnecting(Instant::now());
                }
                EventSubStep::CarriedOver => {
                    debug!("{login}: EventSub session carried over; closing the old connection");
                    self.drain_old(link);
                }
                EventSubStep::OwnMessage { channel, text } => {
                    debug!("{login}: own message in #{channel}");
                    act_on_own_message(self.user, self.queue, &text);
                }
                EventSubStep::Revoked {
                    broadcaster_user_id,
                    status,
                    verdict,
                } => self.on_revoked(link, broadcaster_user_id, &status, verdict)?,
                EventSubStep::Unreadable(error) => {
                    debug!("{login}: ignored an EventSub frame that is not a message: {error:?}");
                }
                EventSubStep::End(EventSubEnd::NoWelcome(waited)) => {
                    return Err(self.lost(format!("no welcome from EventSub within {waited:?}")));
                }
                EventSubStep::End(EventSubEnd::Silence(waited)) => {
                    return Err(self.lost(format!(
                        "no message or keepalive from EventSub for {:.1} s",
                        waited.as_secs_f64()
                    )));
                }
            }
        }
        Ok(())
    }

    /// Acts on what the old connection still holds, then closes it.
    fn drain_old(&mut self, link: &mut EventSubLink) {
        let Some(mut old) = self.old_socket.take() else {
            return;
        };
        while let Ok(Incoming::Text(frame)) = old.read(DRAIN_WAIT) {
            for step in link.on_frame(Instant::now(), &frame) {
                if let EventSubStep::OwnMessage { text, .. } = step {
                    act_on_own_message(self.user, self.queue, &text);
                }
            }
        }
        old.close();
    }

    /// What a setup of `channels` on this connection's session needs, owned (it runs on a
    /// setup thread).
    fn setup(&self, session_id: &str, channels: Vec<Login>) -> Setup {
        Setup {
            user: Arc::clone(self.user),
            channels,
            n_subscribed_before: self.n_subscribed,
            helix: Arc::clone(&self.settings.helix),
            ids: self.settings.eventsub.ids.clone(),
            session_id: session_id.to_string(),
            generation: self.generation,
        }
    }

    /// Has a setup thread resolve `channels`, subscribe them on `session_id` and read the
    /// current color; then the chat watch takes the user on. When Twitch rate-limits a
    /// subscription, the rest waits as the link decides.
    fn subscribe(
        &mut self,
        link: &mut EventSubLink,
        session_id: &str,
        channels: Vec<Login>,
    ) -> Result<(), Ended> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        let job = SetupJob {
            setup: self.setup(session_id, channels),
            reply,
        };
        if self.settings.eventsub.jobs.send(job).is_err() {
            return Err(lost("no setup thread runs".to_string()));
        }
        let answer = select! {
            recv(answer) -> result => {
                result.unwrap_or_else(|_| Err(lost("the setup thread ended".to_string())))?
            }
            recv(self.stop.receiver()) -> _ => return Err(lost("stopping".to_string())),
        };
        match answer {
            SetupAnswer::Done { own_id } => {
                link.set_user_id(own_id);
                link.subscribed();
                self.watch();
                Ok(())
            }
            SetupAnswer::RateLimited {
                own_id,
                left,
                n_subscribed,
                wait,
            } => {
                link.set_user_id(own_id);
                self.n_subscribed += n_subscribed;
                self.rate_limited(link, left, wait)
            }
        }
    }

    /// Twitch rate-limited the subscription of `left[0]` for `wait`: wait on this session
    /// (reading it; the link asks for `SubscribeRest` when the wait is over), or close it
    /// when it would close as unused before then.
    fn rate_limited(
        &mut self,
        link: &mut EventSubLink,
        left: Vec<Login>,
        wait: Duration,
    ) -> Result<(), Ended> {
        let login = &self.user.login;
        let Some(channel) = left.first() else {
            return Ok(());
        };
        let has_subscription = self.n_subscribed > 0 || self.watched.is_some();
        match link.rate_limited(Instant::now(), channel.as_str(), wait, has_subscription) {
            RateLimitPlan::RetryAt(_) => {
                info!(
                    "{login}: Twitch rate-limits subscriptions; subscribing #{channel}{} again in {} s",
                    match left.len() {
                        1 => String::new(),
                        n => format!(" and {} more", n - 1),
                    },
                    wait.as_secs()
                );
                if has_subscription {
                    // The channels subscribed so far deliver messages meanwhile.
                    self.watch();
                }
                // A revoked channel refused while others wait joins them.
                for channel in left {
                    if !self.left.contains(&channel) {
                        self.left.push(channel);
                    }
                }
                Ok(())
            }
            RateLimitPlan::Reconnect { not_before } => {
                info!(
                    "{login}: Twitch rate-limits subscriptions for {} s, longer than the new session waits for one; connecting again then",
                    not_before.saturating_duration_since(Instant::now()).as_secs()
                );
                self.socket.close();
                Err(Ended::RateLimited { until: not_before })
            }
            RateLimitPlan::GiveUp => Err(lost(format!(
                "subscribing to #{channel} stayed rate-limited"
            ))),
        }
    }

    fn on_revoked(
        &mut self,
        link: &mut EventSubLink,
        broadcaster_user_id: Option<String>,
        status: &str,
        verdict: RevocationVerdict,
    ) -> Result<(), Ended> {
        let login = &self.user.login;
        let channel_login = broadcaster_user_id.as_ref().and_then(|id| {
            self.channels.iter().find(|channel| {
                self.settings
                    .eventsub
                    .ids
                    .get(channel)
                    .is_some_and(|known| known.as_str() == id)
            })
        });
        let channel =
            channel_login.map_or_else(|| "a channel".to_string(), |channel| format!("#{channel}"));
        match verdict {
            RevocationVerdict::LoginProblem => {
                warn!("{login}: Twitch revoked the chat subscription for {channel} ({status})");
                Err(Ended::TokenRefused(
                    format!("subscription revoked: {status}"),
                    self.generation,
                ))
            }
            RevocationVerdict::ChannelGone => {
                warn!("{login}: Twitch revoked the chat subscription for {channel} ({status}): the channel or user no longer exists");
                Ok(())
            }
            RevocationVerdict::VersionGone => {
                error!("{login}: Twitch revoked the chat subscription for {channel} ({status}): this version of twitch-colorchanger uses a subscription version Twitch no longer offers; update it");
                Ok(())
            }
            RevocationVerdict::Resubscribe => {
                info!("{login}: Twitch revoked the chat subscription for {channel} ({status}); subscribing again");
                let (Some(session_id), Some(own_id), Some(channel_id), Some(channel_login)) = (
                    link.session_id(),
                    self.user.user_id(),
                    broadcaster_user_id,
                    channel_login.cloned(),
                ) else {
                    return Ok(());
                };
                // One call, rare: made here rather than queued for a setup thread.
                let setup = self.setup(session_id, Vec::new());
                match setup.subscribe_one(&UserId::new(channel_id), &own_id, &channel_login)? {
                    Subscribed::Yes => Ok(()),
                    Subscribed::RateLimited(wait) => {
                        self.rate_limited(link, vec![channel_login], wait)
                    }
                }
            }
        }
    }
}

/// One subscription attempt's outcome.
enum Subscribed {
    Yes,
    /// Twitch answered 429: try again after this long.
    RateLimited(Duration),
}

/// One session's setup through Helix, owned so that a setup thread can carry it out.
struct Setup {
    user: Arc<User>,
    /// The channels to subscribe.
    channels: Vec<Login>,
    /// Channels subscribed on the session before (for the log line).
    n_subscribed_before: usize,
    helix: Arc<Helix>,
    ids: ChannelIds,
    session_id: String,
    /// The token generation the connection started with.
    generation: u64,
}

impl Setup {
    fn token(&self) -> Secret {
        self.user.token.current().0
    }

    fn refused(&self, error: &HelixCallError) -> Option<Ended> {
        match error {
            HelixCallError::Unauthorized => Some(Ended::TokenRefused(
                "token rejected by Helix (401)".to_string(),
                self.generation,
            )),
            HelixCallError::Forbidden { message } => Some(Ended::Forbidden(message.clone())),
            _ => None,
        }
    }

    /// Resolves the channels (and the user's own id when not known yet), subscribes every
    /// channel on the session, reads the current color, and reports the user connected; or
    /// stops at the first subscription Twitch rate-limits and says what is left.
    fn run(&self) -> Result<SetupAnswer, Ended> {
        let login = &self.user.login;
        let client_id = &self.user.client_id;
        let channel_ids = &self.ids;
        let mut wanted: Vec<Login> = self
            .channels
            .iter()
            .filter(|channel| channel_ids.get(channel).is_none())
            .cloned()
            .collect();
        if self.user.user_id().is_none()
            && !wanted.contains(login)
            && channel_ids.get(login).is_none()
        {
            wanted.push(login.clone());
        }
        if !wanted.is_empty() {
            let found = self
                .helix
                .users_by_login(client_id, &self.token(), &wanted)
                .map_err(|error| {
                    self.refused(&error)
                        .unwrap_or_else(|| lost(format!("looking up channel ids failed: {error}")))
                })?;
            for (channel, id) in found {
                channel_ids.insert(channel, id);
            }
        }
        let own_id = match self.user.user_id().or_else(|| channel_ids.get(login)) {
            Some(id) => id,
            None => return Err(lost(format!("Twitch knows no user {login}"))),
        };
        self.user.set_user_id(own_id.clone());
        let mut n_subscribed = 0;
        for (index, channel) in self.channels.iter().enumerate() {
            let Some(channel_id) = channel_ids.get(channel) else {
                warn!("{login}: Twitch knows no channel #{channel}; it is skipped");
                continue;
            };
            if let Subscribed::RateLimited(wait) =
                self.subscribe_one(&channel_id, &own_id, channel)?
            {
                let left = self.channels[index..]
                    .iter()
                    .filter(|channel| channel_ids.get(channel).is_some())
                    .cloned()
                    .collect();
                return Ok(SetupAnswer::RateLimited {
                    own_id,
                    left,
                    n_subscribed,
                    wait,
                });
            }
            n_subscribed += 1;
        }
        let n_subscribed = self.n_subscribed_before + n_subscribed;
        match self.helix.chat_color(client_id, &self.token(), &own_id) {
            Ok(color) => self.user.set_current_color(color),
            Err(error) => debug!("{login}: current color not known ({error})"),
        }
        info!("{login}: reading chat over EventSub ({n_subscribed} channels, user id {own_id})");
        self.user.report_state(UserState::Connected {
            since_unix: unix_now(),
        });
        Ok(SetupAnswer::Done { own_id })
    }

    /// Subscribes one channel, once: a 429 says how long to wait, and the waiting is the
    /// chat thread's.
    fn subscribe_one(
        &self,
        channel_id: &UserId,
        own_id: &UserId,
        channel: &Login,
    ) -> Result<Subscribed, Ended> {
        let login = &self.user.login;
        let result = self.helix.subscribe_chat(
            &self.user.client_id,
            &self.token(),
            &self.session_id,
            channel_id,
            own_id,
        );
        match result {
            Ok(outcome) => {
                debug!("{login}: subscribed to #{channel} ({outcome:?})");
                Ok(Subscribed::Yes)
            }
            Err(error) => match self.refused(&error) {
                Some(ended) => Err(ended),
                None => match error {
                    HelixCallError::RateLimited { rate_limit } => Ok(Subscribed::RateLimited(
                        bucket_wait(rate_limit.reset_at_unix, unix_now())
                            .unwrap_or(Duration::from_secs(1)),
                    )),
                    other => Err(lost(format!("subscribing to #{channel} failed: {other}"))),
                },
            },
        }
    }
}
