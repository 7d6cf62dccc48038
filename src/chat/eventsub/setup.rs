//! EventSub's setup of a welcomed session through Helix: resolve the channels' ids (cached
//! for the whole process), subscribe each channel to `channel.chat.message` on the session,
//! read the current color. Runs on a few shared setup threads, not on the chat threads; a
//! rate limit is handed back to the user's chat thread to wait out. Does I/O (Helix calls).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{select, Receiver, Sender};
use log::{debug, info, warn};

use crate::base::clock::unix_now;
use crate::base::ids::{Login, UserId};
use crate::base::secret::Secret;
use crate::base::stop::StopSignal;
use crate::base::sync::lock;
use crate::chat::reconnect::ConnectionEnd;
use crate::status::UserState;
use crate::twitch::helix::{bucket_wait, Helix, HelixError};
use crate::user::User;

/// Threads that make EventSub's Helix setup calls for every user. The calls do not run on
/// the chat threads: a hundred users starting together would open a hundred HTTPS
/// connections at once (measured with examples/bench, 100 users: connect timeouts), and each
/// chat thread that made an HTTPS call kept the memory of it in its own malloc arena (about
/// 60 KiB per user). A few long-lived threads reuse the agent's warm connections.
pub const SETUP_THREADS: usize = 2;

/// One user's setup, handed to a setup thread, with where its answer goes.
pub(super) struct SetupJob {
    pub(super) setup: Setup,
    pub(super) reply: Sender<Result<SetupAnswer, ConnectionEnd>>,
}

/// How far a setup got. A setup never waits out a rate limit: the setup threads serve every
/// user, so the user's own chat thread waits, reading its session meanwhile.
#[derive(Debug)]
pub(super) enum SetupAnswer {
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
    pub(super) ids: ChannelIds,
    pub(super) jobs: Sender<SetupJob>,
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
pub(super) struct ChannelIds(Arc<Mutex<HashMap<Login, UserId>>>);

impl ChannelIds {
    pub(super) fn get(&self, login: &Login) -> Option<UserId> {
        lock(&self.0).get(login).cloned()
    }

    fn insert(&self, login: Login, id: UserId) {
        lock(&self.0).insert(login, id);
    }
}

/// One subscription attempt's outcome.
pub(super) enum Subscribed {
    Yes,
    /// Twitch answered 429: try again after this long.
    RateLimited(Duration),
}

/// One session's setup through Helix, owned so that a setup thread can carry it out.
pub(super) struct Setup {
    pub(super) user: Arc<User>,
    /// The channels to subscribe.
    pub(super) channels: Vec<Login>,
    /// Channels subscribed on the session before (for the log line).
    pub(super) n_subscribed_before: usize,
    pub(super) helix: Arc<Helix>,
    pub(super) ids: ChannelIds,
    pub(super) session_id: String,
    /// The user's stop signal: no Helix call starts once it fired.
    pub(super) stop: StopSignal,
}

impl Setup {
    /// `Err` once the user or the daemon stops: every Helix call of a setup asks first, so
    /// none starts after SIGTERM (a call already under way is answered).
    fn not_stopped(&self) -> Result<(), ConnectionEnd> {
        if self.stop.is_stopped() {
            Err(ConnectionEnd::Lost("stopping".to_string()))
        } else {
            Ok(())
        }
    }

    fn token(&self) -> Secret {
        self.user.token.current().0
    }

    fn refused(&self, error: &HelixError) -> Option<ConnectionEnd> {
        match error {
            HelixError::Unauthorized { .. } => Some(ConnectionEnd::TokenRefused(
                "token rejected by Helix (401)".to_string(),
            )),
            HelixError::Forbidden { message } => Some(ConnectionEnd::ScopeMissing(message.clone())),
            HelixError::LimitReached { limit, message } => Some(ConnectionEnd::LimitReached(
                format!("{message}: {}", limit.explained()),
            )),
            _ => None,
        }
    }

    /// Resolves the channels (and the user's own id when not known yet), subscribes every
    /// channel on the session, reads the current color, and reports the user connected; or
    /// stops at the first subscription Twitch rate-limits and says what is left.
    pub(super) fn run(&self) -> Result<SetupAnswer, ConnectionEnd> {
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
            self.not_stopped()?;
            let found = self
                .helix
                .users_by_login(client_id, &self.token(), &wanted)
                .map_err(|error| {
                    self.refused(&error).unwrap_or_else(|| {
                        ConnectionEnd::Lost(format!("looking up channel ids failed: {error}"))
                    })
                })?;
            for (channel, id) in found {
                channel_ids.insert(channel, id);
            }
        }
        let own_id = match self.user.user_id().or_else(|| channel_ids.get(login)) {
            Some(id) => id,
            None => return Err(ConnectionEnd::Lost(format!("Twitch knows no user {login}"))),
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
        self.not_stopped()?;
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
    pub(super) fn subscribe_one(
        &self,
        channel_id: &UserId,
        own_id: &UserId,
        channel: &Login,
    ) -> Result<Subscribed, ConnectionEnd> {
        let login = &self.user.login;
        self.not_stopped()?;
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
                    HelixError::RateLimited { rate_limit } => Ok(Subscribed::RateLimited(
                        bucket_wait(rate_limit.reset_at_unix, unix_now())
                            .unwrap_or(Duration::from_secs(1)),
                    )),
                    other => Err(ConnectionEnd::Lost(format!(
                        "subscribing to #{channel} failed: {other}"
                    ))),
                },
            },
        }
    }
}
