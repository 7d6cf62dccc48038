//! Starts and stops the daemon's threads: one chat thread per user and the worker pool
//! that talks to Helix. Owns every `JoinHandle`; no protocol logic of its own.

use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use log::{error, info, warn};

use crate::backoff::BackoffPolicy;
use crate::chat_thread::{run_chat, ChatSettings};
use crate::config::UserConfig;
use crate::config_writer::ConfigWriter;
use crate::helix::{self, Helix};
use crate::oauth::OAuth;
use crate::settings::Settings;
use crate::stop::StopSignal;
use crate::supervisor::supervise;
use crate::token_thread::{run_token_thread, TokenOwner};
use crate::user::{TokenCell, User};
use crate::worker::{run_worker, ChangeQueue};

/// Stack size of chat threads: a TLS handshake and the WebSocket buffers fit well within it,
/// and a thousand users stay within a few hundred MiB of address space (little of it touched).
pub const CHAT_STACK_SIZE: usize = 256 * 1024;
/// Stack size of workers: one blocking HTTPS call at a time.
pub const WORKER_STACK_SIZE: usize = 256 * 1024;
/// Workers carrying out color changes; each change is one short HTTP call.
pub const MAX_WORKERS: usize = 4;

/// The running daemon.
pub struct Daemon {
    stop: StopSignal,
    user_stops: Vec<StopSignal>,
    threads: Vec<JoinHandle<()>>,
    queue: Option<ChangeQueue>,
    done: Receiver<()>,
    done_sender: Option<Sender<()>>,
    users: Vec<Arc<User>>,
}

impl Daemon {
    /// Starts the threads for `users`. New tokens are saved through `writer` when given.
    pub fn start(
        users: &[UserConfig],
        settings: &Settings,
        writer: Option<ConfigWriter>,
    ) -> std::io::Result<Daemon> {
        let stop = StopSignal::new();
        let (done_sender, done) = crossbeam_channel::unbounded::<()>();
        let (queue, jobs) = ChangeQueue::new();
        let agent = helix::new_agent(settings.http_timeout);
        let helix = Arc::new(Helix::new(agent.clone(), &settings.endpoints.api_url));
        let mut daemon = Daemon {
            stop,
            user_stops: Vec::new(),
            threads: Vec::new(),
            queue: Some(queue.clone()),
            done,
            done_sender: Some(done_sender.clone()),
            users: Vec::new(),
        };
        let n_workers = users.len().clamp(1, MAX_WORKERS);
        for index in 0..n_workers {
            let jobs = jobs.clone();
            let helix = Arc::clone(&helix);
            let stop = daemon.stop.clone();
            let done_sender = done_sender.clone();
            let handle = thread::Builder::new()
                .name(format!("worker-{index}"))
                .stack_size(WORKER_STACK_SIZE)
                .spawn(move || {
                    let what = format!("worker-{index}");
                    let policy = BackoffPolicy::default();
                    supervise(&what, &stop.clone(), &policy, || {
                        run_worker(jobs.clone(), Arc::clone(&helix), stop.clone())
                    });
                    drop(done_sender);
                })?;
            daemon.threads.push(handle);
        }
        let chat_settings = ChatSettings {
            irc_url: settings.endpoints.irc_url.clone(),
            keepalive: settings.keepalive,
            backoff: Default::default(),
        };
        let oauth = Arc::new(OAuth::new(agent, &settings.endpoints.auth_url));
        for config in users {
            daemon.start_user(
                config,
                &chat_settings,
                &queue,
                &oauth,
                &writer,
                settings.interactive,
                &done_sender,
            )?;
        }
        Ok(daemon)
    }

