//! A user's chat over EventSub: a WebSocket session on which the channels are subscribed
//! through Helix (`chat::eventsub::setup`), the user's own messages turned into color-change
//! requests, `session_reconnect` followed to the new URL. Does I/O; every decision is made by
//! `chat::eventsub::link`, and the reconnect loop around it is `chat::thread`'s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::select;
use log::{debug, error, info, warn};

use crate::base::ids::{Login, UserId};
use crate::chat::eventsub::bans::ChannelBans;
use crate::chat::eventsub::link::{EventSubLink, EventSubStep, RateLimitPlan};
use crate::chat::eventsub::message::{
    close_code_name, keepalive_seconds_for, url_with_keepalive, RevocationVerdict, READ_CHAT_SCOPE,
};
use crate::chat::eventsub::reconnect_url::check_reconnect_url;
use crate::chat::eventsub::setup::{EventSubShared, Setup, SetupAnswer, SetupJob, Subscribed};
use crate::chat::machine::ChatMachine;
use crate::chat::net::socket::{FrameSocket, Incoming};
use crate::chat::net::watch::WatchedLink;
use crate::chat::reconnect::ConnectionEnd;
use crate::chat::thread::{ChatThread, Connector, Served};
use crate::twitch::helix::Helix;

/// How long draining the old connection after a reconnect may wait for each frame it
/// already has.
const DRAIN_WAIT: Duration = Duration::from_millis(1);

/// Chat over EventSub, as the reconnect loop drives it.
pub struct EventSub {
    /// The EventSub WebSocket URL with the keepalive window asked for.
    url: String,
    /// The EventSub WebSocket URL as configured: a `session_reconnect` is followed only on
    /// its host (or Twitch's, over TLS).
    configured_url: String,
    /// For the subscriptions, channel ids and the current color.
    helix: Arc<Helix>,
    /// Channel ids resolved so far and the setup threads' queue, shared by every user.
    shared: EventSubShared,
    /// Channels the user was banned from: not subscribed again for a day, across
    /// connections (a config change restarts the chat thread and forgets them).
    bans: ChannelBans,
}

impl EventSub {
    /// `url` is the configured EventSub URL; the keepalive window asked for follows the
    /// daemon's chat keepalive.
    pub fn new(
        url: &str,
        keepalive: Duration,
        helix: Arc<Helix>,
        shared: EventSubShared,
    ) -> EventSub {
        EventSub {
            url: url_with_keepalive(url, keepalive_seconds_for(keepalive)),
            configured_url: url.to_string(),
            helix,
            shared,
            bans: ChannelBans::default(),
        }
    }
}

impl Connector for EventSub {
    const NAME: &'static str = "EventSub";
    const REFUSED: &'static str = "the token for EventSub";
    const SCOPES: &'static str = "user:read:chat and user:manage:chat_color";
    const READ_SCOPE: &'static str = READ_CHAT_SCOPE;

    fn serve(&mut self, chat: &ChatThread) -> Served {
        let generation = chat.user.token.current().1;
        let socket = match chat.common.dialer.dial(&self.url, &chat.stop) {
            Ok(socket) => socket,
            Err(error) => {
                return Served {
                    end: ConnectionEnd::Lost(error.to_string()),
                    logged_in: false,
                    generation,
                }
            }
        };
        let mut connection = EventSubConnection {
            chat,
            eventsub: self,
            socket,
            old_socket: None,
            watched: None,
            left: Vec::new(),
            n_subscribed: 0,
        };
        let end = connection.run(EventSubLink::new(chat.user.user_id(), Instant::now()));
        Served {
            end,
            logged_in: connection.watched.is_some(),
            generation,
        }
    }
}

