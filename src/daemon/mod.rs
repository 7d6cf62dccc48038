//! Starts and stops the daemon's threads — per user a chat thread, the token refresher, the
//! worker pool that talks to Helix — and applies the config edits the config writer hands
//! over while running. Owns every `JoinHandle` and joins each user's thread as soon as it
//! ends. Its decisions are pure functions: what a config edit means for a user
//! (`reload_action`) and where the status goes (`status_plan`); the rest carries them out.

pub mod settings;
pub mod worker;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender};
use log::{error, info, warn};

use crate::base::backoff::BackoffPolicy;
use crate::base::ids::Login;
use crate::base::stop::StopSignal;
use crate::base::supervisor::{spawn_supervised, ThreadSpec};
use crate::chat::eventsub::setup::{run_setup_thread, EventSubShared, SETUP_THREADS};
use crate::chat::net::dialer::{run_dialers, Dialer};
use crate::chat::net::watch::{ChatWatch, WatchSettings};
use crate::chat::{run_chat, ChatSettings};
use crate::config::writer::{ConfigWriter, Edit, Unsaved, UnsavedSink, Watch};
use crate::config::UserConfig;
use crate::daemon::settings::Settings;
use crate::daemon::worker::{run_dispatcher, WORKER_STACK_SIZE};
use crate::status::{self, ConfigUnsaved, StatusBoard, StatusServer, StatusWriter, WriterSettings};
use crate::token::refresher::{TokenEntry, TokenService};
use crate::twitch::helix::Helix;
use crate::twitch::http;
use crate::twitch::oauth::OAuth;
use crate::twitch::tls::{TlsContext, TlsError};
use crate::user::queue::ChangeQueue;
use crate::user::{ColorSettings, TokenCell, User, UserSinks};

/// Stack size of chat threads: a TLS handshake and the WebSocket buffers fit well within it,
/// and a thousand users stay within a few hundred MiB of address space (little of it touched).
pub const CHAT_STACK_SIZE: usize = 256 * 1024;

/// What a config edit means for one user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReloadAction {
    /// New user: start it.
    Start,
    /// Credentials, channels or the chat transport changed: stop the user's threads and
    /// start new ones.
    Restart,
    /// Only settings the running threads read live changed: update them in place.
    Update,
    /// Nothing that matters changed.
    Keep,
}

/// Decides what an edited entry means for a user. `running` is the entry the user was
/// started with; `tokens_pasted` says that a person put tokens in the file that the daemon
/// never held (the config writer judges that: tokens the daemon refreshed itself, or an
/// editor's stale copy of tokens it replaced, are no reason to restart).
pub fn reload_action(
    running: Option<&UserConfig>,
    tokens_pasted: bool,
    edited: &UserConfig,
) -> ReloadAction {
    let Some(running) = running else {
        return ReloadAction::Start;
    };
    if tokens_pasted
        || running.client_id != edited.client_id
        || running.client_secret != edited.client_secret
        || running.channels != edited.channels
        || running.chat_transport != edited.chat_transport
    {
        ReloadAction::Restart
    } else if running.enabled != edited.enabled
        || running.is_prime_or_turbo != edited.is_prime_or_turbo
        || color_settings(running) != color_settings(edited)
    {
        ReloadAction::Update
    } else {
        ReloadAction::Keep
    }
}

/// The color settings of a config entry.
fn color_settings(config: &UserConfig) -> ColorSettings {
    ColorSettings {
        mode: config.color_mode.clone(),
        change_every: config.change_every,
    }
}

/// The TLS context for chat connections, the one HTTPS uses too: wanted when either chat
/// endpoint is `wss://` (both are, against Twitch).
fn chat_tls(
    endpoints: &crate::daemon::settings::Endpoints,
    tls: &http::SharedTls,
) -> Result<Option<TlsContext>, TlsError> {
    let secure = |url: &str| url.starts_with("wss://");
    if secure(&endpoints.irc_url) || secure(&endpoints.eventsub_url) {
        tls.get().map(Some)
    } else {
        Ok(None)
    }
}

/// Where the daemon keeps its users' status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StatusPlan<'a> {
    /// A board in memory, written to this file for `health` (and served when listening).
    Written(&'a Path),
    /// A board in memory for the status server only.
    Served,
    /// No status at all: neither a file nor a server asks for it.
    Off,
}

