//! The chat watch: one thread for the whole process that fires every logged-in user's color
//! timer and, when the machine slept, closes every chat socket so that each chat thread
//! checks its link at once by reconnecting. Does I/O (shuts sockets down, reads the clock);
//! its decisions are `chat::schedule`'s.
//!
//! It exists because a chat thread blocks in its socket read until its next deadline: an
//! edit of the timer could not reach it, and after a suspend that deadline is minutes away
//! (the monotonic clock it counts on stops while the machine sleeps).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender};
use log::{debug, info};

use crate::base::backoff::BackoffPolicy;
use crate::base::clock::wall_time;
use crate::base::ids::Login;
use crate::base::stop::StopSignal;
use crate::base::supervisor::{spawn_supervised, ThreadSpec};
use crate::base::wall_clock::WallClock;
use crate::chat::schedule::{ColorTimers, SleepDetector};
use crate::color::ChangeRequest;
use crate::user::queue::ChangeQueue;
use crate::user::User;

/// Stack size of the watch thread: it only handles small messages.
const WATCH_STACK_SIZE: usize = 128 * 1024;

enum Command {
    LoggedIn {
        key: u64,
        user: Arc<User>,
        sockets: StopSignal,
        slept: Arc<AtomicBool>,
    },
    Ended {
        key: u64,
    },
    SettingsChanged {
        login: Login,
    },
}

/// The handle chat threads and the daemon talk to the watch with.
#[derive(Clone)]
pub struct ChatWatch {
    commands: Sender<Command>,
    next_key: Arc<AtomicU64>,
}

/// A logged-in connection known to the watch; dropping it tells the watch it ended.
pub struct WatchedLink {
    key: u64,
    slept: Arc<AtomicBool>,
    commands: Sender<Command>,
}

impl WatchedLink {
    /// True when the watch closed the socket because the machine slept.
    pub fn closed_after_sleep(&self) -> bool {
        self.slept.load(Ordering::SeqCst)
    }
}

impl Drop for WatchedLink {
    fn drop(&mut self) {
        // The watch may have stopped already; then there is nothing to tell.
        let _ = self.commands.send(Command::Ended { key: self.key });
    }
}

/// What the watch thread needs.
pub struct WatchSettings {
    /// How often the clocks are compared; the only periodic wake-up of the watch.
    pub check_interval: Duration,
    pub wall_clock: WallClock,
    /// Told when the machine slept, so that the token refresher (whose deadlines run on the
    /// wall clock) looks at its clocks at once instead of comparing them on its own timer.
    pub slept: Option<Sender<()>>,
}

impl ChatWatch {
    /// Starts the watch thread. It ends when `stop` fires and sends its id on `ended` then.
    pub fn start(
        settings: WatchSettings,
        queue: ChangeQueue,
        stop: StopSignal,
        ended: Sender<ThreadId>,
    ) -> std::io::Result<(ChatWatch, JoinHandle<()>)> {
        let (sender, commands) = crossbeam_channel::unbounded();
        let spec = ThreadSpec {
            name: "chat-watch".into(),
            what: "chat watch".into(),
            stack_size: WATCH_STACK_SIZE,
            policy: BackoffPolicy::default(),
        };
        // The state outlives a panic: the restarted loop still knows every link.
        let mut state = WatchState::new(&settings);
        let watch_stop = stop.clone();
        let handle = spawn_supervised(spec, stop, ended, move || {
            run_watch(&settings, &commands, &queue, &watch_stop, &mut state);
        })?;
        Ok((
            ChatWatch {
                commands: sender,
                next_key: Arc::new(AtomicU64::new(0)),
            },
            handle,
        ))
    }

    /// Tells the watch that `user` logged in on a socket registered with `sockets` (the
    /// user's stop signal; the watch only ever shuts its sockets down, it never fires it).
    /// Its color timer starts now.
    pub fn logged_in(&self, user: &Arc<User>, sockets: &StopSignal) -> WatchedLink {
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        let slept = Arc::new(AtomicBool::new(false));
        // A stopped watch leaves the link unwatched; the daemon is stopping then.
        let _ = self.commands.send(Command::LoggedIn {
            key,
            user: Arc::clone(user),
            sockets: sockets.clone(),
            slept: Arc::clone(&slept),
        });
        WatchedLink {
            key,
            slept,
            commands: self.commands.clone(),
        }
    }

    /// The color settings of `login` were edited: its timer follows at once.
    pub fn settings_changed(&self, login: &Login) {
        let _ = self.commands.send(Command::SettingsChanged {
            login: login.clone(),
        });
    }
}

struct Link {
    user: Arc<User>,
    sockets: StopSignal,
    slept: Arc<AtomicBool>,
}

/// What the watch knows: every logged-in connection, their timers, the last clock check.
struct WatchState {
    links: HashMap<u64, Link>,
    timers: ColorTimers,
    sleep: SleepDetector,
    next_check: Instant,
}

impl WatchState {
    fn new(settings: &WatchSettings) -> WatchState {
        let mut sleep = SleepDetector::new();
        sleep.observe(Instant::now(), wall_time(&settings.wall_clock));
        WatchState {
            links: HashMap::new(),
            timers: ColorTimers::default(),
            sleep,
            next_check: Instant::now() + settings.check_interval,
        }
    }
}

fn run_watch(
    settings: &WatchSettings,
    commands: &Receiver<Command>,
    queue: &ChangeQueue,
    stop: &StopSignal,
    state: &mut WatchState,
) {
    let WatchState {
        links,
        timers,
        sleep,
        next_check,
    } = state;
    loop {
        let deadline = timers
            .next_deadline()
            .map_or(*next_check, |timer| timer.min(*next_check));
        let timeout = deadline.saturating_duration_since(Instant::now());
        select! {
            recv(stop.receiver()) -> _ => break,
            recv(commands) -> command => match command {
                Ok(Command::LoggedIn { key, user, sockets, slept }) => {
                    timers.arm(key, user.color_settings().change_every, Instant::now());
                    links.insert(key, Link { user, sockets, slept });
                }
                Ok(Command::Ended { key }) => {
                    timers.remove(key);
                    links.remove(&key);
                }
                Ok(Command::SettingsChanged { login }) => {
                    for (key, link) in links.iter().filter(|(_, link)| link.user.login == login) {
                        timers.set_every(*key, link.user.color_settings().change_every);
                    }
                }
                Err(_) => break,
            },
            default(timeout) => {}
        }
        let now = Instant::now();
        if now >= *next_check {
            *next_check = now + settings.check_interval;
            if let Some(slept) = sleep.observe(now, wall_time(&settings.wall_clock)) {
                info!(
                    "the machine slept for about {} s; checking {} chat connections by reconnecting",
                    slept.as_secs(),
                    links.len()
                );
                for link in links.values() {
                    link.slept.store(true, Ordering::SeqCst);
                    link.sockets.shut_sockets();
                }
                if let Some(slept) = &settings.slept {
                    // One notice pending is enough: the refresher reads both clocks itself.
                    let _ = slept.try_send(());
                }
            }
        }
        for key in timers.due(now) {
            if let Some(link) = links.get(&key) {
                if link.user.is_enabled() {
                    debug!("{}: timer change", link.user.login);
                    queue.request(&link.user, ChangeRequest::Auto);
                }
            }
        }
    }
}