    /// Starts one user's token thread and chat thread.
    #[allow(clippy::too_many_arguments)]
    fn start_user(
        &mut self,
        config: &UserConfig,
        chat_settings: &ChatSettings,
        queue: &ChangeQueue,
        oauth: &Arc<OAuth>,
        writer: &Option<ConfigWriter>,
        interactive: bool,
        done_sender: &Sender<()>,
    ) -> std::io::Result<()> {
        let login = config.username.clone();
        let (rejection_sender, rejections) = crossbeam_channel::unbounded();
        let user = Arc::new(User::new(
            login.clone(),
            config.client_id.clone(),
            TokenCell::new(config.access_token.clone(), Some(rejection_sender)),
            config.is_prime_or_turbo,
            config.enabled,
        ));
        let user_stop = StopSignal::new();

        let owner = TokenOwner {
            user: Arc::clone(&user),
            client_secret: config.client_secret.clone(),
            refresh_token: config.refresh_token.clone(),
            rejections,
            oauth: Arc::clone(oauth),
            writer: writer.clone(),
            interactive,
            user_stop: user_stop.clone(),
        };
        let token_done = done_sender.clone();
        let token_stop = user_stop.clone();
        let handle = thread::Builder::new()
            .name(format!("token-{login}"))
            .stack_size(WORKER_STACK_SIZE)
            .spawn(move || {
                let what = format!("{}: token", owner.user.login);
                let policy = BackoffPolicy::default();
                let mut owner = Some(owner);
                supervise(&what, &token_stop.clone(), &policy, || {
                    // A panic loses the owner; the user cannot go on without one.
                    match owner.take() {
                        Some(owner) => run_token_thread(owner),
                        None => token_stop.stop(),
                    }
                });
                drop(token_done);
            })?;
        self.threads.push(handle);

        let thread_user = Arc::clone(&user);
        let channels = config.channels.clone();
        let settings = chat_settings.clone();
        let queue = queue.clone();
        let thread_stop = user_stop.clone();
        let chat_done = done_sender.clone();
        let handle = thread::Builder::new()
            .name(format!("chat-{login}"))
            .stack_size(CHAT_STACK_SIZE)
            .spawn(move || {
                let what = format!("{}: chat", thread_user.login);
                let policy = settings.backoff;
                supervise(&what, &thread_stop.clone(), &policy, || {
                    run_chat(
                        Arc::clone(&thread_user),
                        channels.clone(),
                        settings.clone(),
                        queue.clone(),
                        thread_stop.clone(),
                    )
                });
                drop(chat_done);
            })?;
        info!(
            "{login}: watching {}",
            config
                .channels
                .iter()
                .map(|channel| format!("#{channel}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        self.user_stops.push(user_stop);
        self.threads.push(handle);
        self.users.push(user);
        Ok(())
    }

    /// The signal that ends the daemon; fire it from a signal handler or a test.
    pub fn stop_signal(&self) -> StopSignal {
        self.stop.clone()
    }

    /// The users that were started.
    pub fn users(&self) -> &[Arc<User>] {
        &self.users
    }

    /// Blocks until the stop signal fires, then shuts down. True when every thread ended
    /// within `grace`.
    pub fn run_until_stopped(self, grace: Duration) -> bool {
        // Nothing is ever sent: `recv` returns when the signal disconnects the channel.
        let _ = self.stop.receiver().recv();
        self.shutdown(grace)
    }

    /// Stops every thread and waits up to `grace` for them. True when all ended in time;
    /// threads still running (a worker inside a slow HTTP call) end with the process.
    pub fn shutdown(mut self, grace: Duration) -> bool {
        let deadline = Instant::now() + grace;
        self.stop.stop();
        for user_stop in &self.user_stops {
            user_stop.stop();
        }
        for user in &self.users {
            user.token.close();
        }
        // Workers end once every sender of the queue is gone: ours and the chat threads'.
        self.queue.take();
        self.done_sender.take();
        loop {
            match self.done.recv_deadline(deadline) {
                Ok(()) => continue,
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    let running: Vec<String> = self
                        .threads
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
        for handle in self.threads.drain(..) {
            let name = handle.thread().name().unwrap_or("?").to_string();
            if handle.join().is_err() {
                error!("thread {name} had panicked");
            }
        }
        true
    }
}