/// Decides where the status goes: a file when one is set, else memory when the status
/// server will show it, else nowhere.
fn status_plan(status_file: Option<&Path>, listen: bool) -> StatusPlan<'_> {
    match (status_file, listen) {
        (Some(path), _) => StatusPlan::Written(path),
        (None, true) => StatusPlan::Served,
        (None, false) => StatusPlan::Off,
    }
}

/// Carries out [`status_plan`]: the board, and its writer thread when there is a file.
fn start_status(
    settings: &Settings,
    stop: &StopSignal,
) -> std::io::Result<(Option<StatusBoard>, Option<StatusWriter>)> {
    Ok(
        match status_plan(settings.status_file.as_deref(), settings.listen.is_some()) {
            StatusPlan::Written(path) => {
                let (board, writer) = StatusBoard::start(
                    WriterSettings::new(path.to_path_buf()),
                    stop.receiver().clone(),
                )?;
                (Some(board), Some(writer))
            }
            StatusPlan::Served => (Some(StatusBoard::without_file()), None),
            StatusPlan::Off => (None, None),
        },
    )
}

/// Has the config writer check the file for hand edits (it owns the file, so it tells a
/// person's edit from its own writes) and report when it cannot write. Without a writer
/// (no config file) no edit ever comes.
fn watch_config(
    writer: Option<&ConfigWriter>,
    status: Option<StatusBoard>,
    interval: Duration,
) -> Receiver<Edit> {
    let Some(writer) = writer else {
        return crossbeam_channel::never();
    };
    let (edit_sender, edits) = crossbeam_channel::unbounded();
    let unsaved: Option<UnsavedSink> = status.map(|board| {
        Box::new(move |unsaved: Option<&Unsaved>| {
            board.set_config_unsaved(unsaved.map(|unsaved| ConfigUnsaved {
                since_unix: unsaved.since_unix,
                problem: unsaved.problem.clone(),
            }))
        }) as UnsavedSink
    });
    writer.watch(Watch {
        interval,
        edits: edit_sender,
        unsaved,
    });
    edits
}

/// A thread every user shares (worker pool, EventSub setup, dialers): restarted after a
/// panic with the default backoff.
fn service_spec(name: &str, what: &str) -> ThreadSpec {
    ThreadSpec {
        name: name.to_string(),
        what: what.to_string(),
        stack_size: WORKER_STACK_SIZE,
        policy: BackoffPolicy::default(),
    }
}

/// Starts the daemon's service threads under supervision: each ends with the daemon's stop
/// signal and reports its end on the daemon's channel.
struct Spawner<'a> {
    stop: &'a StopSignal,
    done: &'a Sender<ThreadId>,
}

impl Spawner<'_> {
    fn spawn(
        &self,
        spec: ThreadSpec,
        work: impl FnMut() + Send + 'static,
    ) -> std::io::Result<JoinHandle<()>> {
        spawn_supervised(spec, self.stop.clone(), self.done.clone(), work)
    }
}

/// Starts a user's chat thread under supervision: it ends with the user's stop signal and
/// reports its end on the daemon's channel.
fn spawn_chat(
    settings: &ChatSettings,
    (queue, done_sender): (&ChangeQueue, &Sender<ThreadId>),
    user: &Arc<User>,
    config: &UserConfig,
    user_stop: &StopSignal,
) -> std::io::Result<JoinHandle<()>> {
    let login = &config.username;
    let transport = config.chat_transport;
    let chat_user = Arc::clone(user);
    let channels = config.channels.clone();
    let settings = settings.clone();
    let queue = queue.clone();
    let chat_stop = user_stop.clone();
    let chat_spec = ThreadSpec {
        name: format!("chat-{login}"),
        what: format!("{login}: chat"),
        stack_size: CHAT_STACK_SIZE,
        policy: settings.backoff,
    };
    spawn_supervised(
        chat_spec,
        user_stop.clone(),
        done_sender.clone(),
        move || {
            run_chat(
                Arc::clone(&chat_user),
                channels.clone(),
                settings.clone(),
                queue.clone(),
                chat_stop.clone(),
                transport,
            )
        },
    )
}