/// One live EventSub connection (two while a reconnect hands the session over).
struct EventSubConnection<'a> {
    chat: &'a ChatThread,
    eventsub: &'a mut EventSub,
    socket: FrameSocket,
    /// The connection a `session_reconnect` moved away from, until the new one is welcomed.
    old_socket: Option<FrameSocket>,
    /// Set once subscribed; dropping it tells the watch (color timer, sleep) it ended.
    watched: Option<WatchedLink>,
    /// The channels a rate limit held back, subscribed at the link's `SubscribeRest`.
    left: Vec<Login>,
    /// Channels subscribed on this session so far.
    n_subscribed: usize,
}

impl EventSubConnection<'_> {
    /// Reads and dispatches until the connection ends.
    fn run(&mut self, mut link: EventSubLink) -> ConnectionEnd {
        loop {
            let steps = match self.socket.next_steps(&mut link) {
                Ok(steps) => steps,
                Err(error) => return self.lost(self.describe_end(error.to_string())),
            };
            if let Err(ended) = self.carry_out(&mut link, steps) {
                return ended;
            }
        }
    }

    /// How a connection that ended without a decision of the machine ended.
    fn lost(&self, reason: String) -> ConnectionEnd {
        match &self.watched {
            Some(watched) if watched.closed_after_sleep() => ConnectionEnd::Slept,
            _ => ConnectionEnd::Lost(reason),
        }
    }

    /// Tells the chat watch this user reads chat now: it runs the color timer and, after a
    /// sleep, shuts the user's sockets down (every socket here is registered with `stop`).
    fn watch(&mut self) {
        if self.watched.is_none() {
            self.watched = Some(
                self.chat
                    .common
                    .watch
                    .logged_in(&self.chat.user, &self.chat.stop),
            );
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
    ) -> Result<(), ConnectionEnd> {
        let login = &self.chat.user.login;
        for step in steps {
            match step {
                EventSubStep::Subscribe { session_id } => {
                    let channels = self.not_banned(self.chat.channels.clone());
                    link.bans_end_at(self.eventsub.bans.first_end());
                    self.subscribe(link, &session_id, channels)?;
                }
                EventSubStep::BansOver { session_id } => {
                    let ended = self.eventsub.bans.take_ended(Instant::now());
                    link.bans_end_at(self.eventsub.bans.first_end());
                    if !ended.is_empty() {
                        info!(
                            "{login}: a day has passed since a ban revoked a chat subscription; subscribing {} channel(s) again",
                            ended.len()
                        );
                        self.subscribe(link, &session_id, ended)?;
                    }
                }
                EventSubStep::SubscribeRest { session_id } => {
                    let left = std::mem::take(&mut self.left);
                    let left = self.not_banned(left);
                    self.subscribe(link, &session_id, left)?;
                }
                EventSubStep::Reconnect { url } => {
                    if let Err(why) = check_reconnect_url(&self.eventsub.configured_url, &url) {
                        warn!(
                            "{login}: Twitch's session_reconnect named {url:?}, which {why}; not followed: connecting to the configured EventSub address instead"
                        );
                        self.socket.close();
                        return Err(ConnectionEnd::ReconnectRequested);
                    }
                    info!(
                        "{login}: Twitch moves the EventSub session; connecting to the new address"
                    );
                    let socket = self
                        .chat
                        .common
                        .dialer
                        .dial(&url, &self.chat.stop)
                        .map_err(|error| {
                            self.lost(format!("reconnect to the new address failed: {error}"))
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
                    self.chat.act_on_own_message(&text);
                }
                EventSubStep::Revoked {
                    broadcaster_user_id,
                    status,
                    verdict,
                } => self.on_revoked(link, broadcaster_user_id, &status, verdict)?,
                EventSubStep::Unreadable(error) => {
                    debug!("{login}: ignored an EventSub frame that is not a message: {error:?}");
                }
                EventSubStep::End(ConnectionEnd::Lost(reason)) => return Err(self.lost(reason)),
                EventSubStep::End(end) => return Err(end),
            }
        }
        Ok(())
    }

    /// `channels` without those the user is banned from for now.
    fn not_banned(&mut self, channels: Vec<Login>) -> Vec<Login> {
        let n_channels = channels.len();
        let allowed = self.eventsub.bans.allowed(channels, Instant::now());
        if allowed.len() < n_channels {
            debug!(
                "{}: {} banned channel(s) left unsubscribed",
                self.chat.user.login,
                n_channels - allowed.len()
            );
        }
        allowed
    }

    /// Acts on what the old connection still holds, then closes it.
    fn drain_old(&mut self, link: &mut EventSubLink) {
        let Some(mut old) = self.old_socket.take() else {
            return;
        };
        while let Ok(Incoming::Text(frame)) = old.read(DRAIN_WAIT) {
            for step in link.on_frame(Instant::now(), &frame) {
                if let EventSubStep::OwnMessage { text, .. } = step {
                    self.chat.act_on_own_message(&text);
                }
            }
        }
        old.close();
    }

    /// What a setup of `channels` on this connection's session needs, owned (it runs on a
    /// setup thread).
    fn setup(&self, session_id: &str, channels: Vec<Login>) -> Setup {
        Setup {
            user: Arc::clone(&self.chat.user),
            channels,
            n_subscribed_before: self.n_subscribed,
            helix: Arc::clone(&self.eventsub.helix),
            ids: self.eventsub.shared.ids.clone(),
            session_id: session_id.to_string(),
            stop: self.chat.stop.clone(),
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
    ) -> Result<(), ConnectionEnd> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        let job = SetupJob {
            setup: self.setup(session_id, channels),
            reply,
        };
        if self.eventsub.shared.jobs.send(job).is_err() {
            return Err(ConnectionEnd::Lost("no setup thread runs".to_string()));
        }
        let answer = select! {
            recv(answer) -> result => {
                result.unwrap_or_else(|_| Err(ConnectionEnd::Lost("the setup thread ended".to_string())))?
            }
            recv(self.chat.stop.receiver()) -> _ => return Err(ConnectionEnd::Lost("stopping".to_string())),
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
    ) -> Result<(), ConnectionEnd> {
        let login = &self.chat.user.login;
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
                Err(ConnectionEnd::RateLimited {
                    reason: "Twitch rate-limits subscriptions longer than a new session may wait for its first one".to_string(),
                    until: not_before,
                })
            }
            RateLimitPlan::GiveUp => Err(ConnectionEnd::Lost(format!(
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
    ) -> Result<(), ConnectionEnd> {
        let chat = self.chat;
        let login = &chat.user.login;
        let ids = &self.eventsub.shared.ids;
        let channel_login: Option<&Login> = broadcaster_user_id.as_ref().and_then(|id| {
            chat.channels
                .iter()
                .find(|channel| ids.get(channel).is_some_and(|known| known.as_str() == id))
        });
        let channel =
            channel_login.map_or_else(|| "a channel".to_string(), |channel| format!("#{channel}"));
        match verdict {
            RevocationVerdict::LoginProblem => {
                warn!("{login}: Twitch revoked the chat subscription for {channel} ({status})");
                Err(ConnectionEnd::TokenRefused(format!(
                    "subscription revoked: {status}"
                )))
            }
            RevocationVerdict::Banned => {
                let Some(channel_login) = channel_login else {
                    warn!("{login}: Twitch revoked the chat subscription for {channel} ({status})");
                    return Ok(());
                };
                let new = self.eventsub.bans.ban(channel_login, Instant::now());
                link.bans_end_at(self.eventsub.bans.first_end());
                if new {
                    warn!("{login}: Twitch revoked the chat subscription for {channel} ({status}): the user may not read that channel's chat now; not subscribing to it again for a day or until the config changes");
                } else {
                    debug!("{login}: the chat subscription for {channel} revoked again ({status})");
                }
                Ok(())
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
                    self.chat.user.user_id(),
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