/// Starts the threads chat shares between users: the worker pool that calls Helix, the
/// EventSub setup threads and the chat dialers. Returns them with EventSub's shared state
/// and the dialer that chat threads hand their connects to.
fn start_chat_services(
    services: &Spawner<'_>,
    jobs: Receiver<Arc<User>>,
    helix: &Arc<Helix>,
    chat_tls: Option<TlsContext>,
) -> std::io::Result<(Vec<JoinHandle<()>>, EventSubShared, Dialer)> {
    let mut threads = Vec::new();
    let pool_helix = Arc::clone(helix);
    let pool_stop = services.stop.clone();
    threads.push(
        services.spawn(service_spec("worker-pool", "worker pool"), move || {
            run_dispatcher(jobs.clone(), Arc::clone(&pool_helix), pool_stop.clone())
        })?,
    );
    let (eventsub, setup_jobs) = EventSubShared::new();
    for index in 0..SETUP_THREADS {
        let setup_jobs = setup_jobs.clone();
        let setup_stop = services.stop.clone();
        threads.push(services.spawn(
            service_spec(
                &format!("eventsub-setup-{index}"),
                &format!("eventsub setup {index}"),
            ),
            move || run_setup_thread(&setup_jobs, &setup_stop),
        )?);
    }
    let (dialer, dial_jobs) = Dialer::new(chat_tls);
    let dialers_stop = services.stop.clone();
    threads.push(
        services.spawn(service_spec("chat-dialers", "chat dialers"), move || {
            run_dialers(dial_jobs.clone(), &dialers_stop)
        })?,
    );
    Ok((threads, eventsub, dialer))
}

/// Starts the chat watch and the token refresher. One place compares the clocks: the chat
/// watch tells the token refresher when the machine slept.
fn start_watch_and_tokens(
    services: &Spawner<'_>,
    settings: &Settings,
    queue: ChangeQueue,
    agent: ureq::Agent,
) -> std::io::Result<(ChatWatch, TokenService, Vec<JoinHandle<()>>)> {
    let (slept, slept_notices) = crossbeam_channel::bounded(1);
    let (watch, watch_thread) = ChatWatch::start(
        WatchSettings {
            check_interval: settings.reload_interval,
            wall_clock: settings.wall_clock.clone(),
            slept: Some(slept),
        },
        queue,
        services.stop.clone(),
        services.done.clone(),
    )?;
    let oauth = Arc::new(OAuth::new(agent, &settings.endpoints.auth_url));
    let (tokens, mut threads) = TokenService::start(
        oauth,
        services.stop.clone(),
        settings.http_timeout,
        (settings.wall_clock.clone(), slept_notices),
        services.done,
    )?;
    threads.insert(0, watch_thread);
    Ok((watch, tokens, threads))
}

/// What starting a user needs, kept for users added later by a config edit.
struct Shared {
    chat_settings: ChatSettings,
    queue: Option<ChangeQueue>,
    tokens: TokenService,
    writer: Option<ConfigWriter>,
    status: Option<StatusBoard>,
    /// Every thread holds a clone (a user's chat thread sends its id on it when it ends);
    /// the channel disconnects when all have ended.
    done_sender: Option<Sender<ThreadId>>,
}

/// One running user.
struct RunningUser {
    user: Arc<User>,
    config: UserConfig,
    stop: StopSignal,
    /// The user's key at the token refresher.
    token_key: u64,
    threads: Vec<JoinHandle<()>>,
}

impl RunningUser {
    /// Tells the user's threads to end; they are joined as they report their end. Its status
    /// is no longer written from here on; a token call in flight still finishes and is saved.
    fn stop(self, tokens: &TokenService, retired: &mut Vec<JoinHandle<()>>) {
        self.user.retire();
        tokens.remove(self.token_key);
        self.stop.stop();
        self.user.token.close();
        retired.extend(self.threads);
    }
}

/// The running daemon.
pub struct Daemon {
    stop: StopSignal,
    shared: Shared,
    users: BTreeMap<Login, RunningUser>,
    /// The worker pool's dispatcher, the token refresher and its callers, the chat watch.
    service_threads: Vec<JoinHandle<()>>,
    /// Threads of users that were removed or restarted, until they end.
    retired: Vec<JoinHandle<()>>,
    edits: Receiver<Edit>,
    done: Receiver<ThreadId>,
    status_writer: Option<StatusWriter>,
    /// The "http" thread, when `--listen` asked for one.
    status_server: Option<StatusServer>,
}

impl Daemon {
    /// Starts the threads for `users`. With a `writer` (a config file), new tokens are saved
    /// through it and edits of the file at `settings.config_path` are applied while running.
    pub fn start(
        users: &[UserConfig],
        settings: &Settings,
        writer: Option<ConfigWriter>,
    ) -> std::io::Result<Daemon> {
        let stop = StopSignal::new();
        let (done_sender, done) = crossbeam_channel::unbounded::<ThreadId>();
        let services = Spawner {
            stop: &stop,
            done: &done_sender,
        };
        let (queue, jobs) = ChangeQueue::new();
        // One TLS context for chat and HTTPS, built when the first connection needs it.
        let tls = http::SharedTls::default();
        let agent = http::new_agent(settings.http_timeout, &tls);
        let helix = Arc::new(Helix::new(agent.clone(), &settings.endpoints.api_url));
        let chat_tls = chat_tls(&settings.endpoints, &tls).map_err(|error| {
            std::io::Error::other(format!("cannot set up TLS for chat: {error}"))
        })?;
        let (mut service_threads, eventsub, dialer) =
            start_chat_services(&services, jobs, &helix, chat_tls)?;
        let (status, status_writer) = start_status(settings, &stop)?;
        // Bound before anything else starts, so a port in use fails the start at once.
        let status_listener = settings.listen.map(status::server::bind).transpose()?;
        let (watch, tokens, threads) =
            start_watch_and_tokens(&services, settings, queue.clone(), agent)?;
        service_threads.extend(threads);
        let edits = watch_config(writer.as_ref(), status.clone(), settings.reload_interval);
        let mut daemon = Daemon {
            stop,
            shared: Shared {
                chat_settings: ChatSettings {
                    irc_url: settings.endpoints.irc_url.clone(),
                    eventsub_url: settings.endpoints.eventsub_url.clone(),
                    helix: Arc::clone(&helix),
                    eventsub,
                    dialer,
                    keepalive: settings.keepalive,
                    backoff: settings.chat_backoff,
                    watch,
                },
                queue: Some(queue),
                tokens,
                writer,
                status,
                done_sender: Some(done_sender),
            },
            users: BTreeMap::new(),
            service_threads,
            retired: Vec::new(),
            edits,
            done,
            status_writer,
            status_server: None,
        };
        // Every user's first validation is due at once: the token-call pool bounds how many
        // run together (`token::refresher::MAX_TOKEN_CALLERS`), as the dialer pool bounds the
        // connections, so a thousand users do not call Twitch in the same instant, and under
        // `auto` no user's chat waits behind the others' (issue 20, start-up).
        for config in users {
            daemon.start_user(config, Duration::ZERO)?;
        }
        if let (Some(listener), Some(board)) = (status_listener, &daemon.shared.status) {
            let server = StatusServer::start(listener, board.clone(), daemon.stop.clone())?;
            daemon.status_server = Some(server);
        }
        Ok(daemon)
    }

    /// Hands one user's tokens to the token refresher and starts its chat thread.
    fn start_user(
        &mut self,
        config: &UserConfig,
        first_check_after: Duration,
    ) -> std::io::Result<()> {
        let shared = &self.shared;
        let (Some(queue), Some(done_sender)) = (&shared.queue, &shared.done_sender) else {
            return Ok(());
        };
        let login = config.username.clone();
        let route = shared.tokens.new_route();
        let token_key = route.entry;
        let user = Arc::new(User::new(
            login.clone(),
            config.client_id.clone(),
            TokenCell::new(config.access_token.clone(), Some(route)),
            (config.is_prime_or_turbo, config.enabled),
            color_settings(config),
            UserSinks {
                writer: shared.writer.clone(),
                status: shared.status.clone(),
            },
        ));
        let user_stop = StopSignal::new();
        let mut threads = Vec::new();
        shared.tokens.add(
            token_key,
            TokenEntry {
                user: Arc::clone(&user),
                client_secret: config.client_secret.clone(),
                refresh_token: config.refresh_token.clone(),
                user_stop: user_stop.clone(),
                first_check_after,
            },
        );
        threads.push(spawn_chat(
            &shared.chat_settings,
            (queue, done_sender),
            &user,
            config,
            &user_stop,
        )?);
        info!(
            "{login}: watching {}",
            config
                .channels
                .iter()
                .map(|channel| format!("#{channel}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        self.users.insert(
            login,
            RunningUser {
                user,
                config: config.clone(),
                stop: user_stop,
                token_key,
                threads,
            },
        );
        Ok(())
    }

    /// Applies an edited config: starts added users, stops removed ones, restarts users
    /// whose tokens, credentials, channels or chat transport changed, updates the rest in
    /// place.
    pub fn apply(&mut self, edit: &Edit) {
        let edited = &edit.config;
        let kept: Vec<&Login> = edited.users.iter().map(|user| &user.username).collect();
        let removed: Vec<Login> = self
            .users
            .keys()
            .filter(|login| !kept.contains(login))
            .cloned()
            .collect();
        for login in removed {
            info!("{login}: removed from the config; stopping");
            if let Some(running) = self.users.remove(&login) {
                running.stop(&self.shared.tokens, &mut self.retired);
            }
            if let Some(status) = &self.shared.status {
                status.remove_user(&login);
            }
        }
        for config in &edited.users {
            let login = &config.username;
            let running = self.users.get(login);
            let action = reload_action(
                running.map(|running| &running.config),
                edit.pasted.contains(login),
                config,
            );
            match action {
                ReloadAction::Keep => {}
                ReloadAction::Update => {
                    if let Some(running) = self.users.get_mut(login) {
                        running.user.set_enabled(config.enabled);
                        running.user.set_prime_or_turbo(config.is_prime_or_turbo);
                        running.user.set_color_settings(color_settings(config));
                        self.shared.chat_settings.watch.settings_changed(login);
                        running.config = config.clone();
                        info!("{login}: settings updated");
                    }
                }
                ReloadAction::Start | ReloadAction::Restart => {
                    if let Some(running) = self.users.remove(login) {
                        info!("{login}: tokens, credentials, channels or chat transport changed; reconnecting");
                        running.stop(&self.shared.tokens, &mut self.retired);
                    } else {
                        info!("{login}: added to the config; starting");
                    }
                    if let Err(error) = self.start_user(config, Duration::ZERO) {
                        error!("{login}: cannot start threads: {error}");
                    }
                }
            }
        }
    }

    /// Where the status server listens, when it runs.
    pub fn status_address(&self) -> Option<std::net::SocketAddr> {
        self.status_server.as_ref().map(StatusServer::local_addr)
    }

    /// The signal that ends the daemon; fire it from a signal handler or a test.
    pub fn stop_signal(&self) -> StopSignal {
        self.stop.clone()
    }

    /// Applies config edits until the stop signal fires, then shuts down. True when every
    /// thread ended within `grace`.
    pub fn run_until_stopped(mut self, grace: Duration) -> bool {
        loop {
            select! {
                recv(self.stop.receiver()) -> _ => break,
                recv(self.edits) -> edited => match edited {
                    Ok(edited) => self.apply(&edited),
                    Err(_) => self.edits = crossbeam_channel::never(),
                },
                recv(self.done) -> ended => {
                    if let Ok(id) = ended {
                        self.join_ended(id);
                    }
                },
            }
        }
        self.shutdown(grace)
    }

    /// Joins the thread `id`, which reported its end: a removed or restarted user's, or one
    /// of a user that stopped for want of a token. Until joined, a finished thread keeps its
    /// stack mapped.
    fn join_ended(&mut self, id: ThreadId) {
        let is_it = |handle: &JoinHandle<()>| handle.thread().id() == id;
        let handle = if let Some(index) = self.retired.iter().position(is_it) {
            Some(self.retired.swap_remove(index))
        } else {
            self.users.values_mut().find_map(|running| {
                let index = running.threads.iter().position(is_it)?;
                Some(running.threads.swap_remove(index))
            })
        };
        if let Some(handle) = handle {
            join_thread(handle);
        }
    }

    /// Stops every thread and waits up to `grace` for them — longer while a token call is
    /// in flight (up to the HTTP timeout), because its answer may hold tokens Twitch has
    /// already rotated and they must be saved. True when all ended in time; threads still
    /// running (a worker inside a slow HTTP call) end with the process.
    pub fn shutdown(mut self, grace: Duration) -> bool {
        let started = Instant::now();
        self.stop.stop();
        // At once without a token call in flight; with one, until its answer is saved.
        let tokens_saved = self.shared.tokens.wait_finished();
        let deadline = (started + grace).max(Instant::now());
        if let Some(server) = self.status_server.take() {
            server.stop();
        }
        let mut threads = std::mem::take(&mut self.service_threads);
        threads.append(&mut self.retired);
        for (_, running) in std::mem::take(&mut self.users) {
            running.stop(&self.shared.tokens, &mut threads);
        }
        // Workers end once every sender of the queue is gone: ours and the chat threads'.
        self.shared.queue.take();
        self.shared.done_sender.take();
        self.shared.writer.take();
        self.shared.status.take();
        loop {
            match self.done.recv_deadline(deadline) {
                Ok(_) => continue,
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    let running: Vec<String> = threads
                        .iter()
                        .filter(|handle| !handle.is_finished())
                        .filter_map(|handle| handle.thread().name().map(str::to_string))
                        .collect();
                    warn!(
                        "shutdown: threads still busy after {grace:?}: {}",
                        running.join(", ")
                    );
                    return false;
                }
            }
        }
        for handle in threads {
            join_thread(handle);
        }
        // The status writer removes its file once stopped; a health check then fails.
        if let Some(status_writer) = self.status_writer.take() {
            let _ = status_writer.join();
        }
        tokens_saved
    }
}

/// Joins a thread that has ended or is about to.
fn join_thread(handle: JoinHandle<()>) {
    let name = handle.thread().name().unwrap_or("?").to_string();
    if handle.join().is_err() {
        error!("thread {name} had panicked");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    fn user(fields: &str) -> UserConfig {
        let text = format!(
            r#"{{"users": [{{"username": "alice", "client_id": "cid", "client_secret": "cs",
                "access_token": "at", "refresh_token": "rt", "channels": ["alice"] {fields}}}]}}"#
        );
        config::parse(&text, Path::new("t.json"))
            .unwrap()
            .0
            .users
            .remove(0)
    }

    #[test]
    fn status_goes_to_a_file_when_set_else_to_memory_when_served() {
        let file = Path::new("/run/s.json");
        let cases = [
            (Some(file), false, StatusPlan::Written(file)),
            (Some(file), true, StatusPlan::Written(file)),
            (None, true, StatusPlan::Served),
            (None, false, StatusPlan::Off),
        ];
        for (status_file, listen, expected) in cases {
            assert_eq!(
                status_plan(status_file, listen),
                expected,
                "{status_file:?} {listen}"
            );
        }
    }

    #[test]
    fn reload_actions_follow_what_changed() {
        let base = user("");
        let cases: Vec<(Option<&UserConfig>, bool, UserConfig, ReloadAction)> = vec![
            (None, false, user(""), ReloadAction::Start),
            (Some(&base), false, user(""), ReloadAction::Keep),
            (
                Some(&base),
                false,
                user(r#", "enabled": false"#),
                ReloadAction::Update,
            ),
            (
                Some(&base),
                false,
                user(r#", "color_mode": "rainbow""#),
                ReloadAction::Update,
            ),
            (
                Some(&base),
                false,
                user(r#", "change_every_seconds": 60"#),
                ReloadAction::Update,
            ),
            (
                Some(&base),
                false,
                user(r#", "is_prime_or_turbo": false"#),
                ReloadAction::Update,
            ),
            (
                Some(&base),
                false,
                user(r#", "channels": ["alice", "bob"]"#),
                ReloadAction::Restart,
            ),
            (
                Some(&base),
                false,
                user(r#", "client_id": "other""#),
                ReloadAction::Restart,
            ),
            // Another chat transport means another connection: that user reconnects.
            (
                Some(&base),
                false,
                user(r#", "chat_transport": "eventsub""#),
                ReloadAction::Restart,
            ),
            (
                Some(&base),
                false,
                user(r#", "chat_transport": "auto""#),
                ReloadAction::Keep,
            ),
            // Tokens the daemon refreshed itself, or an editor's stale copy that the config
            // writer already swapped for the newer ones: nothing to restart for.
            (
                Some(&base),
                false,
                user(r#", "access_token": "at-refreshed-by-us""#),
                ReloadAction::Keep,
            ),
            // A person pasted new tokens.
            (
                Some(&base),
                true,
                user(r#", "access_token": "pasted""#),
                ReloadAction::Restart,
            ),
            (Some(&base), true, user(""), ReloadAction::Restart),
        ];
        for (running, tokens_pasted, edited, expected) in cases {
            assert_eq!(
                reload_action(running, tokens_pasted, &edited),
                expected,
                "{edited:?}"
            );
        }
    }
}
